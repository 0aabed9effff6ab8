// Drives the staff console (GET /staff) in headless Chromium like community staff at a desk:
// mark a household vulnerable, see its open routine order raised to priority once the
// read side catches up, set its phone, and check that the phone never leaks out of the
// page (URL, storage, console) and that a write retried after a lost answer keeps its
// Idempotency-Key.
//
//   node tests/browser/staff.mjs <baseUrl> <token> <community> <building> <household> <order> [screenshotPath]
//
// CHROMIUM overrides the browser binary (default /usr/bin/chromium); STAFF_LOCALE the
// browser's locale (default zh-CN: the page must then speak Chinese). The household must
// be in the building, the order an open "routine" order of the household, and the household
// must lack at least one vulnerability flag. Prints one JSON line on success:
//   {"household":...,"order":...,"priority_before":"routine","priority_after":"priority","flags":[...]}
// and exits 0; on any failure prints the reason to stderr and exits 1 (2: bad arguments).
// Only the staff API is used (GET /v1/communities/{c}/buildings besides the page), so it
// runs against the gateway as well as against staff-mock-server.mjs.
//
// Steps:
//  1. open <baseUrl>/staff?community=<c>#token=<t>: the token must leave the address bar
//     and land in localStorage; <html lang> and the UI follow the locale; the building
//     chooser ([data-building]) shows the building's names in the locale's language first.
//  2. choose the building: the household's row ([data-household]) and the order
//     ([data-order], data-priority="routine", data-stage) show up.
//  3. tick a flag the household lacks (elderly_alone, or the first unticked) and press
//     button.save-flags while the answer to that POST is lost (the request reaches the
//     server, the page sees a dropped connection) and the building's reads are held: the
//     row's .status must say data-state="error", and pressing save again must re-send the
//     same Idempotency-Key (a v4 UUID).
//  4. let the reads through: within 20 s the row's status is "saved" (data-edit="flags"),
//     the box still ticked and the order's data-priority "priority".
//  5. type the phone 13800138000 into input[data-field="phone"] and press
//     button.save-contact: "saved" (data-edit="contact"), under a fresh key.
//  6. reload (the token now from localStorage), choose the building again: flag, phone
//     and priority are what the server reads back.
//  7. the phone never appeared in location.href, any request URL, localStorage,
//     sessionStorage, cookies or the console; every request stayed on the page's origin;
//     no page errors. Against the mock (GET /__events) the server took exactly one flags
//     write and one contact write, under the keys the page sent.

import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const [baseArg, token, community, building, household, order, screenshotPath] = args;
if (!baseArg || !token || !community || !building || !household || !order) {
  process.stderr.write('usage: node tests/browser/staff.mjs <baseUrl> <token> <community> <building> <household> <order> [screenshotPath]\n');
  process.exit(2);
}
const baseUrl = baseArg.replace(/\/+$/, '');
const origin = new URL(baseUrl).origin;
const LOCALE = process.env.STAFF_LOCALE || 'zh-CN';
const ZH = /^zh(-|$)/i.test(LOCALE);
const PHONE = '13800138000';
const FLAGS = ['elderly_alone', 'dialysis', 'pregnant', 'exam_student', 'disabled'];
const OVERALL_TIMEOUT_MS = 120_000;
const VISIBLE_TIMEOUT_MS = 20_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
const CJK = /[\u4e00-\u9fff]/;

class Failure extends Error {}
const fail = (msg) => { throw new Failure(msg); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const css = (s) => s.replace(/["\\]/g, '\\$&');

let browser;
const watchdog = setTimeout(() => {
  process.stderr.write(`staff.mjs: gave up after ${OVERALL_TIMEOUT_MS / 1000} s\n`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

// What the page shows for the household, in one round trip.
async function snapshot(page) {
  return page.evaluate(({ household, order, building, flags }) => {
    const q = (root, sel) => (root ? root.querySelector(sel) : null);
    const row = document.querySelector(`[data-household="${CSS.escape(household)}"]`);
    const o = q(row, `[data-order="${CSS.escape(order)}"]`);
    const status = q(row, '.status[data-state]');
    const phone = q(row, 'input[data-field="phone"]');
    const saveFlags = q(row, 'button.save-flags');
    const chooser = document.querySelector(`[data-building="${CSS.escape(building)}"]`);
    const part = (e, sel) => (e && e.querySelector(sel) ? e.querySelector(sel).textContent.trim() : null);
    const unitGroup = row ? row.closest('[data-unit]') : null;
    return {
      href: location.href,
      lang: document.documentElement.lang,
      chooser: chooser ? { text: chooser.textContent.trim(), main: part(chooser, '.name'), other: part(chooser, '.other-lang') } : null,
      unit: unitGroup ? { id: unitGroup.getAttribute('data-unit'), main: part(unitGroup, 'h3 .name'), other: part(unitGroup, 'h3 .other-lang'), text: part(unitGroup, 'h3') } : null,
      row: !!row,
      rowVisible: !!row && row.offsetParent !== null,
      flags: row ? flags.filter((f) => { const b = q(row, `input[type=checkbox][data-flag="${f}"]`); return b && b.checked; }) : [],
      boxes: row ? flags.filter((f) => !!q(row, `input[type=checkbox][data-flag="${f}"]`)) : [],
      order: o ? { priority: o.getAttribute('data-priority'), stage: o.getAttribute('data-stage'), text: o.textContent.trim() } : null,
      state: status ? status.getAttribute('data-state') : null,
      edit: status ? status.getAttribute('data-edit') : null,
      status: status ? status.textContent.trim() : null,
      phone: phone ? phone.value : null,
      saveFlagsLabel: saveFlags ? saveFlags.textContent.trim() : null,
      saveFlagsEnabled: !!saveFlags && !saveFlags.disabled,
      tabLabel: part(document, '[data-tab="households"]'),
      askingToken: !!document.querySelector('#token-form') && !document.querySelector('#token-form').hidden,
      notice: part(document, '#notice'),
      storage: {
        local: Object.keys(localStorage).map((k) => [k, localStorage.getItem(k)]),
        session: Object.keys(sessionStorage).map((k) => [k, sessionStorage.getItem(k)]),
        cookie: document.cookie,
      },
    };
  }, { household, order, building, flags: FLAGS });
}

// Polls until check(snapshot) returns true; the last snapshot explains a timeout.
async function waitFor(page, what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  let lastErr = null;
  for (;;) {
    try {
      last = await snapshot(page);
      if (last.askingToken) fail(`the page asks for a token (${last.notice || 'no notice'})`);
      if (check(last)) return last;
    } catch (err) {
      if (err instanceof Failure) throw err;
      lastErr = err; // e.g. the page is navigating
    }
    if (Date.now() > deadline) {
      const seen = last ? JSON.stringify({ row: last.row, flags: last.flags, order: last.order, state: last.state, edit: last.edit, status: last.status, notice: last.notice })
        : String(lastErr && lastErr.message);
      fail(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${seen}`);
    }
    await sleep(100);
  }
}

const str = (v) => (typeof v === 'string' && v.trim() ? v.trim() : '');
// A name shown in the locale's language first, the other one beside it; an id without.
function checkName(what, shown, id, en, zh) {
  if (!shown) fail(`no ${what} for ${id} on the page`);
  const [mine, other] = ZH ? [str(zh), str(en)] : [str(en), str(zh)];
  const main = mine || other;
  if (!main) {
    if (!shown.text.includes(id)) fail(`the ${what} ${id} has no names and does not show its id: "${shown.text}"`);
    return;
  }
  if (shown.main !== main) fail(`the ${what} ${id} shows "${shown.main}" first, expected "${main}" (${LOCALE})`);
  const second = mine && other && other !== mine ? other : null;
  if (shown.other !== second) fail(`the ${what} ${id} shows "${shown.other}" beside its name, expected "${second}"`);
}

function checkLanguage(s, label) {
  if (ZH) {
    if (!/^zh/i.test(s.lang)) fail(`${label}: <html lang="${s.lang}"> for locale ${LOCALE}`);
    for (const [what, v] of [['the households tab', s.tabLabel], ['button.save-flags', s.saveFlagsLabel]]) {
      if (v !== null && !CJK.test(v)) fail(`${label}: ${what} reads "${v}", not Chinese, for locale ${LOCALE}`);
    }
  } else {
    if (!/^en/i.test(s.lang)) fail(`${label}: <html lang="${s.lang}"> for locale ${LOCALE}`);
    for (const [what, v] of [['the households tab', s.tabLabel], ['button.save-flags', s.saveFlagsLabel]]) {
      if (v && CJK.test(v)) fail(`${label}: ${what} reads "${v}" for locale ${LOCALE}`);
    }
  }
}

// The building list as the API gives it, for the names the page must show.
async function apiBuildings() {
  const res = await fetch(`${baseUrl}/v1/communities/${encodeURIComponent(community)}/buildings`, {
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 200) fail(`GET /v1/communities/${community}/buildings answered ${res.status}: ${await res.text()}`);
  const body = await res.json();
  if (!body || !Array.isArray(body.buildings)) fail(`GET .../buildings: no "buildings" list: ${JSON.stringify(body).slice(0, 300)}`);
  return body.buildings;
}

// GET /__events exists only on staff-mock-server.mjs; against the gateway this is null.
async function mockEvents() {
  try {
    const res = await fetch(`${baseUrl}/__events`, { signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) return null;
    const body = await res.json();
    return body && Array.isArray(body.events) ? body.events : null;
  } catch {
    return null;
  }
}

async function chooseBuilding(page) {
  const tabButton = page.locator('[data-tab="households"]');
  if (await tabButton.count()) await tabButton.click();
  await page.locator(`[data-building="${css(building)}"]`).click();
  return waitFor(page, `household ${household} and order ${order} in building ${building}`, 15_000,
    (x) => x.row && x.rowVisible && x.order !== null && x.boxes.length === FLAGS.length);
}

async function main() {
  const buildings = await apiBuildings();
  const b = buildings.find((x) => x.building === building);
  if (!b) fail(`building ${building} is not in GET .../buildings`);

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: LOCALE });

  const requests = [];
  context.on('request', (req) => {
    const h = req.headers();
    requests.push({ method: req.method(), url: req.url(), key: h['idempotency-key'] || null, body: req.postData() });
  });
  const problems = [];
  const consoleText = [];
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    consoleText.push(msg.text());
    // Chromium logs every failed request ("Failed to load resource: ...") itself; the one
    // this driver cuts off is expected. Anything else is a bug.
    if (msg.type() === 'error' && !/^Failed to load resource/.test(msg.text())) problems.push(`console error: ${msg.text()}`);
  });
  page.setDefaultTimeout(15_000);

  // 1. open with the token in the fragment
  const pageUrl = `${baseUrl}/staff?community=${encodeURIComponent(community)}`;
  await page.goto(`${pageUrl}#token=${encodeURIComponent(token)}`, { waitUntil: 'load' });
  let s = await waitFor(page, `the building chooser entry [data-building="${building}"]`, 15_000, (x) => x.chooser !== null);
  if (s.href.includes('#') || s.href.includes(token) || s.href.includes(encodeURIComponent(token))) fail(`the token is still in the address bar: ${s.href}`);
  if (!s.storage.local.some(([, v]) => v === token)) fail('the token from the fragment was not kept in localStorage');
  checkLanguage(s, 'first visit');
  checkName('building chooser entry', s.chooser, building, b.name, b.name_zh);

  // 2. the building, the household, the order
  s = await chooseBuilding(page);
  checkLanguage(s, 'the building');
  const unitInfo = (b.units || []).map((u) => (typeof u === 'string' ? { unit: u } : u)).find((u) => s.unit && u.unit === s.unit.id);
  if (unitInfo) checkName('unit heading', s.unit, unitInfo.unit, unitInfo.name, unitInfo.name_zh);
  const priorityBefore = s.order.priority;
  if (priorityBefore !== 'routine') fail(`order ${order} shows data-priority="${priorityBefore}", expected "routine" (a fresh order of a household that is not vulnerable)`);
  if (!s.order.stage) fail(`order ${order} has no data-stage`);
  if (ZH && !CJK.test(s.order.text)) fail(`order ${order} reads "${s.order.text}", not Chinese`);
  const flagsBefore = s.flags;
  const flag = !flagsBefore.includes('elderly_alone') ? 'elderly_alone' : FLAGS.find((f) => !flagsBefore.includes(f));
  if (!flag) fail(`household ${household} already has every flag: nothing to tick`);
  const flagsAfter = FLAGS.filter((f) => flagsBefore.includes(f) || f === flag);

  // 3. the answer to the flags write is lost; the building's reads wait meanwhile
  const row = page.locator(`[data-household="${css(household)}"]`);
  const flagsPath = `/v1/communities/${encodeURIComponent(community)}/households/${encodeURIComponent(household)}/vulnerabilities`;
  let flagPosts = 0;
  const cutFlags = async (route) => {
    flagPosts += 1;
    if (flagPosts > 1) return route.continue();
    await route.fetch().catch(() => {});     // it reaches the server…
    return route.abort('connectionreset');    // …and the page never hears back
  };
  await page.route((url) => url.pathname === flagsPath, cutFlags);
  let releaseReads;
  const readsHeld = new Promise((r) => { releaseReads = r; });
  const holdReads = async (route) => { await readsHeld; return route.continue().catch(() => {}); };
  const isBuildingRead = (url) => /\/v1\/communities\/[^/]+\/(households|orders)$/.test(url.pathname);
  await page.route(isBuildingRead, holdReads);

  await row.locator(`input[type=checkbox][data-flag="${flag}"]`).check();
  await row.locator('button.save-flags').click();
  s = await waitFor(page, 'the row to show the lost answer (data-state="error")', 20_000,
    (x) => x.state === 'error' && x.edit === 'flags');
  if (ZH && !CJK.test(s.status)) fail(`the error status reads "${s.status}", not Chinese`);
  if (!s.flags.includes(flag)) fail(`after the lost answer the ${flag} box is no longer ticked`);
  if (!s.saveFlagsEnabled) fail('after the lost answer button.save-flags cannot be pressed again');
  await row.locator('button.save-flags').click();
  const deadline = Date.now() + 10_000;
  while (flagPosts < 2) {
    if (Date.now() > deadline) fail('pressing save again did not send the flags again');
    await sleep(50);
  }
  releaseReads();
  await page.unroute(isBuildingRead, holdReads);

  // 4. the read side catches up: saved, still ticked, the order raised
  s = await waitFor(page, `the flags saved and order ${order} shown with data-priority="priority"`, VISIBLE_TIMEOUT_MS,
    (x) => x.state === 'saved' && x.edit === 'flags' && x.order && x.order.priority === 'priority');
  if (s.flags.slice().sort().join() !== flagsAfter.slice().sort().join()) fail(`after the re-read the row shows flags [${s.flags}], expected [${flagsAfter}]`);
  if (s.saveFlagsEnabled) fail('after the re-read button.save-flags is still enabled: the page does not see its change as saved');
  await page.unroute((url) => url.pathname === flagsPath, cutFlags);
  const flagWrites = requests.filter((r) => r.method === 'POST' && new URL(r.url).pathname === flagsPath);
  if (flagWrites.length !== 2) fail(`expected 2 flags POSTs (the lost one and the retry), saw ${flagWrites.length}`);
  const flagKey = flagWrites[0].key;
  if (!UUID.test(flagKey || '')) fail(`the flags write was sent with Idempotency-Key ${flagKey}, not a v4 UUID`);
  if (flagWrites[1].key !== flagKey) fail(`the retry of the same edit was sent under another Idempotency-Key (${flagWrites[1].key}, first ${flagKey})`);
  for (const w of flagWrites) {
    let body;
    try { body = JSON.parse(w.body || ''); } catch { fail(`the flags write has no JSON body: ${w.body}`); }
    if (!body || !Array.isArray(body.vulnerabilities) || body.vulnerabilities.slice().sort().join() !== flagsAfter.slice().sort().join()) {
      fail(`the flags write sent ${w.body}, expected {"vulnerabilities": [${flagsAfter}]}`);
    }
  }

  // 5. the phone
  const phoneBefore = s.phone;
  if (phoneBefore === PHONE) fail(`household ${household} already has the phone ${PHONE}: choose another household`);
  await row.locator('input[data-field="phone"]').fill(PHONE);
  await row.locator('button.save-contact').click();
  s = await waitFor(page, 'the phone saved (data-state="saved", data-edit="contact")', VISIBLE_TIMEOUT_MS,
    (x) => x.state === 'saved' && x.edit === 'contact');
  if (s.phone !== PHONE) fail(`after the re-read the phone field holds "${s.phone}"`);
  const contactPath = `/v1/communities/${encodeURIComponent(community)}/households/${encodeURIComponent(household)}/contact`;
  const contactWrites = requests.filter((r) => r.method === 'PUT' && new URL(r.url).pathname === contactPath);
  if (contactWrites.length !== 1) fail(`expected one PUT .../contact, saw ${contactWrites.length}`);
  if (!UUID.test(contactWrites[0].key || '') || contactWrites[0].key === flagKey) fail(`the contact write's Idempotency-Key ${contactWrites[0].key} is not a fresh v4 UUID`);
  if (JSON.parse(contactWrites[0].body || '{}').phone !== PHONE) fail(`the contact write sent ${contactWrites[0].body}`);

  // 6. reload: what the server reads back
  await page.reload({ waitUntil: 'load' });
  s = await chooseBuilding(page);
  s = await waitFor(page, 'the flag, phone and priority after a reload', 10_000,
    (x) => x.order && x.order.priority === 'priority' && x.flags.includes(flag) && x.phone === PHONE);
  const flagsShown = s.flags;

  // 7. the phone stayed in the page
  s = await snapshot(page);
  const leaks = [];
  if (s.href.includes(PHONE)) leaks.push(`location.href ${s.href}`);
  for (const [k, v] of s.storage.local) if (String(k).includes(PHONE) || String(v).includes(PHONE)) leaks.push(`localStorage ${k}`);
  for (const [k, v] of s.storage.session) if (String(k).includes(PHONE) || String(v).includes(PHONE)) leaks.push(`sessionStorage ${k}`);
  if (s.storage.cookie.includes(PHONE)) leaks.push('document.cookie');
  for (const text of consoleText) if (text.includes(PHONE)) leaks.push(`the console: ${text.slice(0, 120)}`);
  for (const r of requests) {
    const u = new URL(r.url);
    if (u.origin !== origin && u.protocol !== 'data:') fail(`the page loaded something from another origin: ${r.method} ${u.origin}${u.pathname}`);
    if ((u.pathname + u.search).includes(PHONE)) leaks.push(`a request URL: ${r.method} ${u.pathname}${u.search}`);
    if ((u.pathname + u.search).includes(token) || (u.pathname + u.search).includes(encodeURIComponent(token))) fail(`the token was put in a URL: ${u.pathname}${u.search}`);
  }
  if (leaks.length) fail(`the phone number leaked into ${leaks.join('; ')}`);
  const writes = requests.filter((r) => r.method !== 'GET');
  for (const w of writes) if (!UUID.test(w.key || '')) fail(`${w.method} ${new URL(w.url).pathname} was sent without an Idempotency-Key`);

  const events = await mockEvents();
  if (events) {
    const mine = events.filter((e) => e.household === household);
    const flagEvents = mine.filter((e) => e.kind === 'flags');
    const contactEvents = mine.filter((e) => e.kind === 'contact');
    if (flagEvents.length !== 1 || flagEvents[0].key !== flagKey) fail(`the mock took ${flagEvents.length} flags writes (keys ${flagEvents.map((e) => e.key)}), expected one under ${flagKey}`);
    if (contactEvents.length !== 1 || contactEvents[0].key !== contactWrites[0].key) fail(`the mock took ${contactEvents.length} contact writes, expected one under ${contactWrites[0].key}`);
  }
  if (problems.length) fail(problems.join('; '));

  if (screenshotPath) await page.screenshot({ path: screenshotPath, fullPage: true });
  await browser.close();
  browser = null;
  process.stdout.write(JSON.stringify({ household, order, priority_before: priorityBefore, priority_after: 'priority', flags: flagsShown }) + '\n');
  process.stderr.write(`staff.mjs (${LOCALE}): ticked ${flag} on ${household}, the lost answer retried under the same key, `
    + `order ${order} raised routine -> priority, phone saved; ${requests.length} requests${events ? `, mock took ${events.length} writes` : ''}\n`);
}

main().then(() => {
  clearTimeout(watchdog);
  process.exit(0);
}, async (err) => {
  process.stderr.write(`staff.mjs: ${err instanceof Failure ? err.message : (err && err.stack) || err}\n`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
});
