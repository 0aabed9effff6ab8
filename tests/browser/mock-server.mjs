// A small stand-in for the lifeline gateway's courier API, node stdlib only.
//
//   node tests/browser/mock-server.mjs <port> <path-to-courier.html>
//
// (port 0 picks a free port.) It documents the contract the courier page relies on and
// lets the page and tests/browser/courier.mjs be tried without the Rust gateway:
//
//   GET  /courier?run=<run>              the page (read from disk on every request),
//                                        text/html; charset=utf-8
//   GET  /courier-sw.js                  its service worker, from the same directory:
//                                        application/javascript, Service-Worker-Allowed: /
//   GET  /courier.webmanifest            its web app manifest, same directory:
//                                        application/manifest+json
//   GET  /v1/runs/{run}/manifest         Authorization: Bearer <token> -> 200 manifest;
//                                        top-level distance_m (metres, optional) and per
//                                        stop building_name, building_name_zh, unit_name,
//                                        unit_name_zh (optional: the second building here
//                                        has none, like an older server)
//   POST /v1/runs/{run}/drops            Authorization, Idempotency-Key, JSON body
//                                        {order, outcome, reason?, proof?: {code?,
//                                        photo_sha256?}}
//                                        -> 202 first time, 200 with the first answer on a
//                                           retry with the same key
//   GET  /__drops                        (mock only) what was stored, for checking that
//                                        every drop arrived exactly once
//   POST /__reset                        (mock only) forget all drops, orders back on_run
//
// Errors are {"error":{"code","message"}} with 400/401/404/409/422.
//
// Environment:
//   MOCK_TOKEN   the bearer token accepted (default "test-token")
//   MOCK_RUN     the one run that exists (default "run-0192-demo")
//   MOCK_FLAKY=1 drop requests misbehave in a fixed cycle: the 1st of every 3 gets a 503
//                before anything is stored, the 2nd is stored and then the connection is
//                cut without an answer (the phone must retry with the same key), the 3rd
//                is answered normally.
//   MOCK_REJECT  an order id whose drops are refused with a 409 (a permanent refusal)
//   MOCK_PLAIN=1 the manifest as an older gateway sends it: no names, no distance_m
//
// It prints "listening on http://127.0.0.1:<port>" once ready.

import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';

const [portArg, htmlPath] = process.argv.slice(2);
if (!portArg || !htmlPath) {
  console.error('usage: node mock-server.mjs <port> <path-to-courier.html>');
  process.exit(2);
}
const TOKEN = process.env.MOCK_TOKEN || 'test-token';
const RUN = process.env.MOCK_RUN || 'run-0192-demo';
const FLAKY = process.env.MOCK_FLAKY === '1';
const REJECT = process.env.MOCK_REJECT || '';
const PLAIN = process.env.MOCK_PLAIN === '1';
const REASONS = new Set(['no_answer', 'wrong_address', 'refused', 'access_blocked', 'damaged', 'unit_sealed', 'other']);

const item = (id, name, quantity = 1) => ({ item: id, name, quantity });
// Named stops carry the optional names a newer gateway sends; unnamed ones only ids.
const stop = (b, u, door, orders, named = !PLAIN) => ({
  building: `tianlun-b${b}`,
  ...(named ? { building_name: `Building ${Number(b)}`, building_name_zh: `${Number(b)}号楼` } : {}),
  unit: `tianlun-b${b}-u${u}`,
  ...(named ? { unit_name: `Unit ${u}`, unit_name_zh: `${u}单元` } : { unit_name: null, unit_name_zh: null }),
  household: `tianlun-b${b}-u${u}-0${door}`,
  door,
  orders: orders.map(([order, items]) => ({ order, stage: 'on_run', items })),
});
// Stops in driving order, which is not the order of their ids: the page must not sort.
const manifest = {
  run: RUN,
  community: 'tianlun',
  tricycle: 'tri-13',
  state: 'departed',
  courier: 'vol-tianlun-007',
  ...(PLAIN ? {} : { distance_m: 2400 }),
  stops: [
    stop('09', 2, '101', [['0192a0c1-7e11-7c3a-9d2e-000000000004', [item('veg-pack', 'Vegetable package', 2), item('watermelon', 'Watermelon (donated)')]]], false),
    stop('07', 8, '301', [['0192a0c1-7e11-7c3a-9d2e-000000000001', [item('veg-pack', 'Vegetable package'), item('fruit-pack', 'Fruit package')]]]),
    stop('07', 8, '502', [
      ['0192a0c1-7e11-7c3a-9d2e-000000000002', [item('rice-flour-oil', 'Rice, flour and oil package')]],
      ['0192a0c1-7e11-7c3a-9d2e-000000000003', [item('medicine-bag', 'Medicine (bought on behalf)')]],
    ]),
  ],
};
const orders = new Map();
for (const s of manifest.stops) for (const o of s.orders) orders.set(o.order, o);

const byKey = new Map();       // Idempotency-Key -> { status, answer, request }
const byOrder = new Map();     // order -> key of the drop that settled it
let dropRequests = 0;
const log = [];                // every drop request: { key, order, answered }

function send(res, status, body, type = 'application/json', headers = {}) {
  const text = type === 'application/json' ? JSON.stringify(body) : body;
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const fail = (res, status, code, message) => send(res, status, { error: { code, message } });

// The page's static files, read from disk on every request (edit and reload).
const staticDir = path.dirname(htmlPath);
const STATIC = {
  '/courier': [htmlPath, 'text/html; charset=utf-8', {}],
  '/courier-sw.js': [path.join(staticDir, 'courier-sw.js'), 'application/javascript', { 'Service-Worker-Allowed': '/' }],
  '/courier.webmanifest': [path.join(staticDir, 'courier.webmanifest'), 'application/manifest+json', {}],
};

// A drop's proof as the gateway takes it: absent, or an object of optional strings.
function badProof(proof) {
  if (proof == null) return null;
  if (typeof proof !== 'object' || Array.isArray(proof)) return 'proof must be an object';
  for (const [k, v] of Object.entries(proof)) {
    if (k !== 'code' && k !== 'photo_sha256') return `unknown proof field ${k}`;
    if (v != null && typeof v !== 'string') return `proof.${k} must be a string`;
  }
  return null;
}
const proofOf = (body) => (body.proof == null ? null
  : Object.fromEntries(Object.entries(body.proof).filter(([, v]) => v != null)));

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function authorized(req, res) {
  if (req.headers.authorization !== `Bearer ${TOKEN}`) {
    fail(res, 401, 'unauthorized', 'missing or wrong bearer token');
    return false;
  }
  return true;
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://mock');
  if ([...url.searchParams.keys()].some((k) => /token/i.test(k)) || url.search.includes(TOKEN)) {
    return fail(res, 400, 'token_in_query', 'a token must never be put in a query string');
  }
  try {
    if (req.method === 'GET' && Object.hasOwn(STATIC, url.pathname)) {
      const [file, type, headers] = STATIC[url.pathname];
      return send(res, 200, fs.readFileSync(file, 'utf8'), type, headers);
    }
    if (req.method === 'GET' && url.pathname === '/__drops') {
      const drops = [...byKey.entries()].map(([key, d]) => ({ key, ...d.request, event_id: d.answer.event_id }));
      return send(res, 200, { count: drops.length, requests: dropRequests, drops, log });
    }
    if (req.method === 'POST' && url.pathname === '/__reset') {
      byKey.clear(); byOrder.clear(); log.length = 0; dropRequests = 0;
      for (const o of orders.values()) o.stage = 'on_run';
      return send(res, 200, { reset: true });
    }
    const m = url.pathname.match(/^\/v1\/runs\/([^/]+)\/(manifest|drops)$/);
    if (!m) return fail(res, 404, 'not_found', `no route ${req.method} ${url.pathname}`);
    const run = decodeURIComponent(m[1]);
    if (!authorized(req, res)) return;
    if (run !== RUN) return fail(res, 404, 'run_not_found', `run ${run} not found`);

    if (m[2] === 'manifest') {
      if (req.method !== 'GET') return fail(res, 405, 'method_not_allowed', 'use GET');
      return send(res, 200, manifest);
    }
    if (req.method !== 'POST') return fail(res, 405, 'method_not_allowed', 'use POST');
    const raw = await readBody(req);
    dropRequests++;
    const key = req.headers['idempotency-key'];
    if (!key || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(key)) {
      return fail(res, 400, 'bad_idempotency_key', 'Idempotency-Key must be a UUID');
    }
    if (!/^application\/json\b/.test(req.headers['content-type'] || '')) {
      return fail(res, 415, 'unsupported_media_type', 'Content-Type must be application/json');
    }
    let body;
    try { body = JSON.parse(raw); } catch { return fail(res, 400, 'bad_json', 'body is not JSON'); }
    const entry = { key, order: body && body.order, answered: true };
    log.push(entry);

    const cycle = dropRequests % 3;
    if (FLAKY && cycle === 1) { entry.answered = false; return fail(res, 503, 'unavailable', 'try again'); }

    const seen = byKey.get(key);
    if (seen) {
      const same = seen.request.order === body.order && seen.request.outcome === body.outcome && seen.request.reason === (body.reason ?? null)
        && JSON.stringify(seen.request.proof) === JSON.stringify(badProof(body.proof) ? null : proofOf(body));
      if (!same) return fail(res, 422, 'idempotency_key_reused', 'this Idempotency-Key was used for another drop');
      if (FLAKY && cycle === 2) { entry.answered = false; return req.socket.destroy(); }
      return send(res, 200, seen.answer);
    }
    const order = orders.get(body.order);
    if (!order) return fail(res, 404, 'order_not_found', `order ${body.order} is not on run ${run}`);
    if (body.outcome !== 'delivered' && body.outcome !== 'failed') return fail(res, 422, 'bad_outcome', 'outcome must be delivered or failed');
    if (body.outcome === 'failed' && !REASONS.has(body.reason)) return fail(res, 422, 'bad_reason', `unknown reason ${body.reason}`);
    if (body.outcome === 'delivered' && body.reason != null) return fail(res, 422, 'bad_reason', 'a delivered drop has no reason');
    const proofProblem = badProof(body.proof);
    if (proofProblem) return fail(res, 400, 'bad_json', proofProblem);
    if (body.order === REJECT) return fail(res, 409, 'order_cancelled', 'the resident cancelled this order');
    if (byOrder.has(body.order)) return fail(res, 409, 'already_dropped', `order ${body.order} already has a drop`);

    const answer = { order: body.order, outcome: body.outcome, event_id: crypto.randomUUID() };
    const request = { order: body.order, outcome: body.outcome, reason: body.reason ?? null, proof: proofOf(body) };
    byKey.set(key, { answer, request });
    byOrder.set(body.order, key);
    order.stage = body.outcome === 'delivered' ? 'delivered' : 'failed';
    // Stored: with MOCK_FLAKY the answer is lost on the way back (a cut connection).
    if (FLAKY && cycle === 2) { entry.answered = false; return req.socket.destroy(); }
    return send(res, 202, answer);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) fail(res, 500, 'internal', String(err));
  }
});

server.listen(Number(portArg), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
