// Conflicts: the value in force and the value that lost, side by side with who wrote each, when
// and on which device. The supervisor keeps one, the other, or writes a merged value; the
// resolution is a change like any other and reaches every device on its next sync.
import { get, post, showsStaleScreen } from '../api.js';
import { field, h, replace } from '../dom.js';
import { deviceName, loadDirectory, personName } from '../directory.js';
import { shortId, timeOf, valueOf } from '../format.js';
import { errorText, t } from '../i18n.js';
import { choiceLabel, collectionLabel, displayValue, fieldLabel, fieldOf, loadSchema } from '../schema.js';

export async function render(root, app) {
  const [schema, directory, answer] = await Promise.all([loadSchema(), loadDirectory({ fresh: true }), get('/v1/conflicts')]);
  const conflicts = answer.conflicts;
  replace(root,
    h('h1', {}, t('conflicts.title')),
    h('p', { class: 'lead' }, t('conflicts.lead')),
    conflicts.length === 0
      ? h('p', { class: 'empty' }, t('conflicts.none'))
      : h('div', { class: 'conflict-list' }, conflicts.map((c) => card(app, schema, directory, c))));
}

// Sends a resolution naming the version of the record the card shows (`seen`): one made about a
// record that changed meanwhile (a device's edit, another supervisor's resolution) is refused,
// and the list is read again.
async function resolve(app, conflict, body) {
  try {
    await post('/v1/conflicts/resolve', { record: conflict.record, seen: conflict.record_version, ...body });
    app.notify(t('conflicts.resolved'));
    app.show('conflicts');
  } catch (error) {
    app.notify(errorText(error), 'error');
    if (showsStaleScreen(error)) app.show('conflicts');
  }
}

function side(directory, definition, label, version, value, deleted, button) {
  return h('div', { class: 'side' },
    h('h3', {}, label),
    h('p', { class: 'conflict-value' }, deleted ? t('conflicts.deleted') : valueOf(displayValue(definition, value))),
    h('p', { class: 'muted' }, t('conflicts.by', { name: personName(directory, version.user), device: deviceName(directory, version.replica) })),
    h('p', { class: 'muted' }, t('conflicts.at', { time: timeOf(version.hlc) })),
    button);
}

function card(app, schema, directory, conflict) {
  const definition = fieldOf(schema, conflict.collection, conflict.field);
  const about = h('p', { class: 'muted' }, t(`conflicts.kind.${conflict.kind}`), ' · ', shortId(conflict.record), ' ',
    h('button', { type: 'button', class: 'quiet', onclick: () => app.show('record', { id: conflict.record }) }, t('inbox.open')));

  if (conflict.kind !== 'concurrent_edit') {
    // A delete against an edit or a restore: the record stays deleted, or comes back.
    return h('article', { class: 'conflict panel', dataset: { field: conflict.field } },
      h('h2', {}, collectionLabel(schema, conflict.collection)), about,
      h('div', { class: 'sides' },
        side(directory, null, t('conflicts.current'), conflict.current.version, conflict.current.value, conflict.kind === 'edit_vs_delete' || conflict.current.value === true, null),
        side(directory, null, t('conflicts.other'), conflict.losing.version, conflict.losing.value, conflict.losing.value === true, null)),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => resolve(app, conflict, { deletion: 'keep_deleted' }) }, t('conflicts.keep_deleted')),
        h('button', { type: 'button', onclick: () => resolve(app, conflict, { deletion: 'restore' }) }, t('conflicts.restore'))));
  }

  // A record is approved only through its review, which checks it first: a conflict on its review
  // status keeps a side other than approved, and has no merged value.
  const reviewStatus = conflict.field === 'review_status';
  const keep = (value, name) => (reviewStatus && value === 'approved')
    ? null
    : h('button', { type: 'button', class: `keep keep-${name}`, onclick: () => resolve(app, conflict, { field: conflict.field, value }) }, t('conflicts.keep'));
  const merged = mergedInput(definition, conflict.current.value);
  const mergedForm = reviewStatus ? null : h('form', {
    class: 'merged',
    onsubmit: (event) => {
      event.preventDefault();
      const value = merged.read();
      if (value === undefined) {
        merged.control.reportValidity();
        return;
      }
      resolve(app, conflict, { field: conflict.field, value });
    },
  }, merged.control.tagName === 'FIELDSET' ? merged.control : field(t('conflicts.merged'), merged.control), h('button', { type: 'submit', class: 'primary' }, t('conflicts.save_merged')));

  return h('article', { class: 'conflict panel', dataset: { field: conflict.field } },
    h('h2', {}, collectionLabel(schema, conflict.collection), ' — ', t('conflicts.field', { field: fieldLabel(schema, conflict.collection, conflict.field) })),
    about,
    h('div', { class: 'sides' },
      side(directory, definition, t('conflicts.current'), conflict.current.version, conflict.current.value, false, keep(conflict.current.value, 'current')),
      side(directory, definition, t('conflicts.other'), conflict.losing.version, conflict.losing.value, false, keep(conflict.losing.value, 'other'))),
    mergedForm);
}

// An input for a merged value of the field's type, and how to read it back (undefined: invalid).
function mergedInput(definition, start) {
  const type = definition?.type ?? 'string';
  if (type === 'integer') {
    const control = h('input', { type: 'number', name: 'merged', step: 1, min: definition.min, max: definition.max, value: start ?? '', required: true });
    return { control, read: () => (control.checkValidity() && control.value !== '' ? Number(control.value) : undefined) };
  }
  if (type === 'list' && definition.choices) {
    // A list of choices: a box for each, ticked as the value in force has them.
    const chosen = new Set(Array.isArray(start) ? start : []);
    const boxes = definition.choices.map((choice) => h('input', { type: 'checkbox', name: 'merged', value: choice, checked: chosen.has(choice) }));
    const control = h('fieldset', { class: 'choices' }, h('legend', {}, t('conflicts.merged')),
      boxes.map((box, i) => h('label', {}, box, ' ', choiceLabel(definition, definition.choices[i]))));
    return { control, read: () => boxes.filter((box) => box.checked).map((box) => box.value) };
  }
  if (type === 'list') {
    // One item a line: an item may itself hold commas (訪問看護、週2回).
    const control = h('textarea', { name: 'merged', rows: 4, value: Array.isArray(start) ? start.join('\n') : '' });
    return { control, read: () => control.value.split('\n').map((item) => item.trim()).filter(Boolean) };
  }
  if (type === 'enumeration') {
    const control = h('select', { name: 'merged', required: true },
      (definition.choices ?? []).map((choice) => h('option', { value: choice, selected: choice === start }, choiceLabel(definition, choice))));
    return { control, read: () => control.value || undefined };
  }
  if (type === 'date') {
    const control = h('input', { type: 'date', name: 'merged', value: start ?? '', required: true });
    return { control, read: () => (control.value ? control.value : undefined) };
  }
  const control = type === 'text'
    ? h('textarea', { name: 'merged', rows: 3, maxlength: definition?.max, value: start ?? '' })
    : h('input', { name: 'merged', maxlength: definition?.max, value: start ?? '' });
  return { control, read: () => control.value };
}
