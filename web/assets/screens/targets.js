// Yearly targets per indicator (administrators). The indicators and their labels come from the
// indicators report when the server has it; ids already given targets are always listed, and
// another id can be added.
import { get, put } from '../api.js';
import { field, h, replace, select } from '../dom.js';
import { labelOf, t } from '../i18n.js';
import { fiscalYearOf } from './indicators.js';

export async function render(root, app) {
  const latest = fiscalYearOf(new Date()) + 1;
  const year = app.memory.targetYear ??= latest - 1;
  const [{ targets }, report] = await Promise.all([
    get(`/v1/admin/targets?fy=${year}`),
    get(`/v1/reports/indicators?fy=${year}`).catch(() => null),
  ]);
  const indicators = new Map((report?.rows ?? []).map((row) => [row.id, labelOf(row, row.id)]));
  for (const id of Object.keys(targets)) if (!indicators.has(id)) indicators.set(id, id);

  const years = [];
  for (let y = latest; y >= Math.min(2018, year); y -= 1) years.push(y);
  const chooser = select({ name: 'fy', id: 'target-year' }, years.map((y) => ({ value: y, label: t('indicators.fy_option', { year: y, next: y + 1 }) })), year);
  const inputs = new Map();
  const body = h('tbody');
  const addRow = (id, label) => {
    const input = h('input', { type: 'number', min: 0, max: 1000000, step: 1, name: id, value: targets[id] ?? '', 'aria-label': label });
    inputs.set(id, input);
    body.append(h('tr', { dataset: { indicator: id } }, h('th', { scope: 'row' }, label, h('span', { class: 'muted' }, ` ${id}`)), h('td', {}, input)));
  };
  for (const [id, label] of indicators) addRow(id, label);

  const newId = h('input', { name: 'new-indicator', pattern: '[a-z0-9_]{1,64}' });
  replace(root,
    h('h1', {}, t('targets.title')),
    h('form', { class: 'filters', onsubmit: (event) => { event.preventDefault(); app.memory.targetYear = Number(chooser.value); app.show('targets'); } },
      field(t('targets.fy'), chooser), h('button', { type: 'submit' }, t('targets.load'))),
    h('form', {
      class: 'panel targets',
      onsubmit: async (event) => {
        event.preventDefault();
        const values = {};
        // A target emptied is removed (null); one never set and left empty is not sent.
        for (const [id, input] of inputs) {
          if (input.value !== '') values[id] = Number(input.value);
          else if (id in targets) values[id] = null;
        }
        try {
          await put(`/v1/admin/targets?fy=${year}`, { targets: values });
          app.notify(t('targets.saved', { year }));
          app.show('targets');  // read again: what is saved now decides what emptying a box removes
        } catch (error) {
          app.notify(error.message, 'error');
        }
      },
    },
    h('table', { class: 'targets' }, h('thead', {}, h('tr', {}, h('th', {}, t('targets.indicator')), h('th', {}, t('targets.target')))), body),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('targets.save')))),
    h('form', {
      class: 'add-indicator',
      onsubmit: (event) => {
        event.preventDefault();
        const id = newId.value.trim();
        if (!/^[a-z0-9_]{1,64}$/.test(id) || inputs.has(id)) return;
        addRow(id, id);
        newId.value = '';
      },
    }, field(t('targets.new_id'), newId), h('button', { type: 'submit' }, t('targets.add'))));
}
