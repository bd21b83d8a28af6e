// Inbox: the records of the supervisor's team, newest first, filtered by type, worker, area,
// status and date range, with counts per status (over every filter but the status). The filters
// stay in page memory while the supervisor opens records and comes back.
import { ApiError, get, withQuery } from '../api.js';
import { field, h, replace, select } from '../dom.js';
import { areasOf, clientOf, loadDirectory, personName } from '../directory.js';
import { timeOf, shortId } from '../format.js';
import { errorText, t } from '../i18n.js';
import { collectionLabel, loadSchema, reviewedCollections } from '../schema.js';

const statuses = ['submitted', 'returned', 'approved', 'draft'];

export async function render(root, app) {
  const [schema, directory] = await Promise.all([loadSchema(), loadDirectory({ fresh: true })]);
  const filters = app.memory.inbox ??= { collection: '', worker: '', area: '', status: 'submitted', from: '', to: '' };

  const controls = {
    collection: select({ name: 'collection' }, [{ value: '', label: t('inbox.all_types') },
      ...reviewedCollections(schema).map((c) => ({ value: c.name, label: collectionLabel(schema, c.name) }))], filters.collection),
    worker: select({ name: 'worker' }, [{ value: '', label: t('inbox.all_workers') },
      ...directory.members.map((m) => ({ value: m.id, label: m.display_name || m.username }))], filters.worker),
    area: select({ name: 'area' }, [{ value: '', label: t('inbox.all_areas') },
      ...areasOf(directory).map((a) => ({ value: a, label: a }))], filters.area),
    status: select({ name: 'status' }, [{ value: '', label: t('status.all') },
      ...statuses.map((s) => ({ value: s, label: t(`status.${s}`) }))], filters.status),
    from: h('input', { type: 'date', name: 'from', value: filters.from }),
    to: h('input', { type: 'date', name: 'to', value: filters.to }),
  };
  const results = h('div', { class: 'results' });
  const form = h('form', {
    class: 'filters',
    onsubmit: (event) => {
      event.preventDefault();
      for (const [name, control] of Object.entries(controls)) filters[name] = control.value;
      // The last results are for other filters: on an error they go, and the error is said.
      load().catch((error) => {
        if (error instanceof ApiError && error.status === 401) return;  // the sign-in screen took over
        replace(results, h('p', { class: 'error' }, errorText(error)));
      });
    },
  },
  field(t('inbox.type'), controls.collection),
  field(t('inbox.worker'), controls.worker),
  field(t('inbox.area'), controls.area),
  field(t('inbox.status'), controls.status),
  field(t('inbox.from'), controls.from),
  field(t('inbox.to'), controls.to),
  h('button', { type: 'submit' }, t('inbox.apply')));

  replace(root,
    h('h1', {}, t('inbox.title')),
    h('p', { class: 'lead' }, t('inbox.team', { team: directory.team.name || t('value.none') })),
    form, results);

  async function load() {
    // The status filter is applied here, so that the counts cover every status.
    const answer = await get(withQuery('/v1/records', {
      collection: filters.collection, worker: filters.worker, from: filters.from, to: filters.to,
    }));
    const areaOf = (r) => clientOf(directory, r.client)?.area ?? '';
    const inScope = answer.records.filter((r) => r.collection !== 'client' && (!filters.area || areaOf(r) === filters.area));
    const counts = Object.fromEntries(statuses.map((s) => [s, 0]));
    for (const r of inScope) counts[r.review_status] = (counts[r.review_status] ?? 0) + 1;
    const shown = inScope.filter((r) => !filters.status || r.review_status === filters.status);

    replace(results,
      h('ul', { class: 'counts', 'aria-label': t('inbox.counts') }, statuses.map((s) =>
        h('li', { class: `count status-${s}`, dataset: { status: s } }, t('inbox.count', { label: t(`status.${s}`), count: counts[s] })))),
      h('p', { class: 'muted' }, t('inbox.shown', { count: shown.length })),
      shown.length === 0 ? h('p', { class: 'empty' }, t('inbox.empty')) : table(shown));

    function table(rows) {
      return h('table', { class: 'records' },
        h('thead', {}, h('tr', {}, ['date', 'type', 'worker', 'client', 'area', 'status', 'conflicts', 'updated', null]
          .map((c) => h('th', {}, c ? t(`inbox.col.${c}`) : '')))),
        h('tbody', {}, rows.map((r) => {
          const client = clientOf(directory, r.client);
          const open = () => app.show('record', { id: r.id });
          return h('tr', { class: 'record-row', dataset: { collection: r.collection, status: r.review_status } },
            h('td', {}, r.date || t('value.none')),
            h('td', {}, collectionLabel(schema, r.collection)),
            h('td', {}, personName(directory, r.owner)),
            h('td', {}, client ? client.pseudonym : (r.client ? shortId(r.client) : t('value.none'))),
            h('td', {}, client?.area || t('value.none')),
            h('td', {}, h('span', { class: `badge status-${r.review_status}` }, t(`status.${r.review_status}`))),
            h('td', { class: r.conflicts ? 'warn' : '' }, String(r.conflicts)),
            h('td', {}, timeOf(r.updated)),
            h('td', {}, h('button', { type: 'button', class: 'open', onclick: open }, t('inbox.open'))));
        })));
    }
  }

  await load();
}
