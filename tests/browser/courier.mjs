// Drives the courier page (GET /courier) in headless Chromium like a volunteer with a bad
// connection, and checks that every acknowledgement is stored on the phone first and
// reaches the server exactly once.
//
//   node tests/browser/courier.mjs <baseUrl> <token> <run> [screenshotPath]
//
// CHROMIUM overrides the browser binary (default /usr/bin/chromium). The run must be fresh:
// every order on it still "on_run". Prints one JSON line on success:
//   {"orders":[...],"delivered":[...],"failed":[...]}
// and exits 0; on any failure prints the reason to stderr and exits 1.
//
// Steps:
//  1. open <baseUrl>/courier?run=<run>#token=<token> in a phone-sized context; the token
//     must leave the address bar and land in localStorage.
//  2. go offline (context.setOffline(true)); deliver every order but the last, fail the
//     last with reason no_answer. Every row must say "saved on phone", #saved-count must
//     equal the number of orders, and localStorage must hold one ack per order.
//  3. stay offline 2.5 s: nothing may change, no ack may be lost or re-created.
//  4. reload the page with the API unreachable. (A real offline navigation cannot load the
//     page at all, as there is no service worker, so the context goes back online while
//     every /v1/ request is aborted as if the connection had dropped.) The page must
//     render from its cached manifest, the sender must try and fail, and the acks must
//     still read "saved on phone" with the same ids.
//  5. let the API through again and wait up to 20 s until every row reads "confirmed"
//     and #saved-count is 0. Every POST for an order must have carried that order's one
//     Idempotency-Key. Against mock-server.mjs (which has GET /__drops) the server must
//     hold exactly one drop per order, under the phone's key.

import { chromium } from 'playwright-core';

const [baseArg, token, run, screenshotPath] = process.argv.slice(2);
if (!baseArg || !token || !run) {
  process.stderr.write('usage: node tests/browser/courier.mjs <baseUrl> <token> <run> [screenshotPath]\n');
  process.exit(2);
}
const baseUrl = baseArg.replace(/\/+$/, '');
const OVERALL_TIMEOUT_MS = 120_000;
const CONFIRM_TIMEOUT_MS = 20_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

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
    return {
      rows: [...document.querySelectorAll('[data-order]')].map((r) => ({
        order: r.getAttribute('data-order'),
        status: r.querySelector('.status') ? r.querySelector('.status').textContent.trim() : null,
        open: !!r.querySelector('button.deliver') && !r.querySelector('button.deliver').disabled
          && !!r.querySelector('button.fail') && !r.querySelector('button.fail').disabled
          && !!r.querySelector('select.reason'),
      })),
      saved: text('#saved-count'),
      confirmed: text('#confirmed-count'),
      network: text('#network'),
      acksRaw: localStorage.getItem('lifeline.acks.' + run),
      token: localStorage.getItem('lifeline.token'),
      manifestCached: localStorage.getItem('lifeline.manifest.' + run) !== null,
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

// The stored acks must be exactly one per order, with the expected outcome and state,
// and (after the first look) the very same ids.
function checkAcks(s, orders, failedOrder, state, ids) {
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
    if (a.state !== state) fail(`ack for ${a.order} is "${a.state}", expected "${state}"`);
    if (ids && ids.get(a.order) !== a.id) fail(`the ack for ${a.order} changed id from ${ids.get(a.order)} to ${a.id}`);
  }
  for (const o of orders) if (!seen.has(o)) fail(`no ack stored for order ${o}`);
  return new Map(acks.map((a) => [a.order, a.id]));
}

function allStatus(s, orders, status) {
  return s.rows.length === orders.length && s.rows.every((r) => r.status === status);
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
    locale: 'en-US',
  });

  // Everything the page asks for: the token must never travel in a URL, and every POST
  // for an order must carry the same Idempotency-Key.
  const requests = [];
  context.on('request', (req) => {
    const h = req.headers();
    requests.push({ method: req.method(), url: req.url(), key: h['idempotency-key'], body: req.postData() });
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

  // 1. open with the token in the fragment
  const pageUrl = `${baseUrl}/courier?run=${encodeURIComponent(run)}`;
  await page.goto(`${pageUrl}#token=${encodeURIComponent(token)}`, { waitUntil: 'load' });
  let s = await waitFor(page, 'the order rows', 15_000, (x) => {
    if (x.askingToken) fail(`the page asks for a token: ${x.tokenWhy}`);
    return x.rows.length > 0;
  });
  if (s.token !== token) fail('the token from the fragment was not stored in localStorage lifeline.token');
  if (s.href.includes('#') || s.href.includes(encodeURIComponent(token))) fail(`the token is still in the address bar: ${s.href}`);
  if (!s.manifestCached) fail('the manifest was not cached in localStorage');
  const orders = s.rows.map((r) => r.order);
  if (new Set(orders).size !== orders.length) fail(`an order appears twice: ${orders.join(', ')}`);
  for (const r of s.rows) if (!r.open) fail(`order ${r.order} cannot be acknowledged (status "${r.status}"): the run must be fresh`);
  const failedOrder = orders[orders.length - 1];
  const delivered = orders.slice(0, -1);
  const mockBefore = await mockDrops();
  if (mockBefore && mockBefore.count !== 0) fail(`the mock server already holds ${mockBefore.count} drops; POST /__reset first`);

  // 2. offline: tap every order
  await context.setOffline(true);
  await waitFor(page, '#network to read "offline"', 5_000, (x) => x.network === 'offline');
  for (const order of orders) {
    const row = page.locator(`[data-order="${order}"]`);
    if (order === failedOrder) {
      await row.locator('select.reason').selectOption('no_answer');
      await row.locator('button.fail').tap();
    } else {
      await row.locator('button.deliver').tap();
    }
    await waitFor(page, `order ${order} to read "saved on phone"`, 5_000,
      (x) => x.rows.find((r) => r.order === order).status === 'saved on phone');
  }
  s = await waitFor(page, 'every row "saved on phone" and #saved-count = ' + orders.length, 5_000,
    (x) => allStatus(x, orders, 'saved on phone') && x.saved === String(orders.length));
  if (s.rows.some((r) => r.open)) fail('an acknowledged order still offers its buttons');
  const ids = checkAcks(s, orders, failedOrder, 'saved');

  // 3. stay offline for a while: the sender loop runs and must lose nothing
  await sleep(2_500);
  s = await snapshot(page);
  if (!allStatus(s, orders, 'saved on phone') || s.saved !== String(orders.length)) {
    fail(`after 2.5 s offline the page changed: ${JSON.stringify(s.rows)}, saved-count ${s.saved}`);
  }
  checkAcks(s, orders, failedOrder, 'saved', ids);
  if (s.network !== 'offline') fail(`#network reads "${s.network}" while offline`);
  const sentOffline = requests.filter((r) => r.method === 'POST');
  if (sentOffline.length) fail(`the page sent ${sentOffline.length} drop(s) through an offline context`);
  const mockOffline = await mockDrops();
  if (mockOffline && mockOffline.count !== 0) fail(`the server got ${mockOffline.count} drops while the phone was offline`);

  // 4. reload with the API unreachable: the page comes from the server, nothing else does
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
  s = await waitFor(page, '#network to read "offline" after failed requests', 5_000, (x) => x.network === 'offline');
  if (!allStatus(s, orders, 'saved on phone') || s.saved !== String(orders.length)) {
    fail(`after the reload the acks do not all read "saved on phone": ${JSON.stringify(s.rows)}, saved-count ${s.saved}`);
  }
  if (s.rows.some((r) => r.open)) fail('after the reload an acknowledged order offers its buttons again');
  checkAcks(s, orders, failedOrder, 'saved', ids);
  const mockCut = await mockDrops();
  if (mockCut && mockCut.count !== 0) fail(`the server got ${mockCut.count} drops while the API was cut off`);

  // 5. the connection comes back
  await context.unroute(blockApi, abortApi);
  s = await waitFor(page, 'every row "confirmed" and #saved-count 0', CONFIRM_TIMEOUT_MS,
    (x) => allStatus(x, orders, 'confirmed') && x.saved === '0');
  if (s.confirmed !== String(orders.length)) fail(`#confirmed-count reads ${s.confirmed}, expected ${orders.length}`);
  if (s.network !== 'online') fail(`#network reads "${s.network}" after the drops were confirmed`);
  checkAcks(s, orders, failedOrder, 'confirmed', ids);

  for (const r of requests) {
    const u = new URL(r.url);
    if (u.search.includes(token) || u.search.includes(encodeURIComponent(token)) || u.pathname.includes(token)) {
      fail(`the token was put in a URL: ${u.origin}${u.pathname}${u.search}`);
    }
  }
  const posts = requests.filter((r) => r.method === 'POST');
  for (const p of posts) {
    let body;
    try { body = JSON.parse(p.body || ''); } catch { fail(`a drop was posted without a JSON body: ${p.body}`); }
    if (p.key !== ids.get(body.order)) fail(`a drop for ${body.order} was sent with Idempotency-Key ${p.key}, not its ack id ${ids.get(body.order)}`);
  }
  const mockAfter = await mockDrops();
  if (mockAfter) {
    if (mockAfter.count !== orders.length) fail(`the mock server stored ${mockAfter.count} drops for ${orders.length} orders`);
    for (const d of mockAfter.drops) {
      if (ids.get(d.order) !== d.key) fail(`the server stored drop ${d.key} for ${d.order}, but the phone's ack is ${ids.get(d.order)}`);
    }
  }
  if (problems.length) fail(problems.join('; '));

  if (screenshotPath) await page.screenshot({ path: screenshotPath, fullPage: true });
  await browser.close();
  browser = null;
  const failed = [failedOrder];
  process.stdout.write(JSON.stringify({ orders, delivered, failed }) + '\n');
  process.stderr.write(`courier.mjs: ${orders.length} acks saved offline, survived a reload, confirmed once each`
    + ` (${posts.length} POSTs${mockAfter ? `, mock stored ${mockAfter.count} drops` : ''})\n`);
}

main().then(() => {
  clearTimeout(watchdog);
  process.exit(0);
}, async (err) => {
  process.stderr.write(`courier.mjs: ${err instanceof Failure ? err.message : (err && err.stack) || err}\n`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
});
