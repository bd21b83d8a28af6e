// The indicators report's contract (GET /v1/reports/indicators?fy=2020, JSON and CSV), for the
// page to be exercised against while the server being tested does not offer the report yet.
// When the server has the endpoint, the end-to-end test uses the real one instead.
const rows = [
  { id: 'dispatch_requests', label_ja: '派遣依頼件数', label_en: 'Peer-support dispatch requests', target: 88, actual: 56, rate: 56 / 88 },
  { id: 'peer_supporters_trained', label_ja: 'ピアサポーター養成者数', label_en: 'Peer supporters trained', target: 20, actual: 8, rate: 8 / 20 },
  { id: 'working_group_meetings', label_ja: '地域移行支援促進ワーキング', label_en: 'Community-transition working group meetings', target: 15, actual: 25, rate: 25 / 15 },
  { id: 'home_visits', label_ja: '訪問件数', label_en: 'Home visits', target: null, actual: 2, rate: null },
];

function months(year) {
  return Array.from({ length: 12 }, (_, i) => {
    const month = ((i + 3) % 12) + 1;
    const y = month >= 4 ? year : year + 1;
    return { month: `${y}-${String(month).padStart(2, '0')}`, values: Object.fromEntries(rows.map((r) => [r.id, i === 2 ? r.actual : 0])) };
  });
}

export function indicatorsReport(year) {
  return {
    fiscal_year: year,
    from: `${year}-04-01`,
    to: `${year + 1}-03-31`,
    rows,
    areas: [{ id: 'fixture-area', name: '北区', values: Object.fromEntries(rows.map((r) => [r.id, r.actual])) }],
    months: months(year),
  };
}

export function indicatorsCsv(year) {
  const lines = ['indicator,label_ja,label_en,target,actual,rate',
    ...rows.map((r) => [r.id, r.label_ja, r.label_en, r.target ?? '', r.actual, r.rate === null ? '' : r.rate.toFixed(3)].join(','))];
  return `\uFEFF${lines.join('\r\n')}\r\n`;
}

// Answers the page's report requests from the contract above (Playwright route handler).
export async function serveFixture(route) {
  const url = new URL(route.request().url());
  const year = Number(url.searchParams.get('fy'));
  if (url.searchParams.get('format') === 'csv') {
    await route.fulfill({
      status: 200,
      headers: { 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': `attachment; filename="indicators-FY${year}.csv"` },
      body: Buffer.from(indicatorsCsv(year), 'utf8'),
    });
    return;
  }
  await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(indicatorsReport(year)) });
}
