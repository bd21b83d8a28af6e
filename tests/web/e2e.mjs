// End-to-end test of the supervisor's web page: the real tsunagu-server on loopback, an
// organisation set up through the API, records pushed from a worker's devices (two of them
// editing one field at once) and one the server refuses from another worker's phone, then
// Debian's headless Chromium, driven by playwright-core, doing what a supervisor and an
// administrator do. Screenshots of each screen go to --out.
//
//   node tests/web/e2e.mjs --server build/api/tsunagu-server --modules build/tests/web/node_modules \
//        --out build/tests/web/e2e-output [--chromium /usr/bin/chromium]
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { ApiClient, Device, newId } from './support/api.mjs';
import { startServer } from './support/server.mjs';

const { values: options } = parseArgs({
  options: {
    server: { type: 'string' },
    modules: { type: 'string' },
    out: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
for (const name of ['server', 'modules', 'out']) {
  if (!options[name]) {
    console.error(`e2e: --${name} is required (see the usage at the top of ${import.meta.url})`);
    process.exit(2);
  }
}
const out = resolve(options.out);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// playwright-core is installed by the build next to it, not in the source tree.
const { chromium } = createRequire(join(resolve(options.modules), 'resolve-from-here.js'))('playwright-core');

// ---- a tiny runner: numbered steps, each timed; the first failure stops the scenario ----------
const results = { passed: 0, failed: 0 };
let page = null;
async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    results.passed += 1;
    console.log(`ok ${results.passed + results.failed} - ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    results.failed += 1;
    console.log(`not ok ${results.passed + results.failed} - ${name}\n  ${String(error.stack || error).split('\n').join('\n  ')}`);
    if (page) await page.screenshot({ path: join(out, 'failure.png'), fullPage: true }).catch(() => {});
    throw error;
  }
}
function check(condition, message) {
  if (!condition) throw new Error(message);
}
const shot = (name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });

// ---- the organisation, through the API ----------------------------------------------------------
const server = await startServer(resolve(options.server), join(out, 'server.log'));
const admin = new ApiClient(server.url);
const people = {};
const records = {};
let phone, tablet, benPhone, supervisorApi;
let refusedVisit;  // Ben's visit to a client outside his caseload, as his phone sent it
let adminPassword = server.adminPassword;
let browser;

async function setUp() {
  await admin.signIn('admin', adminPassword);
  // The one-time password opens nothing else: the administrator chooses her own first.
  const refused = await admin.call('GET', '/v1/admin/users');
  check(refused.status === 403 && refused.data.error === 'password_change_required',
    `the one-time password opened the users: ${refused.status}`);
  await admin.call('POST', '/v1/me/password', { current_password: adminPassword, password: 'the admin password 2020' }, { expect: 200 });
  adminPassword = 'the admin password 2020';
  const kita = (await admin.call('POST', '/v1/admin/teams', { name: '北区' }, { expect: 201 })).data.team.id;
  people.kita = kita;
  for (const [username, display_name, role] of [
    ['sato', '佐藤 花子', 'supervisor'],
    ['aoi', '青井 葵', 'peer_supporter'],
    ['ben', '別府 勉', 'home_visitor'],
  ]) {
    const { data } = await admin.call('POST', '/v1/admin/users',
      { username, display_name, role, team_id: kita, password: `${username}-password-1`, must_change_password: false }, { expect: 201 });
    people[username] = data.user.id;
  }

  phone = new Device(server.url);
  await phone.signIn('aoi', 'aoi-password-1', 'aoi phone');
  const clientA = newId();
  const clientB = newId();
  records.clientA = clientA;
  records.clientB = clientB;
  records.visit = newId();      // gets the conflict
  records.approve = newId();    // approved on the page
  records.dispatch = newId();   // returned on the page
  records.meeting = newId();    // a draft
  await phone.push([
    phone.change('client', clientA, { pseudonym: 'K-001', area: '北区中央' }, { create: true }),
    phone.change('client', clientB, { pseudonym: 'K-002', area: '北区東' }, { create: true }),
    phone.change('home_visit', records.visit, {
      client: clientA, date: '2020-06-01', duration_min: 45, purpose: 'check_in',
      observations: '落ち着いて過ごしている。', review_status: 'submitted',
    }, { create: true }),
    phone.change('peer_support_dispatch', records.dispatch, {
      date: '2020-05-10', duration_min: 90, format: 'individual', request_source: '本人・在宅',
      client: clientA, review_status: 'submitted',
    }, { create: true }),
    phone.change('meeting', records.meeting, { kind: 'case_conference', date: '2020-08-20', participants: 6, review_status: 'draft' }, { create: true }),
    phone.change('home_visit', records.approve, {
      client: clientB, date: '2020-07-15', duration_min: 30, purpose: 'post_discharge_support',
      risk_flags: ['isolation'], review_status: 'submitted',
    }, { create: true }),
  ]);
  // A caseload set by the administrator: K-002 is also Ben's.
  await admin.call('PUT', `/v1/admin/clients/${clientB}/caseload`, { team_id: kita, worker_ids: [people.aoi, people.ben] }, { expect: 200 });
  await phone.pull();

  // Aoi's tablet syncs, then both devices change the visit's duration before either syncs again.
  tablet = new Device(server.url);
  await tablet.signIn('aoi', 'aoi-password-1', 'aoi tablet');
  const onTablet = await tablet.pull();
  check(onTablet.has(records.visit), 'the tablet did not receive the visit');
  tablet.changes.set(records.visit, { ...phone.changes.get(records.visit) });  // it saw the phone's create
  await phone.push([phone.change('home_visit', records.visit, { duration_min: 50 })]);
  // The tablet's clock runs two days ahead: its device library says so with the push.
  await tablet.push([tablet.change('home_visit', records.visit, { duration_min: 60 })], { clockOffset: -2 * 24 * 3600 * 1000 });
  await phone.pull();

  supervisorApi = new ApiClient(server.url);
  await supervisorApi.signIn('sato', 'sato-password-1', 'e2e checks');
  const { data } = await supervisorApi.call('GET', '/v1/conflicts', undefined, { expect: 200 });
  check(data.conflicts.length === 1, `expected one conflict, got ${JSON.stringify(data.conflicts)}`);

  // Ben covers a visit to K-001, who is not on his caseload: the server refuses it from his phone
  // and keeps it for the team's supervisors.
  benPhone = new Device(server.url);
  await benPhone.signIn('ben', 'ben-password-1', 'ben phone');
  refusedVisit = benPhone.change('home_visit', newId(), {
    client: clientA, date: '2020-09-03', duration_min: 20, purpose: 'check_in',
    observations: '青井さんの代わりに訪問。食欲が戻ってきている。', review_status: 'submitted',
  }, { create: true });
  const { outcomes } = await benPhone.offer([refusedVisit]);
  check(outcomes.length === 1 && outcomes[0].status === 'refused' && outcomes[0].code === 'forbidden',
    `Ben's visit to K-001 was answered ${JSON.stringify(outcomes)}`);
  const { data: kept } = await supervisorApi.call('GET', '/v1/refused', undefined, { expect: 200 });
  check(kept.refused.length === 1 && kept.refused[0].change_id === refusedVisit.id, `kept: ${JSON.stringify(kept.refused)}`);
}

// ---- the browser ----------------------------------------------------------------------------------
const problems = [];   // CSP violations and uncaught errors, from every page
const addresses = [];  // every address the page's main frame showed
const pageAddresses = new Set();  // the pages' own: the servers' roots
async function newPage(context) {
  const p = await context.newPage();
  p.setDefaultTimeout(10000);
  p.on('console', (m) => { if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(m.text()); });
  p.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  p.on('framenavigated', (f) => { if (f === p.mainFrame()) addresses.push(f.url()); });
  return p;
}

// Waits until the inbox shows exactly these rows, in this order: [collection, text in the row].
async function waitForRows(expected) {
  await page.waitForFunction((wanted) => {
    const rows = [...document.querySelectorAll('tr.record-row')];
    return rows.length === wanted.length
      && wanted.every(([collection, text], i) => rows[i].dataset.collection === collection && rows[i].textContent.includes(text));
  }, expected);
}

async function signInOnPage(username, password) {
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('form.sign-in button[type=submit]');
}

try {
  await step('Japanese and English name the same texts', async () => {
    // The page's modules are ES modules with no package.json to say so (everything under web/ is
    // served): Debian 12's Node 18 would load them as CommonJS. Imported from their text instead.
    const moduleText = async (path) => (await import(`data:text/javascript;base64,${
      readFileSync(new URL(path, import.meta.url)).toString('base64')}`)).default;
    const ja = await moduleText('../../web/assets/i18n/ja.js');
    const en = await moduleText('../../web/assets/i18n/en.js');
    const missing = [...Object.keys(ja).filter((k) => !(k in en)), ...Object.keys(en).filter((k) => !(k in ja))];
    check(missing.length === 0, `keys in one language only: ${missing.join(', ')}`);
  });
  await step('the organisation, its records, a conflict and a refused change are set up through the API', setUp);

  await step('Debian\'s Chromium starts headless', async () => {
    // Never a downloaded browser. Playwright gives every launch a fresh temporary
    // --user-data-dir of its own (and refuses one in `args`), removed when the browser closes.
    browser = await chromium.launch({
      executablePath: options.chromium,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  const context = await browser.newContext({ acceptDownloads: true, locale: 'ja-JP', timezoneId: 'Asia/Tokyo', viewport: { width: 1280, height: 900 } });
  page = await newPage(context);

  await step('the page is served with a strict Content-Security-Policy', async () => {
    const response = await page.goto(`${server.url}/`);
    const headers = response.headers();
    check(headers['content-security-policy'].includes("default-src 'self'"), 'no default-src self');
    check(headers['content-security-policy'].includes("frame-ancestors 'none'"), 'framing allowed');
    check(!headers['content-security-policy'].includes('unsafe-inline'), 'unsafe-inline allowed');
    check(headers['x-content-type-options'] === 'nosniff', 'no nosniff');
    check(headers['referrer-policy'] === 'no-referrer', 'referrer sent');
    await page.locator('form.sign-in').waitFor();
    check((await page.locator('html').getAttribute('lang')) === 'ja', 'not Japanese by default');
  });

  await step('a field worker\'s sign-in is refused', async () => {
    await signInOnPage('aoi', 'aoi-password-1');
    await page.locator('#sign-in-message[data-code=not_for_field_workers]').waitFor();
    const text = await page.textContent('#sign-in-message');
    check(text.includes('監督者と管理者専用'), `refusal says: ${text}`);
    await shot('01-worker-refused');
    const { data } = await admin.call('GET', `/v1/admin/devices?user_id=${people.aoi}`, undefined, { expect: 200 });
    check(!data.devices.some((d) => d.name === 'web page'), 'a refused sign-in registered a device');
  });

  await step('the supervisor signs in and sees the team\'s submitted records, newest first', async () => {
    await signInOnPage('sato', 'sato-password-1');
    await page.locator('tr.record-row').first().waitFor();
    const rows = page.locator('tr.record-row');
    check(await rows.count() === 3, `expected 3 submitted records, got ${await rows.count()}`);
    check(await page.textContent('.count[data-status=submitted]') === '提出済み: 3件', 'submitted count');
    check(await page.textContent('.count[data-status=draft]') === '下書き: 1件', 'draft count');
    const first = await rows.first().textContent();
    check(first.includes('K-001') && first.includes('青井 葵'), `newest first should be the edited visit: ${first}`);
    await shot('02-inbox');
  });

  await step('the inbox filters by type, area, worker, status and dates; a reload keeps the session', async () => {
    const filter = async (choices) => {
      for (const [name, value] of Object.entries(choices)) {
        if (name === 'from' || name === 'to') await page.fill(`input[name=${name}]`, value);
        else await page.selectOption(`select[name=${name}]`, value);
      }
      await page.click('form.filters button[type=submit]');
    };
    await filter({ collection: 'home_visit' });
    await waitForRows([['home_visit', 'K-001'], ['home_visit', 'K-002']]);
    await filter({ area: '北区東' });
    await waitForRows([['home_visit', 'K-002']]);
    await filter({ collection: '', area: '', worker: people.aoi, from: '2020-05-01', to: '2020-05-31' });
    await waitForRows([['peer_support_dispatch', 'K-001']]);
    await filter({ status: '', worker: '', from: '', to: '' });
    await page.waitForFunction(() => document.querySelectorAll('tr.record-row').length === 4);
    check(await page.locator('tr.record-row[data-status=draft]').count() === 1, 'the draft meeting shows with any status');
    await filter({ status: 'submitted' });
    await page.waitForFunction(() => document.querySelectorAll('tr.record-row').length === 3);
    // A filter whose answer fails says so, and the rows of the filter before it go.
    const recordList = (url) => url.pathname === '/v1/records';
    await page.route(recordList, (route) => route.fulfill({
      status: 503, contentType: 'application/json',
      body: JSON.stringify({ error: 'unavailable', message: 'the server is busy: try again in a moment' }),
    }));
    await filter({ status: 'returned' });
    await page.locator('.results p.error', { hasText: 'try again in a moment' }).waitFor();
    check(await page.locator('tr.record-row').count() === 0, 'the last filter\'s rows still show under the new one');
    await page.unroute(recordList);
    await filter({ status: 'submitted' });
    await page.waitForFunction(() => document.querySelectorAll('tr.record-row').length === 3);
    await page.reload();
    await page.locator('tr.record-row').first().waitFor();
  });

  await step('a record shows every field, its history with devices, and can be approved', async () => {
    await page.locator('tr.record-row', { hasText: 'K-002' }).locator('button.open').click();
    await page.locator('#record-status', { hasText: '提出済み' }).waitFor();
    check(await page.locator('table.fields tr[data-field]').count() === 10, 'a home visit has 10 fields');
    check((await page.textContent('table.fields tr[data-field=client] td')) === 'K-002', 'client by pseudonym');
    // Labels come from the schema (label_ja) where it has them, else the field's name.
    const { data: schema } = await supervisorApi.call('GET', '/v1/sync/schema', undefined, { expect: 200 });
    const duration = schema.collections.find((c) => c.name === 'home_visit').fields.find((f) => f.name === 'duration_min');
    const shown = await page.textContent('table.fields tr[data-field=duration_min] th');
    check(shown === (duration.label_ja ?? 'duration_min'), `the duration's label is ${shown}`);
    const history = await page.textContent('table.history');
    check(history.includes('青井 葵') && history.includes('aoi phone'), `history names who and which device: ${history}`);
    await shot('03-record');
    await page.click('#approve');
    await page.locator('#record-status', { hasText: '承認済み' }).waitFor();
    // Approved, it can only be returned (reopened), with a comment.
    await page.locator('#reopen').waitFor();
    check(await page.locator('#approve').count() === 0, 'an approved record offers approval again');
    await page.locator('table.history', { hasText: 'サーバー' }).waitFor();
    check(page.url() === `${server.url}/`, `the address changed: ${page.url()}`);
    const { data: trail } = await admin.call('GET', `/v1/admin/audit?target=${records.approve}`, undefined, { expect: 200 });
    check(trail.entries.some((e) => e.action === 'record.read' && e.user_id === people.sato), 'the view was not audited');
  });

  await step('another record is returned with a comment (and not without one)', async () => {
    await page.click('button.back');
    await page.locator('tr.record-row', { hasText: '2020-05-10' }).locator('button.open').click();
    await page.locator('#record-status', { hasText: '提出済み' }).waitFor();
    await page.click('#return');
    await page.locator('#notice', { hasText: '差し戻す理由' }).waitFor();
    await page.fill('textarea[name=comment]', '派遣時間を確認してください。');
    // Meanwhile the worker's phone syncs an edit: the decision about what the page showed is
    // refused, the record is shown as it now is, and the comment typed is still there.
    await phone.push([phone.change('peer_support_dispatch', records.dispatch, { duration_min: 80 })]);
    await page.click('#return');
    await page.locator('#notice', { hasText: '開いた後に変更されました' }).waitFor();
    await page.locator('table.fields tr[data-field=duration_min] td', { hasText: '80' }).waitFor();
    check((await page.inputValue('textarea[name=comment]')) === '派遣時間を確認してください。', 'the comment typed was lost');
    check((await page.textContent('#record-status')) === '提出済み', 'the stale decision was applied');
    await page.click('#return');
    await page.locator('#record-status', { hasText: '差し戻し' }).waitFor();
    await shot('04-returned');
    const onPhone = await phone.pull();
    check(onPhone.get(records.approve)?.fields.review_status === 'approved', 'the approval reached the phone');
    const returned = onPhone.get(records.dispatch)?.fields;
    check(returned?.review_status === 'returned' && returned.review_comment === '派遣時間を確認してください。', 'the return reached the phone');
  });

  await step('a conflict shows both values side by side and a merged value resolves it', async () => {
    await page.click('#nav button[data-screen=conflicts]');
    const card = page.locator('article.conflict');
    await card.waitFor();
    const text = await card.textContent();
    check(text.includes('60') && text.includes('50'), `both values: ${text}`);
    check(text.includes('aoi phone') && text.includes('aoi tablet') && text.includes('青井 葵'), `authors and devices: ${text}`);
    await shot('05-conflicts');
    await card.locator('input[name=merged]').fill('55');
    await card.locator('form.merged button[type=submit]').click();
    await page.locator('p.empty', { hasText: '未解決の競合はありません' }).waitFor();
  });

  await step('the worker\'s device receives the resolution on its next sync', async () => {
    const onPhone = await phone.pull();
    const visit = onPhone.get(records.visit);
    check(visit, 'the resolved visit was not in the pull');
    check(visit.fields.duration_min === 55, `duration on the phone: ${visit.fields.duration_min}`);
    check(visit.conflicts === 0, `conflicts left on the phone: ${visit.conflicts}`);
  });

  await step('a refused change shows what the worker wrote and is dismissed with a comment the device hears', async () => {
    await page.click('#nav button[data-screen=refused]');
    const card = page.locator(`article.refused[data-change="${refusedVisit.id}"]`);
    await card.waitFor();
    check(await page.locator('article.refused').count() === 1, 'one open refused change');
    const { data: schema } = await supervisorApi.call('GET', '/v1/sync/schema', undefined, { expect: 200 });
    const homeVisit = schema.collections.find((c) => c.name === 'home_visit');
    const listed = await card.textContent();
    check(listed.includes(homeVisit.label_ja ?? 'home_visit') && listed.includes('担当外の記録'), `type and why: ${listed}`);
    check(listed.includes('別府 勉') && listed.includes('ben phone'), `who and which device: ${listed}`);
    check(!listed.includes('食欲'), `the list shows what the change holds: ${listed}`);

    await card.locator('button.show-change').click();
    const written = (name) => card.locator(`table.refused-values tr[data-field=${name}]`);
    await written('observations').waitFor();
    check(await written('observations').locator('td').textContent() === refusedVisit.set.observations, 'the observations as written');
    check(await written('client').locator('td').textContent() === 'K-001', 'the client by pseudonym');
    check(await written('date').locator('td').textContent() === '2020-09-03', 'the date as written');
    const duration = homeVisit.fields.find((f) => f.name === 'duration_min');
    check(await written('duration_min').locator('th').textContent() === (duration.label_ja ?? 'duration_min'), 'the schema\'s label');
    const { data: trail } = await admin.call('GET', `/v1/admin/audit?target=${refusedVisit.record}`, undefined, { expect: 200 });
    check(trail.entries.some((e) => e.action === 'refused.read' && e.user_id === people.sato), 'the read was not audited');
    await shot('06-refused');

    // Applying it for Ben is refused while K-001 is not on his caseload: the page says what to do.
    await card.locator('.apply-for-worker button.apply').click();
    await page.locator('#notice', { hasText: 'サーバーはまだ受け付けません' }).waitFor();
    const { data: attempt } = await admin.call('GET', `/v1/admin/audit?target=${refusedVisit.record}`, undefined, { expect: 200 });
    check(attempt.entries.some((e) => e.action === 'refused.apply' && e.user_id === people.sato), 'the attempt was not audited');
    check(await page.locator(`article.refused[data-change="${refusedVisit.id}"]`).count() === 1, 'the refused change is still listed');

    await card.locator('form.dismiss button[type=submit]').click();
    await page.locator('#notice', { hasText: '担当者へのコメントを書いてください' }).waitFor();
    const comment = 'K-001 さんは青井さんの担当です。訪問の記録は青井さんに伝えてください。';
    await card.locator('textarea[name=comment]').fill(comment);
    await card.locator('form.dismiss button[type=submit]').click();
    await page.locator('p.empty', { hasText: '受け付けられなかった変更はありません' }).waitFor();

    await page.click('.tabs button[data-status=dismissed]');
    const dismissed = page.locator(`article.refused[data-status=dismissed][data-change="${refusedVisit.id}"]`);
    await dismissed.waitFor();
    check((await dismissed.textContent()).includes('佐藤 花子 が'), 'who dismissed it');
    await dismissed.locator('button.show-change').click();
    await dismissed.locator('.refused-comment', { hasText: comment }).waitFor();
    check(await dismissed.locator('form.dismiss').count() === 0, 'a dismissed change offers to dismiss it again');
    check(await dismissed.locator('.apply-for-worker').count() === 0, 'a dismissed change offers to apply it');
    await shot('07-refused-dismissed');

    const { outcomes } = await benPhone.offer([refusedVisit]);
    check(outcomes[0].status === 'refused' && outcomes[0].reason.includes(comment), `Ben's phone was told: ${JSON.stringify(outcomes)}`);
  });

  await step('the indicators show the table, the chart and the breakdowns, and download as CSV', async () => {
    const probe = await supervisorApi.call('GET', '/v1/reports/indicators?fy=2020');
    check(probe.status === 200, `the report answered ${probe.status}`);
    await page.click('#nav button[data-screen=indicators]');
    await page.selectOption('#fiscal-year', '2020');
    await page.click('form.filters button[type=submit]');
    await page.locator('table.indicators tbody tr').first().waitFor();
    const expected = probe.data.rows.length;
    check(await page.locator('table.indicators tbody tr').count() === expected, 'one table row per indicator');
    check(await page.locator('svg.chart g.chart-row').count() === expected, 'one chart row per indicator');
    check(await page.locator('svg.chart rect.bar-actual').count() >= expected, 'a bar per indicator');
    check(await page.locator('table.breakdown').nth(1).locator('tbody tr').count() === 12, 'twelve months');
    check((await page.textContent('table.indicators')).includes('ピアサポーター派遣依頼件数'), 'Japanese labels');
    await shot('08-indicators');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-csv')]);
    check(download.suggestedFilename() === 'indicators-FY2020.csv', `file name ${download.suggestedFilename()}`);
    const bytes = readFileSync(await download.path());
    writeFileSync(join(out, 'indicators-FY2020.csv'), bytes);
    check(bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf, 'the CSV starts with a UTF-8 byte order mark');
    // The year offered first is Japan's, whatever the browser's time zone: 00:30 on 1 April in
    // Japan (FY2021) is still 31 March (FY2020) in UTC.
    const utcContext = await browser.newContext({ timezoneId: 'UTC' });
    const utcPage = await newPage(utcContext);
    await utcPage.goto(`${server.url}/`);
    const year = await utcPage.evaluate(async () =>
      (await import('/assets/screens/indicators.js')).fiscalYearOf(new Date(Date.UTC(2021, 2, 31, 15, 30))));
    check(year === 2021, `fiscal year in a UTC browser: ${year}`);
    await utcContext.close();
  });

  await step('the page switches to English and back', async () => {
    await page.click('#language');
    await page.locator('h1', { hasText: 'Indicators by fiscal year' }).waitFor();
    check((await page.locator('html').getAttribute('lang')) === 'en', 'lang=en');
    await page.click('#nav button[data-screen=inbox]');
    await page.locator('.count[data-status=approved]', { hasText: 'Approved: 1' }).waitFor();
    check(await page.textContent('#nav button[data-screen=refused]') === 'Refused changes', 'the navigation in English');
    await shot('09-inbox-english');
    await page.click('#language');
    await page.locator('h1', { hasText: '受信箱' }).waitFor();
  });

  await step('a conflict on a review status keeps one of its sides and offers no merged value', async () => {
    const meeting = newId();
    await phone.push([phone.change('meeting', meeting, { kind: 'case_conference', date: '2020-09-10', participants: 4, review_status: 'submitted' }, { create: true })]);
    await supervisorApi.call('POST', `/v1/records/${meeting}/review`, { decision: 'return', comment: '参加者数を確認してください。' }, { expect: 200 });
    // Offline meanwhile, Aoi withdrew the meeting to change it: her change meets the return.
    await phone.push([phone.change('meeting', meeting, { review_status: 'draft' })]);
    await page.click('#nav button[data-screen=conflicts]');
    const card = page.locator('article.conflict');
    await card.waitFor();
    const text = await card.textContent();
    check(text.includes('差し戻し') && text.includes('下書き'), `both statuses, in words: ${text}`);
    check(await card.locator('form.merged').count() === 0, 'a review status was offered a merged value');
    check(await card.locator('button.keep').count() === 2, 'each side should have its keep button');
    // The side holding the return is kept.
    const { data: listed } = await supervisorApi.call('GET', '/v1/conflicts', undefined, { expect: 200 });
    const conflict = listed.conflicts.find((c) => c.record === meeting);
    check(conflict?.field === 'review_status', `the conflict: ${JSON.stringify(listed.conflicts)}`);
    const returnedSide = conflict.current.value === 'returned' ? 'current' : 'other';
    await card.locator(`button.keep-${returnedSide}`).click();
    await page.locator('p.empty', { hasText: '未解決の競合はありません' }).waitFor();
    const { data } = await supervisorApi.call('GET', `/v1/records/${meeting}`, undefined, { expect: 200 });
    check(data.record.conflicts.length === 0, `conflicts left: ${JSON.stringify(data.record.conflicts)}`);
    check(data.record.fields.review_status === 'returned', `kept: ${data.record.fields.review_status}`);
  });

  await step('signing out ends the session on the server, and in the page\'s other tabs at once', async () => {
    const otherTab = await newPage(context);
    await otherTab.goto(`${server.url}/`);
    await otherTab.locator('#sign-out').waitFor();  // signed in there too: the cookie is the page's
    await page.click('#sign-out');
    await page.locator('#sign-in-message', { hasText: 'サインアウトしました' }).waitFor();
    // Left alone, the other tab shows the team's work no more (not after its idle time: now).
    await otherTab.locator('#sign-in-message', { hasText: 'サインアウトしました' }).waitFor({ timeout: 3000 });
    check(await otherTab.locator('form.sign-in').count() === 1, 'the other tab does not show the sign-in form');
    await otherTab.close();
    const session = await context.request.get(`${server.url}/v1/web/session`);
    check(session.status() === 401, `the cookie still works: ${session.status()}`);
  });

  await step('a supervisor whose password an administrator set chooses her own before anything else', async () => {
    const { data } = await admin.call('POST', '/v1/admin/users',
      { username: 'mika', display_name: '美香', role: 'supervisor', team_id: people.kita, password: 'mika-password-1', must_change_password: false }, { expect: 201 });
    const mika = new ApiClient(server.url);
    await mika.signIn('mika', 'mika-password-1');
    await admin.call('PATCH', `/v1/admin/users/${data.user.id}`, { password: 'mika one-time 2020' }, { expect: 200 });
    check((await mika.call('GET', '/v1/me')).status === 401, 'a session outlived the administrator setting the password');
    await signInOnPage('mika', 'mika one-time 2020');
    await page.locator('form.change-password').waitFor();
    check(await page.locator('h1').count() === 0, 'a screen was drawn under the password panel');
    await page.fill('input[name=current-password]', 'mika one-time 2020');
    await page.fill('input[name=new-password]', 'mika-password-2');
    await page.click('form.change-password button[type=submit]');
    await page.locator('form.change-password').waitFor({ state: 'detached' });
    await page.locator('h1', { hasText: '受信箱' }).waitFor();
    await mika.signIn('mika', 'mika-password-2');
    check((await mika.call('GET', '/v1/records')).status === 200, 'her own password opens nothing');
    await page.click('#sign-out');
    await page.locator('#sign-in-message', { hasText: 'サインアウトしました' }).waitFor();
  });

  await step('the administrator manages users and teams', async () => {
    await signInOnPage('admin', adminPassword);
    await page.locator('table.users tr[data-username=sato]').waitFor();
    await shot('10-users');
    await page.fill('form.create-user input[name=username]', 'chie');
    await page.fill('form.create-user input[name=display_name]', '千恵');
    await page.selectOption('form.create-user select[name=role]', 'staff');
    // A field worker without a team is refused, before the server (which refuses it too) is asked.
    await page.fill('form.create-user input[name=password]', 'chie-password-1');
    await page.click('form.create-user button[type=submit]');
    await page.locator('#notice', { hasText: 'チームが必要です' }).waitFor();
    const teamless = await admin.call('POST', '/v1/admin/users',
      { username: 'chie', role: 'staff', password: 'chie-password-1' });
    check(teamless.status === 400 && teamless.data.message.includes('team_id'), `a teamless worker: ${teamless.status}`);
    await page.selectOption('form.create-user select[name=team_id]', people.kita);
    await page.fill('form.create-user input[name=password]', 'chie-password-1');
    await page.click('form.create-user button[type=submit]');
    await page.locator('table.users tr[data-username=chie]').waitFor();
    await page.click('#nav button[data-screen=teams]');
    await page.fill('form.create-team input[name=name]', '南区');
    await page.click('form.create-team button[type=submit]');
    await page.locator('table.teams tr[data-team=南区]').waitFor();
    check((await page.textContent('table.teams tr[data-team=北区] td.number')) === '5', 'Kita has 5 members (Mika, the supervisor whose password was reset, among them)');
    await shot('11-teams');
  });

  await step('the administrator assigns a caseload', async () => {
    await page.click('#nav button[data-screen=caseload]');
    await page.fill('input[name=client]', records.clientA);
    await page.click('form.filters button[type=submit]');
    await page.locator('label[data-username=ben] input').check();
    await shot('12-caseload');
    await page.click('.caseload-editor button[type=submit]');
    await page.locator('#notice', { hasText: '割当を保存しました' }).waitFor();
    const { data } = await admin.call('GET', `/v1/admin/clients/${records.clientA}/caseload`, undefined, { expect: 200 });
    check(data.worker_ids.includes(people.ben) && data.worker_ids.includes(people.aoi), `caseload: ${JSON.stringify(data)}`);
  });

  await step('K-001 now on his caseload, Ben\'s phone sends the refused visit again: it is taken and no longer kept', async () => {
    const { outcomes } = await benPhone.offer([refusedVisit]);
    check(outcomes[0].status === 'accepted', `Ben's phone was told: ${JSON.stringify(outcomes)}`);
    for (const status of ['open', 'dismissed']) {
      const { data } = await supervisorApi.call('GET', `/v1/refused?status=${status}`, undefined, { expect: 200 });
      check(data.refused.length === 0, `still kept as ${status}: ${JSON.stringify(data.refused)}`);
    }
  });

  await step('the administrator revokes a device, which is then told to wipe', async () => {
    await page.click('#nav button[data-screen=devices]');
    const row = page.locator('tr[data-device="aoi tablet"]');
    const clock = await row.locator('td.clock-wrong').textContent();
    check(clock === '2 日進んでいる', `the tablet's clock shows as ${clock}`);
    // A web page's session never syncs: no clock to read, and never stale.
    const webClock = await page.locator('tr[data-device="web page"] td.clock').first().textContent();
    check(webClock === '—', `a web session's clock shows as ${webClock}`);
    check(await page.locator('#stale-devices').count() === 0, 'a device synced minutes ago is flagged as stale');
    await row.locator('button.revoke').click();
    await shot('13-devices');
    await page.click('#confirm-revoke');
    await page.locator('tr[data-device="aoi tablet"][data-revoked=true]').waitFor();
    const answer = await tablet.call('POST', '/v1/sync/pull', { after: 0 });
    check(answer.status === 401 && answer.data.error === 'wipe', `the tablet was told: ${answer.status} ${JSON.stringify(answer.data)}`);
  });

  await step('the administrator sets a yearly target', async () => {
    await page.click('#nav button[data-screen=targets]');
    await page.selectOption('#target-year', '2020');
    await page.click('form.filters button[type=submit]');
    await page.locator('form.targets').waitFor();
    if (await page.locator('tr[data-indicator=dispatch_requests]').count() === 0) {
      await page.fill('input[name=new-indicator]', 'dispatch_requests');
      await page.click('form.add-indicator button[type=submit]');
    }
    await page.fill('tr[data-indicator=dispatch_requests] input', '88');
    await shot('14-targets');
    await page.click('form.targets button[type=submit]');
    await page.locator('#notice', { hasText: '目標値を保存しました' }).waitFor();
    const { data } = await admin.call('GET', '/v1/admin/targets?fy=2020', undefined, { expect: 200 });
    check(data.targets.dispatch_requests === 88, `targets: ${JSON.stringify(data.targets)}`);
  });

  await step('the administrator sees the server\'s backups and takes one now', async () => {
    await page.click('#nav button[data-screen=backups]');
    await page.locator('p.backup-schedule').waitFor();
    const schedule = await page.locator('p.backup-schedule').textContent();
    check(schedule.includes('24 時間ごと') && schedule.includes('新しい 7 件'), `the schedule reads: ${schedule}`);
    check(await page.locator('#backup-failed').count() === 0, 'a backup failed');
    const before = await page.locator('table.backups tbody tr').count();
    check(before >= 1, 'the backup taken at start is not listed');
    await page.click('#back-up-now');
    await page.locator('#notice', { hasText: '読み戻して確認しました' }).waitFor();
    await page.locator('table.backups tbody tr').nth(before).waitFor();
    await shot('15-backups');
    const { data } = await admin.call('GET', '/v1/admin/backups', undefined, { expect: 200 });
    check(data.backups.length === before + 1, `backups: ${JSON.stringify(data.backups)}`);
    const newest = await page.locator('table.backups tbody tr').first().getAttribute('data-file');
    check(newest === data.backups[0].file, `the newest listed first: ${newest}`);
    // Why each is kept: the newest is also its week's newest (4 weeks kept by default).
    const why = await page.locator('table.backups tbody tr').first().locator('td.kept-as').textContent();
    check(why === '最新分, その週の最新', `the newest is kept as: ${why}`);
    const further = await page.locator('p.backup-keep-more').textContent();
    check(further.includes('直近 4 週のそれぞれ最新'), `the weeks kept: ${further}`);
    // Copied off the machine by the copy command, and said so once it is.
    for (let i = 0; i < 100; i++) {
      const { data: now } = await admin.call('GET', '/v1/admin/backups', undefined, { expect: 200 });
      if (now.copy.last_copied === newest) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await page.click('#nav button[data-screen=backups]');
    await page.locator('#backup-copy', { hasText: newest }).waitFor();
    const copyLine = await page.locator('#backup-copy').textContent();
    check(copyLine.includes('別の場所への写し：最新は'), `the copy line reads: ${copyLine}`);
  });

  await step('a phone that has not synced for longer than --stale-after is flagged as probably lost', async () => {
    // A server of its own, whose devices go stale in 0.86 s (this one's would, during the steps).
    const office = await startServer(resolve(options.server), join(out, 'stale-server.log'), ['--stale-after', '0.00001'],
      { adminPassword: 'the office administrator 2020' });
    const staleContext = await browser.newContext({ locale: 'ja-JP', timezoneId: 'Asia/Tokyo', viewport: { width: 1280, height: 900 } });
    try {
      const officeAdmin = new ApiClient(office.url);
      await officeAdmin.signIn('admin', office.adminPassword);
      const team = (await officeAdmin.call('POST', '/v1/admin/teams', { name: '北区' }, { expect: 201 })).data.team.id;
      await officeAdmin.call('POST', '/v1/admin/users',
        { username: 'aoi', role: 'peer_supporter', team_id: team, password: 'aoi-password-1', must_change_password: false }, { expect: 201 });
      const lost = new Device(office.url);
      await lost.signIn('aoi', 'aoi-password-1', 'lost phone');
      await lost.pull();
      await new Promise((done) => setTimeout(done, 1500));
      page = await newPage(staleContext);
      pageAddresses.add(`${office.url}/`);
      await page.goto(`${office.url}/`);
      await signInOnPage('admin', office.adminPassword);
      await page.click('#nav button[data-screen=devices]');
      const notice = await page.locator('#stale-devices').textContent();
      check(notice.includes('1 台の端末'), `the notice reads: ${notice}`);
      const state = await page.locator('tr[data-device="lost phone"] td.stale').textContent();
      check(state.includes('から同期なし'), `the lost phone's state reads: ${state}`);
      check(await page.locator('tr[data-device="web page"] td.stale').count() === 0, 'the page\'s own session is flagged');
      await shot('16-stale-device');
    } finally {
      await staleContext.close();
      await office.stop();
    }
  });

  await step('fifteen idle minutes sign the page out, on the server too', async () => {
    const idleContext = await browser.newContext({ locale: 'ja-JP', timezoneId: 'Asia/Tokyo' });
    page = await newPage(idleContext);
    await page.clock.install();
    await page.goto(`${server.url}/`);
    await signInOnPage('sato', 'sato-password-1');
    await page.locator('tr.record-row').first().waitFor();
    await page.clock.fastForward('15:01');
    await page.locator('#sign-in-message', { hasText: '15分間操作がなかったため' }).waitFor();
    await shot('17-signed-out-idle');
    const session = await idleContext.request.get(`${server.url}/v1/web/session`);
    check(session.status() === 401, `the idle session still works on the server: ${session.status()}`);
    await idleContext.close();
  });

  await step('no Content-Security-Policy violation, no script error, no record id in an address', async () => {
    check(problems.length === 0, `problems: ${problems.join(' | ')}`);
    pageAddresses.add(`${server.url}/`);
    const unexpected = addresses.filter((a) => !pageAddresses.has(a));
    check(unexpected.length === 0, `addresses other than the page's: ${unexpected.join(', ')}`);
  });
} catch {
  // Reported by step(); the summary below says it failed.
} finally {
  await browser?.close().catch(() => {});
  await server.stop();
}

console.log(`${results.passed} passed, ${results.failed} failed`);
console.log(`screenshots: ${out}`);
process.exit(results.failed === 0 && results.passed > 0 ? 0 : 1);
