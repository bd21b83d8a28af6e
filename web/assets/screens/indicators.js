// Indicators for a fiscal year (April to March): target, actual and achievement rate per
// indicator (the rate as the server formatted it), how many counted records carry an open conflict, a bar chart of actual against target, the breakdown by area and by month, and the
// CSV the council gets (GET /v1/reports/indicators?fy=...&format=csv).
import { ApiError, get } from '../api.js';
import { field, h, replace, select } from '../dom.js';
import { barChart } from '../chart.js';
import { numberOf, rateOf } from '../format.js';
import { labelOf, t } from '../i18n.js';

// The fiscal year a moment falls in, by the day in Japan (UTC+9, as the server dates records),
// whatever the browser's own time zone: April 2020 to March 2021 is FY2020.
export function fiscalYearOf(date) {
  const japan = new Date(date.getTime() + 9 * 60 * 60 * 1000);
  return japan.getUTCMonth() >= 3 ? japan.getUTCFullYear() : japan.getUTCFullYear() - 1;
}

export async function render(root, app) {
  const latest = fiscalYearOf(new Date());
  const year = app.memory.fiscalYear ??= latest;
  const years = [];
  for (let y = latest; y >= Math.min(2018, year); y -= 1) years.push(y);
  const chooser = select({ name: 'fy', id: 'fiscal-year' }, years.map((y) => ({ value: y, label: t('indicators.fy_option', { year: y, next: y + 1 }) })), year);
  const form = h('form', {
    class: 'filters',
    onsubmit: (event) => {
      event.preventDefault();
      app.memory.fiscalYear = Number(chooser.value);
      app.show('indicators');
    },
  }, field(t('indicators.fy'), chooser), h('button', { type: 'submit' }, t('indicators.show')));

  let report;
  try {
    report = await get(`/v1/reports/indicators?fy=${year}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      replace(root, h('h1', {}, t('indicators.title')), form, h('p', { class: 'empty' }, t('indicators.unavailable')));
      return;
    }
    throw error;
  }
  const label = (row) => labelOf(row, row.id);
  const indicatorIds = report.rows.map((r) => r.id);

  replace(root,
    h('h1', {}, t('indicators.title')),
    form,
    h('p', { class: 'lead' }, t('indicators.period', { from: report.from, to: report.to }), ' ',
      csvLink(app, report.fiscal_year)),
    h('table', { class: 'indicators' },
      h('thead', {}, h('tr', {}, ['indicator', 'target', 'actual', 'rate', 'in_conflict'].map((c) => h('th', { class: c === 'indicator' ? '' : 'number' }, t(`indicators.${c}`))))),
      h('tbody', {}, report.rows.map((row) => h('tr', { dataset: { indicator: row.id } },
        h('th', { scope: 'row' }, label(row)),
        h('td', { class: 'number' }, numberOf(row.target)),
        h('td', { class: 'number' }, numberOf(row.actual)),
        h('td', { class: row.rate !== null && row.rate !== undefined && row.rate < 1 ? 'number short' : 'number' }, rateOf(row.rate_text)),
        h('td', { class: row.in_conflict > 0 ? 'number short' : 'number', title: t('indicators.in_conflict_hint') }, numberOf(row.in_conflict ?? 0)))))),
    h('h2', {}, t('indicators.chart')),
    h('div', { class: 'chart-box' }, barChart(report.rows, label)),
    h('h2', {}, t('indicators.by_area')),
    breakdown(t('indicators.area'), report.areas.map((a) => ({ key: a.id, name: a.name, values: a.values })), report.rows, indicatorIds, label),
    h('h2', {}, t('indicators.by_month')),
    breakdown(t('indicators.month'), report.months.map((m) => ({ key: m.month, name: m.month, values: m.values })), report.rows, indicatorIds, label));
}

// The CSV is fetched (so that a refusal shows as a message, not as a downloaded error) and
// handed to the browser as a file; the link's address also works on its own.
function csvLink(app, year) {
  const address = `/v1/reports/indicators?fy=${year}&format=csv`;
  const name = `indicators-FY${year}.csv`;
  return h('a', {
    class: 'button', id: 'download-csv', href: address, download: name,
    onclick: async (event) => {
      event.preventDefault();
      try {
        const response = await fetch(address, { credentials: 'same-origin', cache: 'no-store' });
        if (!response.ok) throw new Error((await response.json().catch(() => null))?.message ?? response.statusText);
        const file = URL.createObjectURL(await response.blob());
        const save = h('a', { href: file, download: name, hidden: true });
        document.body.append(save);
        save.click();
        save.remove();
        setTimeout(() => URL.revokeObjectURL(file), 10000);
      } catch (error) {
        app.notify(error.message, 'error');
      }
    },
  }, t('indicators.csv'));
}

function breakdown(heading, lines, rows, ids, label) {
  return h('div', { class: 'wide' }, h('table', { class: 'breakdown' },
    h('thead', {}, h('tr', {}, h('th', {}, heading), rows.map((r) => h('th', { class: 'number', title: label(r) }, label(r))))),
    h('tbody', {}, lines.map((line) => h('tr', { dataset: { key: line.key } },
      h('th', { scope: 'row' }, line.name),
      ids.map((id) => h('td', { class: 'number' }, numberOf(line.values?.[id] ?? 0))))))));
}
