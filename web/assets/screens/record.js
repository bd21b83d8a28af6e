// One record: every field with its label, its history (who changed which fields, when, from
// which device), and the review (approve, or return with a comment). Opening it is audited by
// the server. Its id stays in page memory, never in the address bar.
import { ApiError, get, post, showsStaleScreen } from '../api.js';
import { field, h, replace } from '../dom.js';
import { clientOf, deviceName, loadDirectory, personName } from '../directory.js';
import { shortId, timeOf, valueOf } from '../format.js';
import { errorText, t } from '../i18n.js';
import { collectionLabel, collectionOf, displayValue, fieldLabel, loadSchema } from '../schema.js';

export async function render(root, app, { id }) {
  const [schema, directory] = await Promise.all([loadSchema(), loadDirectory()]);
  let answer;
  try {
    answer = await get(`/v1/records/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      replace(root, back(app), h('p', { class: 'error' }, t('record.gone')));
      return;
    }
    throw error;
  }
  const { record, history, version } = answer;
  const collection = collectionOf(schema, record.collection);
  const status = record.fields.review_status ?? 'draft';
  const client = clientOf(directory, record.fields.client);

  replace(root,
    back(app),
    h('h1', {}, collectionLabel(schema, record.collection), ' ',
      h('span', { class: `badge status-${status}`, id: 'record-status' }, t(`status.${status}`))),
    h('p', { class: 'lead' }, [personName(directory, record.owner), client ? ` · ${client.pseudonym} (${client.area})` : '']),
    record.conflicts.length ? h('p', { class: 'panel warning' }, t('record.has_conflicts', { count: record.conflicts.length }), ' ',
      h('button', { type: 'button', onclick: () => app.show('conflicts') }, t('record.to_conflicts'))) : null,
    h('h2', {}, t('record.fields')),
    fieldsTable(schema, collection, record, directory),
    record.collection === 'client' ? null : review(app, record, status, version),
    h('h2', {}, t('record.history')),
    historyTable(schema, record, history, directory));
}

function back(app) {
  return h('button', { type: 'button', class: 'quiet back', onclick: () => app.show('inbox') }, t('record.back'));
}

function fieldsTable(schema, collection, record, directory) {
  const names = collection ? collection.fields.map((f) => f.name) : Object.keys(record.fields);
  return h('table', { class: 'fields' },
    h('thead', {}, h('tr', {}, h('th', {}, t('record.field')), h('th', {}, t('record.value')))),
    h('tbody', {}, names.map((name) => {
      const definition = collection?.fields.find((f) => f.name === name);
      let value = valueOf(displayValue(definition, record.fields[name]));
      if (definition?.type === 'reference' && record.fields[name]) {
        value = referenceName(directory, definition, record.fields[name]);
      } else if (definition?.item === 'reference' && Array.isArray(record.fields[name])) {
        value = valueOf(record.fields[name].map((id) => referenceName(directory, definition, id)));
      }
      return h('tr', { dataset: { field: name } },
        h('th', { scope: 'row' }, fieldLabel(schema, record.collection, name)),
        h('td', { class: 'value' }, value));
    })));
}

// A referenced record or person by name: clients by pseudonym, users by name, else a short id.
function referenceName(directory, definition, id) {
  if (definition.target === 'client') return clientOf(directory, id)?.pseudonym ?? shortId(id);
  return personName(directory, id);
}

// The review panel: approve or return a submitted record, or return (reopen) an approved one.
// Each decision names the version of the record this screen shows (`seen`): if a device synced
// an edit or another supervisor decided meanwhile, the server refuses it, and the screen shows
// the record again as it now is.
function review(app, record, status, version) {
  // A comment kept from a decision refused a moment ago, for this record only; taken once.
  const kept = app.memory.reviewComment?.id === record.id ? app.memory.reviewComment.text : '';
  delete app.memory.reviewComment;
  if (status !== 'submitted' && status !== 'approved') {
    return h('p', { class: 'muted' }, t('record.not_reviewable', { status: t(`status.${status}`) }));
  }
  const comment = h('textarea', { name: 'comment', rows: 3, maxlength: 1000 });
  const decide = async (decision) => {
    if (decision === 'return' && !comment.value.trim()) {
      app.notify(t('record.comment_needed'), 'error');
      comment.focus();
      return;
    }
    try {
      await post(`/v1/records/${encodeURIComponent(record.id)}/review`, { decision, comment: comment.value.trim(), seen: version });
      app.notify(t(decision === 'approve' ? 'record.approved' : 'record.returned'));
      app.show('record', { id: record.id });
    } catch (error) {
      app.notify(errorText(error), 'error');
      // Refused for what the record has become: show it as it now is, keeping the comment typed.
      if (showsStaleScreen(error)) {
        app.memory.reviewComment = { id: record.id, text: comment.value };
        app.show('record', { id: record.id });
      }
    }
  };
  comment.value = kept;
  const actions = status === 'submitted'
    ? [h('button', { type: 'button', class: 'primary', id: 'approve', onclick: () => decide('approve') }, t('record.approve')),
      h('button', { type: 'button', class: 'danger', id: 'return', onclick: () => decide('return') }, t('record.return'))]
    : [h('button', { type: 'button', class: 'danger', id: 'reopen', onclick: () => decide('return') }, t('record.reopen'))];
  return h('form', { class: 'panel review', onsubmit: (event) => event.preventDefault() },
    h('h2', {}, t('record.review')),
    status === 'approved' ? h('p', { class: 'muted' }, t('record.reopen_lead')) : null,
    field(t('record.comment'), comment),
    h('div', { class: 'actions' }, actions));
}

function historyTable(schema, record, history, directory) {
  const newestFirst = [...history].sort((a, b) => b.seq - a.seq);
  return h('table', { class: 'history' },
    h('thead', {}, h('tr', {}, ['when', 'who', 'kind', 'changed_fields', 'device'].map((c) => h('th', {}, t(`record.${c}`))))),
    h('tbody', {}, newestFirst.map((entry) => h('tr', {},
      h('td', {}, timeOf(entry.hlc)),
      h('td', {}, personName(directory, entry.user)),
      h('td', {}, t(`kind.${entry.kind}`)),
      h('td', {}, entry.fields.map((f) => fieldLabel(schema, record.collection, f)).join('、')),
      h('td', {}, deviceName(directory, entry.replica))))));
}
