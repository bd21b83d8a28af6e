// A horizontal bar chart of actual against target per indicator, drawn as inline SVG (no
// library, no style attributes: looks come from classes in app.css).
import { h } from './dom.js';
import { numberOf } from './format.js';
import { t } from './i18n.js';

const rowHeight = 34;
const labelWidth = 260;
const barsWidth = 440;
const valueWidth = 110;

export function barChart(rows, labelOf) {
  const largest = Math.max(1, ...rows.flatMap((r) => [r.actual ?? 0, r.target ?? 0]));
  const scale = (n) => Math.round(((n ?? 0) / largest) * barsWidth);
  const height = rows.length * rowHeight + 36;
  const width = labelWidth + barsWidth + valueWidth;
  const svg = h('svg:svg', {
    class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': t('indicators.chart'),
  },
  h('svg:title', {}, t('indicators.chart')),
  legend(labelWidth, 4),
  rows.map((row, i) => {
    const y = 30 + i * rowHeight;
    const over = row.target !== null && row.target !== undefined && row.actual >= row.target;
    return h('svg:g', { class: 'chart-row', dataset: { indicator: row.id } },
      h('svg:text', { x: labelWidth - 8, y: y + 15, class: 'chart-label', 'text-anchor': 'end' }, truncate(labelOf(row), 22)),
      row.target === null || row.target === undefined ? null
        : h('svg:rect', { x: labelWidth, y: y + 2, width: Math.max(1, scale(row.target)), height: 20, class: 'bar-target' }),
      h('svg:rect', { x: labelWidth, y: y + 6, width: Math.max(1, scale(row.actual)), height: 12, class: over ? 'bar-actual met' : 'bar-actual' }),
      h('svg:text', { x: labelWidth + barsWidth + 8, y: y + 15, class: 'chart-value' },
        `${numberOf(row.actual)} / ${row.target === null || row.target === undefined ? '—' : numberOf(row.target)}`));
  }));
  return svg;
}

function legend(x, y) {
  return h('svg:g', { class: 'chart-legend' },
    h('svg:rect', { x, y: y + 4, width: 14, height: 10, class: 'bar-actual' }),
    h('svg:text', { x: x + 20, y: y + 13 }, t('indicators.legend_actual')),
    h('svg:rect', { x: x + 90, y: y + 2, width: 14, height: 14, class: 'bar-target' }),
    h('svg:text', { x: x + 110, y: y + 13 }, t('indicators.legend_target')));
}

function truncate(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
