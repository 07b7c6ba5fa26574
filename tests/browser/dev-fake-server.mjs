// A tiny stand-in for the Clarity API, for developing the replay page by hand ONLY.
// replay.spec.mjs never uses it; the real end-to-end test runs the spec against the real API.
//
//   node tests/browser/dev-fake-server.mjs [--port 8765] [--latency-ms 20] [--time-scale 1] [--max-limit 1000]
//   open http://127.0.0.1:8765/review/sessions/5e55a000-0000-4000-8000-000000000001#key=clk_dev
//   curl http://127.0.0.1:8765/__dev/expect   # the EXPECT_JSON for replay.spec.mjs
//
// It serves api/assets/ at the real paths, and canned replay JSON computed from a synthetic
// session (typing, an idle pause, a tab-away followed by a paste, a failing and a passing run).

import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const assets = path.resolve(here, '../../api/assets');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const PORT = Number(opt('port', 8765));
const LATENCY = Number(opt('latency-ms', 20));
// --time-scale 0.001 squeezes the session into a fraction of a second, like a scripted test client.
const TIME_SCALE = Number(opt('time-scale', 1));
// --max-limit 50 caps /replay/events pages, to exercise paging during playback.
const MAX_LIMIT = Number(opt('max-limit', 1000));
const SESSION_ID = '5e55a000-0000-4000-8000-000000000001';
const API_KEY = 'clk_dev';
const PASTED = 'def rate_limit(key, limit, window_s):\n    """Sliding window limiter."""\n    now = time.time()\n    bucket = WINDOWS.setdefault(key, [])\n    bucket[:] = [t for t in bucket if t > now - window_s]\n    if len(bucket) >= limit:\n        return False\n    bucket.append(now)\n    return True\n';

// ---------------------------------------------------------------------------------------------
// The synthetic session.

const initialFiles = { 'README.md': '# Rate limiter\n\nImplement `rate_limit` in app.py.\n' };
const events = [];
let t = 1500;
const push = (data, dt = 120) => {
  t += Math.round(dt * TIME_SCALE);
  events.push({ seq: events.length + 1, at_ms: t, type: data.type, data });
};
const docs = { 'app.py': '' };
function type(file, text, dt = 110) {
  for (const ch of text) {
    push({ type: 'keystroke', down_ms: t, up_ms: t + 40, key_class: /[a-z]/i.test(ch) ? 'letter' : 'other' }, dt);
    const pos = docs[file].length;
    push({ type: 'edit', file, position: pos, deleted: 0, inserted: ch, origin: 'typed' }, 5);
    docs[file] += ch;
    push({ type: 'cursor', file, position: docs[file].length, selection_end: null }, 1);
  }
}
push({ type: 'file_created', file: 'app.py', content: '' }, 800);
type('app.py', 'import time\n\nWINDOWS = {}\n\n');
push({ type: 'keystroke', down_ms: t, up_ms: t + 30, key_class: 'other' }, 45000); // idle 45 s
type('app.py', '# TODO\n');
push({ type: 'focus_lost' }, 2000);
push({ type: 'focus_regained' }, 38000);
{
  const pos = docs['app.py'].length;
  push({ type: 'edit', file: 'app.py', position: pos, deleted: 0, inserted: PASTED, origin: 'paste' }, 900);
  docs['app.py'] += PASTED;
  push({ type: 'cursor', file: 'app.py', position: docs['app.py'].length, selection_end: null }, 2);
}
push({ type: 'code_run', command: 'pytest', exit_code: 1, tests_passed: 2, tests_failed: 1, duration_ms: 2100 }, 5000);
{
  // Select "# TODO\n" and delete it.
  const i = docs['app.py'].indexOf('# TODO\n');
  push({ type: 'cursor', file: 'app.py', position: i, selection_end: i + 7 }, 3000);
  push({ type: 'edit', file: 'app.py', position: i, deleted: 7, inserted: '', origin: 'typed' }, 400);
  docs['app.py'] = docs['app.py'].slice(0, i) + docs['app.py'].slice(i + 7);
  push({ type: 'cursor', file: 'app.py', position: i, selection_end: null }, 1);
}
push({ type: 'file_created', file: 'test_app.py', content: '' }, 2000);
docs['test_app.py'] = '';
type('test_app.py', 'from app import rate_limit\n\n\ndef test_limit():\n    assert rate_limit("k", 1, 60)\n    assert not rate_limit("k", 1, 60)\n', 90);
push({ type: 'face_check', similarity: 0.41, model_id: 'dev', model_version: '1', face_count: 2, quality: 0.8 }, 1000);
push({ type: 'code_run', command: 'pytest', exit_code: 0, tests_passed: 4, tests_failed: 0, duration_ms: 1900 }, 4000);
const LAST_SEQ = events.length;

function applyOne(files, cursor, ev) {
  const d = ev.data;
  switch (d.type) {
    case 'edit': {
      const s = files[d.file] ?? '';
      files[d.file] = s.slice(0, d.position) + d.inserted + s.slice(d.position + d.deleted);
      return cursor;
    }
    case 'file_created': files[d.file] = d.content; return cursor;
    case 'file_deleted': delete files[d.file]; return cursor;
    case 'file_renamed': files[d.new_file] = files[d.file]; delete files[d.file]; return cursor;
    case 'cursor': return { file: d.file, position: d.position, selection_end: d.selection_end ?? null };
    default: return cursor;
  }
}

function stateAt(seq) {
  const files = { ...initialFiles };
  let cursor = null;
  for (const ev of events.slice(0, seq)) cursor = applyOne(files, cursor, ev);
  const event = seq > 0 ? events[seq - 1] : null;
  return { seq, at_ms: event ? event.at_ms : 0, files, cursor, event };
}

function markers() {
  const out = [];
  let lost = null;
  for (const ev of events) {
    const d = ev.data;
    if (d.type === 'edit' && d.origin === 'paste') {
      out.push({ kind: 'paste', seq: ev.seq, at_ms: ev.at_ms, end_seq: null, duration_ms: null, label: `Pasted ${d.inserted.length} characters into ${d.file}`, data: { file: d.file, chars: d.inserted.length, position: d.position } });
    } else if (d.type === 'focus_lost') {
      lost = ev;
    } else if (d.type === 'focus_regained' && lost) {
      const dur = ev.at_ms - lost.at_ms;
      out.push({ kind: 'focus_away', seq: lost.seq, at_ms: lost.at_ms, end_seq: ev.seq, duration_ms: dur, label: `Left the editor for ${Math.round(dur / 1000)} s`, data: {} });
      lost = null;
    } else if (d.type === 'code_run') {
      out.push({ kind: 'code_run', seq: ev.seq, at_ms: ev.at_ms, end_seq: null, duration_ms: d.duration_ms, label: `${d.command}: exit ${d.exit_code}`, data: { exit_code: d.exit_code, passed: d.exit_code === 0 } });
    } else if (d.type === 'face_check' && (d.similarity < 0.6 || d.face_count !== 1)) {
      out.push({ kind: 'face_anomaly', seq: ev.seq, at_ms: ev.at_ms, end_seq: null, duration_ms: null, label: `Face check: ${d.face_count} faces, similarity ${d.similarity}`, data: {} });
    }
  }
  out.push({ kind: 'submission', seq: LAST_SEQ, at_ms: events[LAST_SEQ - 1].at_ms, end_seq: null, duration_ms: null, label: 'Submitted', data: {} });
  return out;
}

// A line diff (LCS) with three lines of context per hunk.
function diffLines(a, b) {
  const A = a === '' ? [] : a.replace(/\n$/, '').split('\n');
  const B = b === '' ? [] : b.replace(/\n$/, '').split('\n');
  const n = A.length; const m = B.length;
  const L = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i -= 1) for (let j = m - 1; j >= 0; j -= 1) L[i][j] = A[i] === B[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const ops = [];
  let i = 0; let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && A[i] === B[j]) { ops.push({ op: ' ', text: A[i], i, j }); i += 1; j += 1; } else if (j < m && (i >= n || L[i][j + 1] >= L[i + 1][j])) { ops.push({ op: '+', text: B[j], i, j }); j += 1; } else { ops.push({ op: '-', text: A[i], i, j }); i += 1; }
  }
  const hunks = [];
  const C = 3;
  let k = 0;
  while (k < ops.length) {
    if (ops[k].op === ' ') { k += 1; continue; }
    let start = Math.max(0, k - C);
    let end = k;
    while (end < ops.length) {
      if (ops[end].op !== ' ') { end += 1; continue; }
      let run = 0;
      while (end + run < ops.length && ops[end + run].op === ' ') run += 1;
      if (end + run >= ops.length || run > 2 * C) { end = Math.min(ops.length, end + C); break; }
      end += run;
    }
    const slice = ops.slice(start, end);
    hunks.push({
      old_start: slice[0].i + 1, old_lines: slice.filter((o) => o.op !== '+').length,
      new_start: slice[0].j + 1, new_lines: slice.filter((o) => o.op !== '-').length,
      lines: slice.map((o) => ({ op: o.op, text: o.text })),
    });
    k = end;
  }
  return hunks;
}

function diff(fromSeq, toSeq) {
  const a = stateAt(fromSeq).files;
  const b = stateAt(toSeq).files;
  const files = [];
  for (const p of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (a[p] === b[p]) continue;
    const status = !(p in a) ? 'added' : !(p in b) ? 'removed' : 'modified';
    files.push({ path: p, status, hunks: diffLines(a[p] ?? '', b[p] ?? '') });
  }
  return { files };
}

// ---------------------------------------------------------------------------------------------
// HTTP

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
};
const error = (res, status, code, message) => json(res, status, { error: { code, message, details: null } });
const intParam = (url, name) => {
  const v = url.searchParams.get(name);
  return v === null || !/^\d+$/.test(v) ? null : Number(v);
};

async function handle(req, res) {
  const url = new URL(req.url, `http://${req.headers.host}`);
  const p = url.pathname;
  if (p.startsWith('/review/assets/')) {
    const name = p.slice('/review/assets/'.length);
    const types = { 'replay.js': 'text/javascript; charset=utf-8', 'replay.css': 'text/css; charset=utf-8' };
    if (!types[name]) return error(res, 404, 'not_found', 'no such asset');
    res.writeHead(200, { 'content-type': types[name], 'cache-control': 'no-store' });
    return res.end(await readFile(path.join(assets, name)));
  }
  if (/^\/review\/sessions\/[^/]+$/.test(p)) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'self'; base-uri 'none'; frame-ancestors 'none'" });
    return res.end(await readFile(path.join(assets, 'replay.html')));
  }
  if (p === '/__dev/expect') {
    const paste = markers().find((m) => m.kind === 'paste');
    const away = markers().find((m) => m.kind === 'focus_away');
    return json(res, 200, { last_seq: LAST_SEQ, paste_seq: paste.seq, files_at_last: stateAt(LAST_SEQ).files, tab_away_seq: away.seq, candidate_name: 'Ada Lovelace' });
  }
  const m = p.match(/^\/v1\/sessions\/([^/]+)\/replay(\/[a-z]+)?$/);
  if (!m) return error(res, 404, 'not_found', 'route not found');
  const auth = req.headers.authorization || '';
  const token = auth.startsWith('Bearer ') ? auth.slice(7) : null;
  if (!token) return error(res, 401, 'unauthorized', 'missing API key');
  if (token !== API_KEY) return error(res, 401, 'unauthorized', 'invalid API key');
  if (m[1] !== SESSION_ID) return error(res, 404, 'not_found', 'session not found');
  await new Promise((r) => setTimeout(r, LATENCY));
  switch (m[2]) {
    case undefined:
      return json(res, 200, {
        session_id: SESSION_ID, status: 'submitted', candidate_name: 'Ada Lovelace',
        assessment_title: 'Rate limiting', started_at: '2026-11-25T10:00:00Z',
        duration_ms: events[LAST_SEQ - 1].at_ms, last_seq: LAST_SEQ, keyframe_every_events: 500,
        markers: markers(),
      });
    case '/state': {
      let seq = intParam(url, 'seq');
      const at = intParam(url, 'at_ms');
      if (seq === null && at !== null) seq = events.filter((e) => e.at_ms <= at).length;
      if (seq === null || seq > LAST_SEQ) return error(res, 422, 'position_out_of_range', `seq must be within 0..=${LAST_SEQ}`);
      return json(res, 200, stateAt(seq));
    }
    case '/events': {
      const from = intParam(url, 'from_seq') ?? 1;
      const limit = Math.min(intParam(url, 'limit') ?? 500, MAX_LIMIT);
      const page = events.filter((e) => e.seq >= from).slice(0, limit);
      const next = page.length && page[page.length - 1].seq < LAST_SEQ ? page[page.length - 1].seq + 1 : null;
      return json(res, 200, { events: page, next_from_seq: next });
    }
    case '/diff': {
      const a = intParam(url, 'from_seq');
      const b = intParam(url, 'to_seq');
      if (a === null || b === null || a > LAST_SEQ || b > LAST_SEQ) return error(res, 422, 'position_out_of_range', 'bad positions');
      return json(res, 200, diff(a, b));
    }
    default:
      return error(res, 404, 'not_found', 'route not found');
  }
}

http.createServer((req, res) => {
  handle(req, res).catch((e) => error(res, 500, 'internal', String(e)));
}).listen(PORT, '127.0.0.1', () => {
  console.log(`fake Clarity replay API on http://127.0.0.1:${PORT}`);
  console.log(`page: http://127.0.0.1:${PORT}/review/sessions/${SESSION_ID}#key=${API_KEY}`);
  console.log(`SESSION_ID=${SESSION_ID} API_KEY=${API_KEY} last_seq=${LAST_SEQ}`);
});
