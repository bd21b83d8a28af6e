// Refused changes: the change sets the server refused from the team's workers' devices (a record
// outside the worker's caseload, an approved record, a value the schema does not allow, ...), kept
// until the worker's device gets them accepted. The list says who, from which device, what kind of
// refusal, when and how often, never what the change holds nor the server's reason (which may quote
// a refused value); opening one reads it whole, reason included (audited by the server), into this
// card only; an open one is applied on the worker's behalf once its cause is removed, or dismissed
// with a comment the device hears when it sends the change again. Which list shows (open or dismissed) stays in page memory.
import { ApiError, get, post, showsStaleScreen, withQuery } from '../api.js';
import { field, h, replace } from '../dom.js';
import { clientOf, deviceName, loadDirectory, personName } from '../directory.js';
import { shortId, timeOf, valueOf } from '../format.js';
import { t } from '../i18n.js';
import { collectionLabel, collectionOf, fieldLabel, fieldOf, loadSchema } from '../schema.js';

const statuses = ['open', 'dismissed'];
// Which check refused a change (the server's "cause"), each with a label of its own; a change kept
// without one shows its error code's label, and any other code as the server names it.
const labelledCauses = ['outside_scope', 'rule', 'invalid_value', 'held_behind', 'wrong_collection', 'malformed', 'not_yours', 'no_record'];
const labelledCodes = ['forbidden', 'validation', 'invalid_argument', 'conflict', 'not_found'];
// How many kept changes a list asks for at a time, and the most the server lists at once.
const pageSize = 200;
const maxListed = 1000;
// The server's limit on a dismissal's comment, in bytes of UTF-8.
const maxCommentBytes = 2000;

export async function render(root, app) {
  const shown = app.memory.refused ??= { status: 'open', limit: pageSize };
  const [schema, directory, answer] = await Promise.all([loadSchema(), loadDirectory({ fresh: true }),
    get(withQuery('/v1/refused', { status: shown.status, limit: shown.limit }))]);
  const refused = answer.refused;
  replace(root,
    h('h1', {}, t('refused.title')),
    h('p', { class: 'lead' }, t('refused.lead')),
    tabs(app, shown),
    refused.length === 0
      ? h('p', { class: 'empty' }, t(`refused.none.${shown.status}`))
      : h('div', { class: 'refused-list' }, refused.map((r) => card(app, schema, directory, r))),
    more(app, shown, refused.length, answer.total ?? refused.length));
}

// A list cut short says so (newest first: the oldest, often a lost phone's, are left out), with
// a way to show more, up to the server's limit.
function more(app, shown, count, total) {
  if (total <= count) return null;
  return h('p', { class: 'muted more' }, t('refused.showing', { count, total }), ' ',
    shown.limit < maxListed
      ? h('button', { type: 'button', id: 'refused-more', onclick: () => {
        shown.limit = Math.min(maxListed, shown.limit + pageSize);
        app.show('refused');
      } }, t('refused.show_more'))
      : t('refused.dismiss_to_see_more'));
}

// The open / dismissed switch; the chosen list is read again from the server.
function tabs(app, shown) {
  return h('div', { class: 'tabs', role: 'group', 'aria-label': t('refused.which') }, statuses.map((status) => h('button', {
    type: 'button',
    class: status === shown.status ? 'tab current' : 'tab',
    'aria-pressed': String(status === shown.status),
    dataset: { status },
    onclick: () => {
      shown.status = status;
      shown.limit = pageSize;
      app.notify('');
      app.show('refused');
    },
  }, t(`refused.tab.${status}`))));
}

function whyLabel(refusal) {
  if (labelledCauses.includes(refusal.cause)) return t(`refused.cause.${refusal.cause}`);
  return labelledCodes.includes(refusal.code) ? t(`refused.code.${refusal.code}`) : refusal.code;
}

// One kept change as the list has it, and a place for the whole change once opened.
function card(app, schema, directory, refusal) {
  const detail = h('div', { class: 'refused-detail' });
  const toggle = h('button', {
    type: 'button',
    class: 'show-change',
    'aria-expanded': 'false',
    onclick: async () => {
      if (toggle.getAttribute('aria-expanded') === 'true') {
        replace(detail);
        toggle.setAttribute('aria-expanded', 'false');
        replace(toggle, t('refused.show'));
        return;
      }
      toggle.disabled = true;
      try {
        if (await showChange(app, schema, directory, refusal, detail)) {
          toggle.setAttribute('aria-expanded', 'true');
          replace(toggle, t('refused.hide'));
        }
      } finally {
        toggle.disabled = false;
      }
    },
  }, t('refused.show'));

  return h('article', { class: 'refused panel', dataset: { change: refusal.change_id, status: refusal.status } },
    h('h2', {}, collectionLabel(schema, refusal.collection), ' ',
      h('span', { class: 'badge refused-code' }, whyLabel(refusal))),
    h('p', { class: 'muted' }, t('refused.by', { name: personName(directory, refusal.worker), device: deviceName(directory, refusal.device) })),
    h('p', { class: 'muted refused-when' }, refusal.times > 1
      ? t('refused.when_again', { first: timeOf(refusal.first_refused_at), last: timeOf(refusal.last_refused_at), times: refusal.times })
      : t('refused.when', { time: timeOf(refusal.last_refused_at) })),
    refusal.status === 'dismissed'
      ? h('p', { class: 'muted refused-dismissed' }, t('refused.dismissed_by', { name: personName(directory, refusal.dismissed_by), time: timeOf(refusal.dismissed_at) }))
      : null,
    // About a record outside the supervisor's scope (a client of another area): listed, and
    // dismissible, but its content is not hers to read.
    refusal.readable === false
      ? [h('p', { class: 'muted refused-other-area' }, t('refused.other_area')),
        refusal.status === 'dismissed' ? null : dismissForm(app, refusal)]
      : [h('div', { class: 'actions' }, toggle), detail]);
}

// Reads the change whole (GET /v1/refused/{id}) into `detail`: the values the worker wrote,
// field by field, then the supervisor's comment (dismissed) or the dismissal form (open). An
// entry gone meanwhile (accepted since, or moved to another team) says so. False when nothing
// could be shown (the error is in the notice).
async function showChange(app, schema, directory, refusal, detail) {
  let answer;
  try {
    answer = await get(`/v1/refused/${encodeURIComponent(refusal.change_id)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      replace(detail, h('p', { class: 'error' }, t('refused.gone')));
      return true;
    }
    app.notify(error.message, 'error');
    return false;
  }
  const { change, comment, reason, status } = answer.refused;
  const set = change && typeof change.set === 'object' && change.set ? change.set : null;
  replace(detail,
    h('p', { class: 'muted refused-reason' }, t('refused.reason', { reason })),
    h('p', { class: 'muted' }, t(change?.create ? 'refused.creates' : 'refused.edits', { record: shortId(refusal.record) }), ' ',
      change?.create ? null : h('button', { type: 'button', class: 'quiet', onclick: () => app.show('record', { id: refusal.record }) }, t('refused.open_record'))),
    set ? valuesTable(schema, directory, refusal.collection, set) : h('p', { class: 'empty' }, t('refused.no_content')),
    status === 'dismissed'
      ? h('p', { class: 'panel refused-comment' }, t('refused.comment_was', { comment: comment || t('value.none') }))
      : [applyPanel(app, refusal), dismissForm(app, refusal)]);
  return true;
}

// The fields the change sets, in the schema's order (fields the schema does not know last, as
// the device sent them), each with its label; a client by pseudonym; a delete or restore as such.
function valuesTable(schema, directory, collection, set) {
  const known = collectionOf(schema, collection)?.fields.map((f) => f.name).filter((name) => name in set) ?? [];
  const names = [...known, ...Object.keys(set).filter((name) => !known.includes(name))];
  return h('table', { class: 'fields refused-values' },
    h('thead', {}, h('tr', {}, h('th', {}, t('record.field')), h('th', {}, t('refused.written')))),
    h('tbody', {}, names.map((name) => h('tr', { dataset: { field: name } },
      h('th', { scope: 'row' }, name === '_deleted' ? t('refused.deletion') : fieldLabel(schema, collection, name)),
      h('td', { class: 'value' }, shownValue(schema, directory, collection, name, set[name]))))));
}

function shownValue(schema, directory, collection, name, value) {
  if (name === '_deleted') return t(value === true ? 'refused.deletes' : 'refused.restores');
  if (fieldOf(schema, collection, name)?.type === 'reference' && typeof value === 'string' && value) {
    return clientOf(directory, value)?.pseudonym ?? shortId(value);
  }
  return valueOf(value);
}

// Applying the change now, on the worker's behalf (POST /v1/refused/{id}/apply): the server checks
// it as the worker's own push, and answers 409 while the cause is still there.
function applyPanel(app, refusal) {
  const button = h('button', {
    type: 'button',
    class: 'apply',
    onclick: async () => {
      button.disabled = true;
      try {
        const done = await post(`/v1/refused/${encodeURIComponent(refusal.change_id)}/apply`, {});
        app.notify(done.refused > 0 ? t('refused.applied_partly', done) : t('refused.applied', done));
        app.show('refused');
      } catch (error) {
        if (error instanceof ApiError && error.code === 'still_refused') {
          app.notify(t('refused.still_refused'), 'error');
        } else {
          app.notify(error.message, 'error');
          if (showsStaleScreen(error)) app.show('refused');
        }
      } finally {
        button.disabled = false;
      }
    },
  }, t('refused.apply'));
  return h('div', { class: 'panel apply-for-worker' },
    h('h3', {}, t('refused.apply_title')),
    h('p', { class: 'muted' }, t('refused.apply_lead')),
    h('div', { class: 'actions' }, button));
}

// Dismissing needs a comment: the worker's device hears it when it sends the change again.
function dismissForm(app, refusal) {
  const comment = h('textarea', { name: 'comment', rows: 3, maxlength: maxCommentBytes });
  return h('form', {
    class: 'panel dismiss',
    onsubmit: async (event) => {
      event.preventDefault();
      const text = comment.value.trim();
      if (!text) {
        app.notify(t('refused.comment_needed'), 'error');
        comment.focus();
        return;
      }
      if (new TextEncoder().encode(text).length > maxCommentBytes) {
        app.notify(t('refused.comment_too_long'), 'error');
        comment.focus();
        return;
      }
      try {
        await post(`/v1/refused/${encodeURIComponent(refusal.change_id)}/dismiss`, { comment: text });
        app.notify(t('refused.dismissed'));
        app.show('refused');
      } catch (error) {
        app.notify(error.message, 'error');
        if (showsStaleScreen(error)) app.show('refused');
      }
    },
  },
  h('h3', {}, t('refused.dismiss_title')),
  h('p', { class: 'muted' }, t('refused.dismiss_lead')),
  field(t('refused.comment'), comment),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'danger' }, t('refused.dismiss'))));
}
