// A small stand-in for the lifeline gateway's staff API, node stdlib only.
//
//   node tests/browser/staff-mock-server.mjs <port> <path-to-staff.html>
//
// (port 0 picks a free port.) It documents the contract the staff console
// (crates/lifeline-gateway/static/staff.html) relies on, and lets the page and
// tests/browser/staff.mjs be tried without the Rust gateway. One community, "tianlun":
//
//   GET  /staff?community=<c>                        the page (read from disk every time)
//   GET  /v1/communities/{c}/buildings                {community, buildings: [{building,
//                                                     name, name_zh, x_m, y_m, units: [{unit,
//                                                     name, name_zh}]}]} (names may be null)
//   GET  /v1/communities/{c}/households?building=B    {community, building, households:
//                                                     [{household, building, unit, door,
//                                                     head_count, vulnerabilities, phone}]}
//   GET  /v1/communities/{c}/orders?building=B        {orders: [OrderRecord...]}, open and
//                                                     closed orders of the building
//   POST /v1/communities/{c}/households/{h}/vulnerabilities  {"vulnerabilities": [...]}
//                                                     -> 202 FlagsSettled; 409 no_change
//   PUT  /v1/communities/{c}/households/{h}           {"building","unit","door",
//                                                     "head_count","vulnerabilities"}
//                                                     -> 202 {household, event_id,
//                                                     stream_sequence}; registers a new one
//   PUT  /v1/communities/{c}/households/{h}/contact   {"phone"} -> 202 {household, event_id,
//                                                     stream_sequence}
//   GET  /v1/communities/{c}/summary | escalations | coverage?hours=N
//   POST /v1/communities/{c}/campaigns                StartCampaign -> 202 CampaignAccepted
//   GET  /v1/communities/{c}/campaigns/{campaign}     CampaignProgress (404 for the first
//                                                     second, like the real one until its
//                                                     first order is seen)
//   POST /v1/communities/{c}/seals                    ChangeSeal -> 202 SealAccepted
//   GET  /__events                                    (mock only) every write taken, in order,
//                                                     with its Idempotency-Key
//   POST /__reset                                     (mock only) back to the start
//
// Writes are like the real gateway's: an Idempotency-Key gets the first answer again
// (the write is not repeated); each write is applied to what the GETs read MOCK_DELAY_MS
// later (default 300: the read side is eventually consistent). Applying flags that make a
// household vulnerable raises its open routine orders to "priority" (orders are never
// lowered). Errors are {"error": {"code", "message"}} with 400/401/403/404/409/415/422.
//
// Environment: MOCK_TOKEN the bearer token accepted (default "test-token"), MOCK_DELAY_MS.
// It prints "listening on http://127.0.0.1:<port>" once ready.

import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';

const [portArg, htmlPath] = process.argv.slice(2);
if (!portArg || !htmlPath) {
  console.error('usage: node staff-mock-server.mjs <port> <path-to-staff.html>');
  process.exit(2);
}
const TOKEN = process.env.MOCK_TOKEN || 'test-token';
const DELAY_MS = Number(process.env.MOCK_DELAY_MS || 300);
const COMMUNITY = 'tianlun';
const FLAGS = new Set(['elderly_alone', 'dialysis', 'pregnant', 'exam_student', 'disabled']);
const PRIORITY_RANK = { routine: 0, priority: 1, urgent: 2 };
const FINAL = new Set(['delivered', 'failed', 'nothing_picked', 'cancelled']);
const STAGES = ['placed', 'accepted', 'picked', 'at_checkpoint', 'on_run', 'delivered', 'failed', 'nothing_picked', 'cancelled'];
const ID = /^[A-Za-z0-9_-]{1,128}$/;

// ---------- the data ----------
const unit = (b, u, named = true) => ({
  unit: `tianlun-b${b}-u${u}`,
  name: named ? `Unit ${u}` : null,
  name_zh: named ? `${u}单元` : null,
});
function initialState() {
  const buildings = [
    { building: 'tianlun-b07', name: 'Building 7', name_zh: '7号楼', x_m: 388, y_m: 162, units: [unit('07', 1), unit('07', 8)] },
    // like an older registration: no Chinese name, one unit without names
    { building: 'tianlun-b09', name: 'Building 9', name_zh: null, x_m: 520, y_m: 240, units: [unit('09', 2, false)] },
  ];
  const hh = (b, u, door, head_count, vulnerabilities = [], phone = null) => ({
    household: `tianlun-b${b}-u${u}-${door.padStart(4, '0')}`,
    building: `tianlun-b${b}`,
    unit: `tianlun-b${b}-u${u}`,
    door,
    head_count,
    vulnerabilities,
    phone,
  });
  const households = [
    hh('07', 8, '301', 3),
    hh('07', 8, '302', 2, ['dialysis'], '13900139000'),
    hh('07', 8, '401', 1, ['elderly_alone']),
    hh('07', 1, '101', 4),
    hh('09', 2, '101', 2),
  ];
  const t0 = Date.parse('2020-06-14T08:00:00+08:00');
  let n = 0;
  const order = (household, priority, stage, items, minutes = 0) => {
    const h = households.find((x) => x.household === household);
    n += 1;
    const at = new Date(t0 + minutes * 60_000).toISOString();
    return {
      order: `0192a0c1-7e11-7c3a-9d2e-${String(n).padStart(12, '0')}`,
      community: COMMUNITY,
      building: h.building,
      unit: h.unit,
      household,
      kind: 'goods',
      partner: 'yonghui',
      priority,
      campaign: null,
      items: items.map(([item, quantity]) => ({ item, quantity })),
      status: { stage, failed_drops: 0 },
      is_final: FINAL.has(stage),
      run: stage === 'on_run' ? 'run-0192-demo' : null,
      placed_at_ms: t0 + minutes * 60_000,
      history: [{ stage: 'placed', at, event_id: crypto.randomUUID(), detail: null }],
      escalation: null,
      errand: null,
      parcel: null,
    };
  };
  const orders = [
    order('tianlun-b07-u8-0301', 'routine', 'placed', [['veg-pack', 1], ['eggs', 1]], 10),
    order('tianlun-b07-u8-0301', 'routine', 'delivered', [['fruit-pack', 1]], -600),
    order('tianlun-b07-u8-0302', 'priority', 'on_run', [['med-dialysis-kit', 1]], 5),
    order('tianlun-b07-u8-0401', 'urgent', 'accepted', [['med-blood-pressure', 1]], 2),
    order('tianlun-b07-u1-0101', 'routine', 'picked', [['staples-pack', 1]], 30),
    order('tianlun-b09-u2-0101', 'routine', 'placed', [['watermelon', 1]], 40),
  ];
  return { buildings, households, orders, seals: [], campaigns: new Map(), events: [], keys: new Map(), sequence: 1000 };
}
let state = initialState();

// ---------- HTTP helpers ----------
function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}
const error = (res, status, code, message) => send(res, status, { error: { code, message } });

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 64 * 1024) { reject(new Error('too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// Applies `apply` to what the GETs read, DELAY_MS from now.
const later = (apply) => setTimeout(apply, DELAY_MS);

function findHousehold(id) { return state.households.find((h) => h.household === id); }
function findBuilding(id) { return state.buildings.find((b) => b.building === id); }
function unitOf(buildingId, unitId) {
  const b = findBuilding(buildingId);
  return b && b.units.find((u) => u.unit === unitId);
}

// The real server's rule: a household that becomes vulnerable has its open routine orders
// raised to priority; orders are never lowered.
function raiseOrders(householdId) {
  for (const o of state.orders) {
    if (o.household === householdId && !o.is_final && o.priority === 'routine') o.priority = 'priority';
  }
}

function validFlags(list) {
  return Array.isArray(list) && list.every((f) => typeof f === 'string' && FLAGS.has(f));
}
const accepted = (extra) => ({ ...extra, event_id: crypto.randomUUID(), stream_sequence: ++state.sequence });

// ---------- the commands ----------
// Each returns [status, body] and, when it changes anything, records the event and
// schedules its effect on the read side.
function settleFlags(h, body) {
  if (!body || typeof body !== 'object' || Array.isArray(body) || Object.keys(body).some((k) => k !== 'vulnerabilities')) {
    return [422, { error: { code: 'unprocessable', message: 'expected {"vulnerabilities": [...]}' } }];
  }
  if (!validFlags(body.vulnerabilities)) return [422, { error: { code: 'unknown_vulnerability', message: 'an unknown flag' } }];
  const household = findHousehold(h);
  if (!household) return [422, { error: { code: 'unknown_household', message: `no household ${h}` } }];
  const flags = [...new Set(body.vulnerabilities)];
  const pending = state.events.filter((e) => e.household === h && e.kind === 'flags' && !e.applied);
  const current = pending.length ? pending[pending.length - 1].vulnerabilities : household.vulnerabilities;
  if (sameSet(current, flags)) return [409, { error: { code: 'no_change', message: 'the household already has these flags' } }];
  const event = { kind: 'flags', household: h, vulnerabilities: flags, applied: false };
  state.events.push(event);
  later(() => {
    household.vulnerabilities = flags;
    if (flags.length) raiseOrders(h);
    event.applied = true;
  });
  return [202, accepted({ household: h, vulnerabilities: flags })];
}

function putHousehold(h, body) {
  const keys = ['building', 'unit', 'door', 'head_count', 'vulnerabilities'];
  if (!body || typeof body !== 'object' || Array.isArray(body) || Object.keys(body).some((k) => !keys.includes(k))) {
    return [422, { error: { code: 'unprocessable', message: `expected {${keys.join(', ')}}` } }];
  }
  if (!ID.test(h)) return [404, { error: { code: 'not_found', message: `no household ${JSON.stringify(h)}` } }];
  if (typeof body.building !== 'string' || !findBuilding(body.building)) return [422, { error: { code: 'unknown_building', message: `no building ${body.building}` } }];
  if (typeof body.unit !== 'string' || !unitOf(body.building, body.unit)) return [422, { error: { code: 'unknown_unit', message: `no unit ${body.unit} in ${body.building}` } }];
  if (typeof body.door !== 'string' || !body.door.trim() || body.door.length > 16) return [422, { error: { code: 'bad_door', message: 'door: 1 to 16 characters' } }];
  if (!Number.isInteger(body.head_count) || body.head_count < 1 || body.head_count > 99) return [422, { error: { code: 'head_count_out_of_range', message: 'head_count: 1 to 99' } }];
  if (!validFlags(body.vulnerabilities || [])) return [422, { error: { code: 'unknown_vulnerability', message: 'an unknown flag' } }];
  const flags = [...new Set(body.vulnerabilities || [])];
  const existing = findHousehold(h);
  if (existing && existing.building === body.building && existing.unit === body.unit && existing.door === body.door
    && existing.head_count === body.head_count && sameSet(existing.vulnerabilities, flags)) {
    return [409, { error: { code: 'no_change', message: 'the household is registered so already' } }];
  }
  const event = { kind: 'registration', household: h, registration: { ...body, vulnerabilities: flags }, applied: false };
  state.events.push(event);
  later(() => {
    const now = findHousehold(h);
    const record = { household: h, building: body.building, unit: body.unit, door: body.door, head_count: body.head_count, vulnerabilities: flags, phone: now ? now.phone : null };
    if (now) Object.assign(now, record); else state.households.push(record);
    if (flags.length) raiseOrders(h);
    event.applied = true;
  });
  return [202, accepted({ household: h })];
}

function putContact(h, body) {
  if (!body || typeof body !== 'object' || Array.isArray(body) || Object.keys(body).some((k) => k !== 'phone')) {
    return [422, { error: { code: 'unprocessable', message: 'expected {"phone": "..."}' } }];
  }
  if (typeof body.phone !== 'string' || !/^\+?\d{5,20}$/.test(body.phone)) return [422, { error: { code: 'bad_phone', message: 'phone: 5 to 20 digits, an optional leading +' } }];
  const household = findHousehold(h);
  if (!household) return [422, { error: { code: 'unknown_household', message: `no household ${h}` } }];
  if (household.phone === body.phone) return [409, { error: { code: 'no_change', message: 'the household has this phone already' } }];
  const event = { kind: 'contact', household: h, phone: body.phone, applied: false };
  state.events.push(event);
  later(() => { household.phone = body.phone; event.applied = true; });
  return [202, accepted({ household: h })];
}

function startCampaign(body) {
  if (!body || typeof body !== 'object' || typeof body.name !== 'string' || !body.name.trim() || body.name.length > 200) {
    return [422, { error: { code: 'campaign_name', message: 'name: 1 to 200 characters' } }];
  }
  if (!['yonghui', 'shuocheng'].includes(body.partner)) return [422, { error: { code: 'unknown_partner', message: `no partner ${body.partner}` } }];
  if (!Array.isArray(body.lines) || !body.lines.length) return [422, { error: { code: 'empty_order', message: 'no lines' } }];
  for (const l of body.lines) {
    if (!l || typeof l.item !== 'string' || !l.item) return [422, { error: { code: 'unknown_item', message: 'a line without an item' } }];
    if (!Number.isInteger(l.quantity) || l.quantity < 1 || l.quantity > 100) return [422, { error: { code: 'quantity_out_of_range', message: 'quantity: 1 to 100' } }];
  }
  const scope = body.scope || {};
  for (const b of scope.buildings || []) if (!findBuilding(b)) return [422, { error: { code: 'unknown_building', message: `no building ${b}` } }];
  const campaign = crypto.randomUUID();
  state.events.push({ kind: 'campaign', campaign, body, applied: true });
  state.campaigns.set(campaign, { started: Date.now(), scope });
  return [202, accepted({ campaign, community: COMMUNITY })];
}

function campaignProgress(id) {
  const c = state.campaigns.get(id);
  if (!c || Date.now() - c.started < 1000) return [404, { error: { code: 'not_found', message: `no orders of campaign ${id} yet` } }];
  const wanted = (c.scope.buildings || []).length ? c.scope.buildings : state.buildings.map((b) => b.building);
  const buildings = wanted.map((b) => {
    const ordered = state.households.filter((h) => h.building === b).length;
    const delivered = Math.min(ordered, Math.floor((Date.now() - c.started) / 4000));
    return { building: b, ordered, on_the_way: ordered - delivered, delivered, failed: 0, cancelled: 0, by_stage: { on_run: ordered - delivered, delivered } };
  });
  const sum = (k) => buildings.reduce((n, b) => n + b[k], 0);
  return [200, { campaign: id, community: COMMUNITY, ordered: sum('ordered'), delivered: sum('delivered'), buildings }];
}

function changeSeal(body) {
  if (!body || typeof body !== 'object' || typeof body.sealed !== 'boolean' || !body.scope || typeof body.scope !== 'object') {
    return [422, { error: { code: 'unprocessable', message: 'expected {"scope": {...}, "sealed": bool}' } }];
  }
  const { level, building, unit: unitId } = body.scope;
  if (!['community', 'building', 'unit'].includes(level)) return [422, { error: { code: 'unprocessable', message: 'scope.level' } }];
  if (level !== 'community' && !findBuilding(building)) return [422, { error: { code: 'unknown_building', message: `no building ${building}` } }];
  if (level === 'unit' && !unitOf(building, unitId)) return [422, { error: { code: 'unknown_unit', message: `no unit ${unitId}` } }];
  const scope = level === 'community' ? { level } : level === 'building' ? { level, building } : { level, building, unit: unitId };
  const key = JSON.stringify(scope);
  state.events.push({ kind: 'seal', scope, sealed: body.sealed, applied: false });
  later(() => {
    state.seals = state.seals.filter((s) => JSON.stringify(s) !== key);
    if (body.sealed) state.seals.push(scope);
  });
  return [202, accepted({ community: COMMUNITY, sealed: body.sealed })];
}

function sameSet(a, b) {
  const x = [...(a || [])].sort();
  const y = [...(b || [])].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

// ---------- the views ----------
function summary() {
  const byStage = Object.fromEntries(STAGES.map((s) => [s, 0]));
  const byBuilding = {};
  for (const o of state.orders) {
    byStage[o.status.stage] += 1;
    const b = (byBuilding[o.building] = byBuilding[o.building] || {});
    b[o.status.stage] = (b[o.status.stage] || 0) + 1;
  }
  const now = Date.now();
  const late = state.orders.filter((o) => !o.is_final && o.priority === 'urgent').map((o) => ({
    order: o.order, household: o.household, building: o.building, priority: o.priority, stage: o.status.stage,
    age_seconds: Math.floor((now - o.placed_at_ms) / 1000),
  }));
  const unserved = state.households.filter((h) => h.vulnerabilities.length).map((h) => ({
    household: h.household, building: h.building, vulnerabilities: h.vulnerabilities, last_served_day: null,
  }));
  const sealed = state.seals.map((scope) => ({
    scope,
    open_orders: state.orders.filter((o) => !o.is_final && (scope.level === 'community'
      || (scope.level === 'building' && o.building === scope.building) || (scope.level === 'unit' && o.unit === scope.unit))).length,
  }));
  return { community: COMMUNITY, orders_by_stage: byStage, orders_by_building: byBuilding, late_orders: late, vulnerable_households_unserved_today: unserved, runs_in_progress: 1, sealed };
}
function escalations() {
  const o = state.orders.find((x) => x.household === 'tianlun-b07-u1-0101');
  return {
    community: COMMUNITY,
    escalations: [{
      order: o.order, household: o.household, building: o.building, unit: o.unit, partner: o.partner, priority: o.priority,
      stage: o.status.stage, failed_drops: 2, reason: 'drops_failed', since: '2020-06-14T11:20:00+08:00', items: o.items,
    }],
  };
}
function coverage(hours) {
  const unserved = state.households.map((h) => ({
    household: h.household, building: h.building, vulnerable: h.vulnerabilities.length > 0,
    last_order: '2020-06-14T08:10:00+08:00', last_delivery: null, last_attempt: null,
  })).sort((a, b) => Number(b.vulnerable) - Number(a.vulnerable));
  return { community: COMMUNITY, hours, as_of: '2020-06-14T18:00:00+08:00', unserved, never_ordered: 0 };
}

// ---------- routing ----------
async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);

  if (req.method === 'GET' && url.pathname === '/staff') {
    let html;
    try { html = fs.readFileSync(htmlPath); } catch (err) { return error(res, 500, 'internal', `cannot read ${htmlPath}: ${err.message}`); }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' });
    return res.end(html);
  }
  if (req.method === 'GET' && url.pathname === '/__events') {
    return send(res, 200, { count: state.events.length, events: state.events });
  }
  if (req.method === 'POST' && url.pathname === '/__reset') { state = initialState(); return send(res, 200, { reset: true }); }
  if (parts[0] !== 'v1') return error(res, 404, 'not_found', `no route ${url.pathname}`);

  if (req.headers.authorization !== `Bearer ${TOKEN}`) return error(res, 401, 'unauthorized', 'a valid bearer token is required');
  if (parts[1] !== 'communities' || !parts[2]) return error(res, 404, 'not_found', `no route ${url.pathname}`);
  const c = parts[2];
  if (!ID.test(c)) return error(res, 404, 'not_found', `no community ${JSON.stringify(c)}`);
  if (c !== COMMUNITY) return error(res, 403, 'forbidden', `this token acts for ${COMMUNITY} only`);
  const rest = parts.slice(3);
  const route = `${req.method} ${rest.map((p, i) => (i % 2 === 1 ? '{}' : p)).join('/')}`;

  if (req.method === 'GET') {
    const building = url.searchParams.get('building');
    switch (route) {
      case 'GET buildings': return send(res, 200, { community: c, buildings: state.buildings });
      case 'GET households':
      case 'GET orders': {
        if (!building) return error(res, 400, 'bad_request', 'the building query parameter is required');
        if (!findBuilding(building)) return error(res, 404, 'not_found', `no building ${building}`);
        if (rest[0] === 'households') {
          const households = state.households.filter((h) => h.building === building).map((h) => ({ ...h, vulnerabilities: [...h.vulnerabilities] }));
          return send(res, 200, { community: c, building, households });
        }
        return send(res, 200, { orders: state.orders.filter((o) => o.building === building) });
      }
      case 'GET summary': return send(res, 200, summary());
      case 'GET escalations': return send(res, 200, escalations());
      case 'GET coverage': {
        const hours = url.searchParams.has('hours') ? Number(url.searchParams.get('hours')) : 24;
        if (!Number.isInteger(hours) || hours < 0) return error(res, 400, 'bad_request', 'hours: a whole number');
        return send(res, 200, coverage(hours));
      }
      case 'GET campaigns/{}': { const [s, b] = campaignProgress(rest[1]); return send(res, s, b); }
      default: return error(res, 404, 'not_found', `no route ${url.pathname}`);
    }
  }

  const commands = {
    'POST households/{}/vulnerabilities': (body) => settleFlags(rest[1], body),
    'PUT households/{}': (body) => putHousehold(rest[1], body),
    'PUT households/{}/contact': (body) => putContact(rest[1], body),
    'POST campaigns': (body) => startCampaign(body),
    'POST seals': (body) => changeSeal(body),
  };
  const command = commands[route];
  if (!command) return error(res, 404, 'not_found', `no route ${req.method} ${url.pathname}`);
  if (!/^application\/json\b/.test(req.headers['content-type'] || '')) return error(res, 415, 'unsupported_media_type', 'send application/json');
  const key = req.headers['idempotency-key'];
  if (key !== undefined && !/^[\x21-\x7e]{1,128}$/.test(key)) return error(res, 400, 'bad_request', 'Idempotency-Key must be 1 to 128 visible ASCII characters');
  let text;
  try { text = await readBody(req); } catch { return error(res, 413, 'payload_too_large', 'the body is too large'); }
  let body;
  try { body = JSON.parse(text); } catch { return error(res, 400, 'bad_request', 'the body is not JSON'); }
  // A retry under a key gets the first answer, the command is not repeated.
  const stored = key && state.keys.get(key);
  if (stored) return send(res, stored[0], stored[1]);
  const before = state.events.length;
  const [status, answer] = command(body);
  for (const e of state.events.slice(before)) Object.assign(e, { key: key || null, method: req.method, path: url.pathname });
  if (key) state.keys.set(key, [status, answer]);
  return send(res, status, answer);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error(err);
    if (!res.headersSent) error(res, 500, 'internal', 'mock error');
  });
});
server.listen(Number(portArg), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections(); // the page's keep-alive connections would hold it open
  });
}
