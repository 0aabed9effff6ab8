// Drives the courier page (GET /courier) in headless Chromium like a volunteer with a bad
// connection, and checks that the page works offline after the first visit, speaks the
// phone's language, and that every acknowledgement is stored on the phone first and
// reaches the server exactly once.
//
//   node tests/browser/courier.mjs <baseUrl> <token> <run> [screenshotPath]
//
// CHROMIUM overrides the browser binary (default /usr/bin/chromium); COURIER_LOCALE the
// phone's locale (default zh-CN: the page must then speak Chinese). The run must be fresh:
// every order on it still "on_run". Prints one JSON line on success:
//   {"orders":[...],"delivered":[...],"failed":[...]}
// and exits 0; on any failure prints the reason to stderr and exits 1 (2: bad arguments).
// Every delivered order but the third and later ones gets a proof code (4711, A0813).
//
// Steps:
//  1. open <baseUrl>/courier?run=<run>#token=<token> online in a phone-sized context with
//     the locale; the token must leave the address bar and land in localStorage. <html
//     lang> and the UI follow the locale; rows come in the manifest's order; building and
//     unit names (building_name_zh etc., when the manifest has them) and the route length
//     (distance_m) are shown. Wait until the service worker is active, controls the page
//     and holds the shell, and no /v1/ answer in its caches.
//  2. go offline (context.setOffline(true), which also cuts the service worker's own
//     fetches: checked) and reload: the page must come from the service worker and render
//     the stops from the manifest saved in localStorage.
//  3. still offline: type a proof code on the first two delivered orders, deliver every
//     order but the last, fail the last with reason no_answer. Every row's .status must
//     have data-state="saved", #saved-count equal the number of orders, and localStorage
//     hold one ack per order, with its code.
//  4. stay offline 2.5 s: nothing may change, no ack may be lost or re-created, nothing
//     sent.
//  5. navigate to the page again, still offline: from the service worker again, the acks
//     (with their codes) still "saved".
//  6. reload with the API unreachable: the context goes back online while every /v1/
//     request is aborted as if the connection had dropped. The page must render from its
//     cached manifest, the sender must try and fail, the acks stay "saved" with the same
//     ids.
//  7. let the API through and wait up to 20 s until every row is "confirmed" and
//     #saved-count is 0. Every POST for an order must have carried that order's one
//     Idempotency-Key and its proof code (and none without a code). Against
//     mock-server.mjs (which has GET /__drops) the server must hold exactly one drop per
//     order, under the phone's key, with the proof code.

import { chromium } from 'playwright-core';

const [baseArg, token, run, screenshotPath] = process.argv.slice(2);
if (!baseArg || !token || !run) {
  process.stderr.write('usage: node tests/browser/courier.mjs <baseUrl> <token> <run> [screenshotPath]\n');
  process.exit(2);
}
const baseUrl = baseArg.replace(/\/+$/, '');
const LOCALE = process.env.COURIER_LOCALE || 'zh-CN';
const ZH = /^zh(-|$)/i.test(LOCALE);
const OVERALL_TIMEOUT_MS = 120_000;
const CONFIRM_TIMEOUT_MS = 20_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
const CJK = /[\u4e00-\u9fff]/;
const CODES = ['4711', 'A0813'];

class Failure extends Error {}
const fail = (msg) => { throw new Failure(msg); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let browser;
const watchdog = setTimeout(() => {
  process.stderr.write(`courier.mjs: gave up after ${OVERALL_TIMEOUT_MS / 1000} s\n`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

// What the page shows and stores, in one round trip.
async function snapshot(page) {
  return page.evaluate((run) => {
    const text = (sel) => { const e = document.querySelector(sel); return e ? e.textContent.trim() : null; };
    const parts = (e) => ({
      text: e.textContent.trim(),
      main: e.querySelector('.name') ? e.querySelector('.name').textContent.trim() : null,
      other: e.querySelector('.other-lang') ? e.querySelector('.other-lang').textContent.trim() : null,
    });
    const distance = document.querySelector('#distance');
    return {
      rows: [...document.querySelectorAll('[data-order]')].map((r) => ({
        order: r.getAttribute('data-order'),
        state: r.querySelector('.status') ? r.querySelector('.status').getAttribute('data-state') : null,
        status: r.querySelector('.status') ? r.querySelector('.status').textContent.trim() : null,
        outcome: r.querySelector('.outcome') ? r.querySelector('.outcome').textContent.trim() : null,
        open: !!r.querySelector('button.deliver') && !r.querySelector('button.deliver').disabled
          && !!r.querySelector('button.fail') && !r.querySelector('button.fail').disabled
          && !!r.querySelector('select.reason') && !!r.querySelector('input.proof'),
      })),
      buildings: [...document.querySelectorAll('h2.building')].map((h) => ({ id: h.getAttribute('data-building'), ...parts(h) })),
      units: [...document.querySelectorAll('[data-household]')].map((s) => {
        const u = s.querySelector('.unit');
        return { household: s.getAttribute('data-household'), id: u && u.getAttribute('data-unit'), ...(u ? parts(u) : {}) };
      }),
      distance: distance && !distance.hidden ? distance.textContent.trim() : null,
      lang: document.documentElement.lang,
      deliverLabel: text('button.deliver'),
      savedLabel: text('[data-i18n="onPhone"]'),
      saved: text('#saved-count'),
      confirmed: text('#confirmed-count'),
      network: document.querySelector('#network') ? document.querySelector('#network').getAttribute('data-state') : null,
      networkLabel: text('#network'),
      acksRaw: localStorage.getItem('lifeline.acks.' + run),
      token: localStorage.getItem('lifeline.token'),
      manifestRaw: localStorage.getItem('lifeline.manifest.' + run),
      href: location.href,
      notice: text('#notice'),
      askingToken: !!document.querySelector('#token-form') && !document.querySelector('#token-form').hidden,
      tokenWhy: text('#token-why'),
    };
  }, run);
}

// Polls until check(snapshot) returns true; the last snapshot explains a timeout.
async function waitFor(page, what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  let lastErr = null;
  for (;;) {
    try {
      last = await snapshot(page);
      if (check(last)) return last;
    } catch (err) {
      if (err instanceof Failure) throw err;
      lastErr = err; // e.g. the page is navigating
    }
    if (Date.now() > deadline) {
      const seen = last ? JSON.stringify({ rows: last.rows, saved: last.saved, confirmed: last.confirmed, network: last.network, notice: last.notice })
        : String(lastErr && lastErr.message);
      fail(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${seen}`);
    }
    await sleep(100);
  }
}

function parseAcks(s) {
  if (!s.acksRaw) return [];
  const acks = JSON.parse(s.acksRaw);
  if (!Array.isArray(acks)) fail('lifeline.acks.<run> is not an array');
  return acks;
}

// The stored acks must be exactly one per order, with the expected outcome, proof code
// and state, and (after the first look) the very same ids.
function checkAcks(s, orders, failedOrder, codes, state, ids) {
  const acks = parseAcks(s);
  if (acks.length !== orders.length) fail(`expected ${orders.length} acks stored on the phone, found ${acks.length}: ${s.acksRaw}`);
  const seen = new Map();
  for (const a of acks) {
    if (!UUID.test(a.id || '')) fail(`ack id ${a.id} is not a v4 UUID`);
    if (seen.has(a.order)) fail(`two acks for order ${a.order}`);
    seen.set(a.order, a);
    const wantOutcome = a.order === failedOrder ? 'failed' : 'delivered';
    if (a.outcome !== wantOutcome) fail(`ack for ${a.order} has outcome ${a.outcome}, expected ${wantOutcome}`);
    if (wantOutcome === 'failed' && a.reason !== 'no_answer') fail(`failed ack for ${a.order} has reason ${a.reason}`);
    const code = (a.proof && a.proof.code) || null;
    if (code !== (codes.get(a.order) || null)) fail(`ack for ${a.order} holds proof code ${code}, expected ${codes.get(a.order) || 'none'}`);
    if (a.state !== state) fail(`ack for ${a.order} is "${a.state}", expected "${state}"`);
    if (ids && ids.get(a.order) !== a.id) fail(`the ack for ${a.order} changed id from ${ids.get(a.order)} to ${a.id}`);
  }
  for (const o of orders) if (!seen.has(o)) fail(`no ack stored for order ${o}`);
  return new Map(acks.map((a) => [a.order, a.id]));
}

function allState(s, orders, state) {
  return s.rows.length === orders.length && s.rows.every((r) => r.state === state);
}

const str = (v) => (typeof v === 'string' && v.trim() ? v.trim() : '');

// A name shown in the phone's language first, the other one beside it; an id without.
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

// The page follows the manifest: its order, its names, its route length, the locale.
function checkRendering(s, label) {
  let manifest;
  try { manifest = JSON.parse(s.manifestRaw); } catch { fail(`${label}: no manifest saved in localStorage`); }
  const stops = manifest.stops || [];
  const expected = stops.flatMap((stop) => (stop.orders || []).map((o) => o.order));
  const shown = s.rows.map((r) => r.order);
  if (shown.join() !== expected.join()) fail(`${label}: the rows are not in the manifest's order: ${shown.join(', ')} vs ${expected.join(', ')}`);
  const headings = [];
  for (const stop of stops) if (headings[headings.length - 1] !== stop.building) headings.push(stop.building);
  if (s.buildings.map((b) => b.id).join() !== headings.join()) fail(`${label}: building headings ${s.buildings.map((b) => b.id).join(', ')}, expected ${headings.join(', ')}`);
  let b = 0;
  for (const [i, stop] of stops.entries()) {
    if (i === 0 || stops[i - 1].building !== stop.building) checkName('building', s.buildings[b++], stop.building, stop.building_name, stop.building_name_zh);
    const unit = s.units[i];
    if (!unit || unit.household !== stop.household) fail(`${label}: stop ${i} is not ${stop.household}`);
    checkName('unit', unit, stop.unit, stop.unit_name, stop.unit_name_zh);
  }
  if (typeof manifest.distance_m === 'number') {
    const m = manifest.distance_m;
    const n = m >= 1000 ? (m / 1000).toFixed(1) : String(Math.round(m));
    if (!s.distance || !s.distance.includes(n)) fail(`${label}: the route length (${m} m) shows as "${s.distance}"`);
    if (ZH && !/路线/.test(s.distance)) fail(`${label}: the route length is not in Chinese: "${s.distance}"`);
  } else if (s.distance) fail(`${label}: a route length "${s.distance}" without distance_m in the manifest`);
  if (ZH) {
    if (!/^zh/i.test(s.lang)) fail(`${label}: <html lang="${s.lang}"> for locale ${LOCALE}`);
    for (const [what, v] of [['the deliver button', s.deliverLabel], ['the saved counter', s.savedLabel], ['#network', s.networkLabel]]) {
      if (!CJK.test(v || '')) fail(`${label}: ${what} reads "${v}", not Chinese, for locale ${LOCALE}`);
    }
  } else if (!/^en/i.test(s.lang) || CJK.test(s.deliverLabel || '')) {
    fail(`${label}: <html lang="${s.lang}">, deliver button "${s.deliverLabel}" for locale ${LOCALE}`);
  }
}

// GET /__drops exists only on mock-server.mjs; against the gateway this returns null.
async function mockDrops() {
  try {
    const res = await fetch(`${baseUrl}/__drops`, { signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) return null;
    const body = await res.json();
    return body && Array.isArray(body.drops) ? body : null;
  } catch {
    return null;
  }
}

// The service worker controls the page and its cache holds the shell and no API answer.
async function checkServiceWorker(page) {
  const deadline = Date.now() + 15_000;
  let last;
  for (;;) {
    last = await page.evaluate(async () => {
      const reg = await navigator.serviceWorker.getRegistration();
      const urls = [];
      for (const name of await caches.keys()) {
        for (const req of await (await caches.open(name)).keys()) urls.push(new URL(req.url).pathname);
      }
      return {
        active: !!(reg && reg.active && reg.active.state === 'activated'),
        scope: reg ? new URL(reg.scope).pathname : null,
        controlled: !!navigator.serviceWorker.controller,
        urls,
      };
    }).catch((err) => ({ error: err.message }));
    const shell = ['/courier', '/courier-sw.js', '/courier.webmanifest'];
    if (last.active && last.controlled && shell.every((p) => last.urls.includes(p))) {
      if (last.scope !== '/') fail(`the service worker's scope is ${last.scope}, not /`);
      if (last.urls.some((p) => p.startsWith('/v1/'))) fail(`the service worker cached an API answer: ${last.urls.join(', ')}`);
      return;
    }
    if (Date.now() > deadline) fail(`the service worker did not take over with the shell cached: ${JSON.stringify(last)}`);
    await sleep(100);
  }
}

async function main() {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: LOCALE,
    serviceWorkers: 'allow',
  });

  // Everything the page (and its service worker) asks for: the token must never travel in
  // a URL, the worker never fetch the API, and every POST for an order must carry the
  // same Idempotency-Key.
  const requests = [];
  context.on('request', (req) => {
    const h = req.headers();
    requests.push({ method: req.method(), url: req.url(), key: h['idempotency-key'], body: req.postData(), sw: !!req.serviceWorker() });
  });
  const problems = [];
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // Chromium itself logs every failed request ("Failed to load resource: ...") as a console
    // error; those are expected while the connection is down. Anything else is a bug.
    if (msg.type() === 'error' && !/^Failed to load resource/.test(msg.text())) problems.push(`console error: ${msg.text()}`);
  });
  page.setDefaultTimeout(15_000);

  // 1. open online with the token in the fragment
  const pageUrl = `${baseUrl}/courier?run=${encodeURIComponent(run)}`;
  await page.goto(`${pageUrl}#token=${encodeURIComponent(token)}`, { waitUntil: 'load' });
  let s = await waitFor(page, 'the order rows', 15_000, (x) => {
    if (x.askingToken) fail(`the page asks for a token: ${x.tokenWhy}`);
    return x.rows.length > 0 && x.manifestRaw !== null;
  });
  if (s.token !== token) fail('the token from the fragment was not stored in localStorage lifeline.token');
  if (s.href.includes('#') || s.href.includes(encodeURIComponent(token))) fail(`the token is still in the address bar: ${s.href}`);
  const orders = s.rows.map((r) => r.order);
  if (new Set(orders).size !== orders.length) fail(`an order appears twice: ${orders.join(', ')}`);
  for (const r of s.rows) if (!r.open) fail(`order ${r.order} cannot be acknowledged (state "${r.state}"): the run must be fresh`);
  checkRendering(s, 'first visit');
  const failedOrder = orders[orders.length - 1];
  const delivered = orders.slice(0, -1);
  const codes = new Map(delivered.slice(0, CODES.length).map((o, i) => [o, CODES[i]]));
  const mockBefore = await mockDrops();
  if (mockBefore && mockBefore.count !== 0) fail(`the mock server already holds ${mockBefore.count} drops; POST /__reset first`);
  await checkServiceWorker(page);

  // 2. truly offline: the page itself must come from the service worker
  await context.setOffline(true);
  await waitFor(page, '#network to be "offline"', 5_000, (x) => x.network === 'offline');
  const worker = context.serviceWorkers()[0];
  if (worker) {
    const probe = await worker.evaluate(() => fetch('/courier?probe=offline', { cache: 'no-store' })
      .then((r) => `reached the server (${r.status})`, () => 'cut off'));
    if (probe !== 'cut off') fail(`offline, the service worker still ${probe}: the offline reload would prove nothing`);
  }
  const offlineLoad = async (how) => {
    const res = await (how === 'reload' ? page.reload({ waitUntil: 'load' }) : page.goto(pageUrl, { waitUntil: 'load' }))
      .catch((err) => fail(`offline ${how}: the page did not load (${err.message.split('\n')[0]}): no copy from the service worker`));
    if (!res || res.status() !== 200 || !res.fromServiceWorker()) {
      fail(`offline ${how}: the page did not come from the service worker (${res ? `${res.status()}, fromServiceWorker ${res.fromServiceWorker()}` : 'no response'})`);
    }
    return waitFor(page, `the rows rendered from the saved manifest after the offline ${how}`, 10_000,
      (x) => x.rows.length === orders.length && x.network === 'offline');
  };
  s = await offlineLoad('reload');
  if (s.rows.map((r) => r.order).join() !== orders.join()) fail('after the offline reload the page shows other orders');
  if (s.rows.some((r) => !r.open)) fail('after the offline reload an order cannot be acknowledged');
  checkRendering(s, 'offline reload');

  // 3. offline: tap every order, with a proof code on the first deliveries
  for (const order of orders) {
    const row = page.locator(`[data-order="${order}"]`);
    if (order === failedOrder) {
      await row.locator('select.reason').selectOption('no_answer');
      await row.locator('button.fail').tap();
    } else {
      if (codes.has(order)) await row.locator('input.proof').fill(codes.get(order));
      await row.locator('button.deliver').tap();
    }
    await waitFor(page, `order ${order} to be "saved"`, 5_000,
      (x) => x.rows.find((r) => r.order === order).state === 'saved');
  }
  s = await waitFor(page, 'every row "saved" and #saved-count = ' + orders.length, 5_000,
    (x) => allState(x, orders, 'saved') && x.saved === String(orders.length));
  if (s.rows.some((r) => r.open)) fail('an acknowledged order still offers its buttons');
  if (ZH && s.rows.some((r) => !CJK.test(r.status))) fail(`a saved row's status is not in Chinese: ${JSON.stringify(s.rows)}`);
  const ids = checkAcks(s, orders, failedOrder, codes, 'saved');

  // 4. stay offline for a while: the sender loop runs and must lose nothing
  await sleep(2_500);
  s = await snapshot(page);
  if (!allState(s, orders, 'saved') || s.saved !== String(orders.length)) {
    fail(`after 2.5 s offline the page changed: ${JSON.stringify(s.rows)}, saved-count ${s.saved}`);
  }
  checkAcks(s, orders, failedOrder, codes, 'saved', ids);
  if (s.network !== 'offline') fail(`#network is "${s.network}" while offline`);
  const sentOffline = requests.filter((r) => r.method === 'POST');
  if (sentOffline.length) fail(`the page sent ${sentOffline.length} drop(s) through an offline context`);
  const mockOffline = await mockDrops();
  if (mockOffline && mockOffline.count !== 0) fail(`the server got ${mockOffline.count} drops while the phone was offline`);

  // 5. open the page again, still offline: the acks and their codes survive
  s = await offlineLoad('navigation');
  if (!allState(s, orders, 'saved') || s.saved !== String(orders.length)) {
    fail(`after the offline navigation the acks are not all "saved": ${JSON.stringify(s.rows)}, saved-count ${s.saved}`);
  }
  if (s.rows.some((r) => r.open)) fail('after the offline navigation an acknowledged order offers its buttons again');
  for (const [order, code] of codes) {
    if (!s.rows.find((r) => r.order === order).outcome.includes(code)) fail(`order ${order} does not show its proof code ${code}`);
  }
  checkAcks(s, orders, failedOrder, codes, 'saved', ids);

  // 6. reload with the API unreachable: the page comes from the server, nothing else does
  let aborted = { manifest: 0, drops: 0 };
  const blockApi = (url) => /\/v1\/runs\/[^/]+\/(manifest|drops)$/.test(url.pathname);
  const abortApi = (route) => {
    if (route.request().url().endsWith('/manifest')) aborted.manifest++; else aborted.drops++;
    return route.abort('internetdisconnected');
  };
  await context.route(blockApi, abortApi);
  await context.setOffline(false);
  await page.reload({ waitUntil: 'load' });
  s = await waitFor(page, 'the rows rendered from the cached manifest after the reload', 10_000,
    (x) => x.rows.length === orders.length);
  if (s.rows.map((r) => r.order).join() !== orders.join()) fail('after the reload the page shows other orders');
  s = await waitFor(page, 'the manifest and a drop to be tried (and cut off) after the reload', 10_000,
    () => aborted.manifest > 0 && aborted.drops > 0);
  s = await waitFor(page, '#network to be "offline" after failed requests', 5_000, (x) => x.network === 'offline');
  if (!allState(s, orders, 'saved') || s.saved !== String(orders.length)) {
    fail(`after the reload the acks are not all "saved": ${JSON.stringify(s.rows)}, saved-count ${s.saved}`);
  }
  if (s.rows.some((r) => r.open)) fail('after the reload an acknowledged order offers its buttons again');
  checkAcks(s, orders, failedOrder, codes, 'saved', ids);
  const mockCut = await mockDrops();
  if (mockCut && mockCut.count !== 0) fail(`the server got ${mockCut.count} drops while the API was cut off`);

  // 7. the connection comes back
  await context.unroute(blockApi, abortApi);
  s = await waitFor(page, 'every row "confirmed" and #saved-count 0', CONFIRM_TIMEOUT_MS,
    (x) => allState(x, orders, 'confirmed') && x.saved === '0');
  if (s.confirmed !== String(orders.length)) fail(`#confirmed-count reads ${s.confirmed}, expected ${orders.length}`);
  if (s.network !== 'online') fail(`#network is "${s.network}" after the drops were confirmed`);
  checkAcks(s, orders, failedOrder, codes, 'confirmed', ids);
  await checkServiceWorker(page);

  for (const r of requests) {
    const u = new URL(r.url);
    if (u.search.includes(token) || u.search.includes(encodeURIComponent(token)) || u.pathname.includes(token)) {
      fail(`the token was put in a URL: ${u.origin}${u.pathname}${u.search}`);
    }
    if (r.sw && u.pathname.includes('/v1/')) fail(`the service worker fetched the API itself: ${r.method} ${u.pathname}`);
  }
  const posts = requests.filter((r) => r.method === 'POST');
  const keysByOrder = new Map();
  for (const p of posts) {
    let body;
    try { body = JSON.parse(p.body || ''); } catch { fail(`a drop was posted without a JSON body: ${p.body}`); }
    if (p.key !== ids.get(body.order)) fail(`a drop for ${body.order} was sent with Idempotency-Key ${p.key}, not its ack id ${ids.get(body.order)}`);
    keysByOrder.set(body.order, new Set([...(keysByOrder.get(body.order) || []), p.key]));
    const code = codes.get(body.order);
    if (code ? !(body.proof && body.proof.code === code) : body.proof !== undefined) {
      fail(`the drop for ${body.order} was sent with proof ${JSON.stringify(body.proof)}, expected ${code ? `code ${code}` : 'none'}`);
    }
  }
  for (const o of orders) {
    if ((keysByOrder.get(o) || new Set()).size !== 1) fail(`order ${o} was posted under ${(keysByOrder.get(o) || new Set()).size} Idempotency-Keys`);
  }
  const mockAfter = await mockDrops();
  if (mockAfter) {
    if (mockAfter.count !== orders.length) fail(`the mock server stored ${mockAfter.count} drops for ${orders.length} orders`);
    for (const d of mockAfter.drops) {
      if (ids.get(d.order) !== d.key) fail(`the server stored drop ${d.key} for ${d.order}, but the phone's ack is ${ids.get(d.order)}`);
      const code = codes.get(d.order) || null;
      if (((d.proof && d.proof.code) || null) !== code) fail(`the server stored proof ${JSON.stringify(d.proof)} for ${d.order}, expected ${code ? `code ${code}` : 'none'}`);
    }
  }
  if (problems.length) fail(problems.join('; '));

  if (screenshotPath) await page.screenshot({ path: screenshotPath, fullPage: true });
  await browser.close();
  browser = null;
  const failed = [failedOrder];
  process.stdout.write(JSON.stringify({ orders, delivered, failed }) + '\n');
  process.stderr.write(`courier.mjs (${LOCALE}): ${orders.length} acks saved offline (${codes.size} with a proof code), page loaded offline`
    + ` from the service worker twice, confirmed once each (${posts.length} POSTs${mockAfter ? `, mock stored ${mockAfter.count} drops` : ''})\n`);
}

main().then(() => {
  clearTimeout(watchdog);
  process.exit(0);
}, async (err) => {
  process.stderr.write(`courier.mjs: ${err instanceof Failure ? err.message : (err && err.stack) || err}\n`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
});
