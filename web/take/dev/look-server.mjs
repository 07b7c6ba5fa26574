// A stand-in for the Clarity API, for LOOKING at the candidate page by hand ONLY (layout,
// screenshots). It is not a test of anything: tests/browser/take.spec.mjs runs against the real
// API from a Rust end-to-end test. It serves api/assets/take/ at the real paths with the real
// headers, and fakes the candidate endpoints in memory (telemetry is acknowledged and replayed
// so that resume works).
//
//   node web/take/dev/look-server.mjs [--port 8766] [--minutes 120] [--face]
//   open http://127.0.0.1:8766/take/5e55a000-0000-4000-8000-000000000002#token=cst_devdevdevdev
//   curl -X POST http://127.0.0.1:8766/__dev/extra?minutes=15     # staff grants extra time
//   curl -X POST http://127.0.0.1:8766/__dev/status?to=in_progress # jump to a state

import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const PORT = Number(opt('port', 8766));
const MINUTES = Number(opt('minutes', 120));
const FACE = args.includes('--face');
const SESSION_ID = '5e55a000-0000-4000-8000-000000000002';
const TOKEN = 'cst_devdevdevdev';
const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

const cat = path.join(repo, 'catalogue/rest-api-design');
const spec = JSON.parse(readFileSync(path.join(cat, 'assessment.json'), 'utf8'));
const assessment = {
  ...spec,
  time_limit_minutes: MINUTES,
  integrity_policy: { ...spec.integrity_policy, face_continuity: FACE },
  monitoring: { ...spec.integrity_policy, face_continuity: FACE },
  tasks: spec.tasks.map((t) => ({
    title: t.title,
    prompt: readFileSync(path.join(cat, t.prompt), 'utf8'),
    starter_files: t.starter_files.map((p) => ({ path: p, content: readFileSync(path.join(cat, 'starter', p), 'utf8') })),
  })),
};
delete assessment.rubric;

const state = { status: 'invited', deadline: null, extra: 0, acked: 0, files: new Map(), scopes: null, submitted: null, faceChecks: [] };
const notice = {
  notice_id: 'monitoring-notice-v1',
  content_sha256: 'a'.repeat(64),
  title: 'Monitoring notice',
  body: 'While you take this assessment, Clarity records what you do in the editor: your edits and their timing, what you paste, and when this page loses focus. A reviewer may replay your session.\n\nNothing recorded decides on its own: every signal is evidence for a human reviewer, who sees the context.\n\nThe optional monitoring below is off unless you switch it on. You can withdraw it at any time during the assessment.\n\nYour data is kept for 12 months and then deleted. You can ask for a copy or for deletion at any time.',
  optional_scopes: FACE ? ['keystroke_dynamics', 'face_continuity'] : ['keystroke_dynamics'],
};

function workspace() {
  return { session_id: SESSION_ID, status: state.status, deadline: state.deadline, extra_time_minutes: state.extra, assessment, consent: state.scopes ? { scopes: state.scopes } : null };
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}
const err = (res, status, code, message) => send(res, status, { error: { code, message } });

function apply(data) {
  const f = state.files;
  if (data.type === 'file_created') f.set(data.file, data.content ?? '');
  else if (data.type === 'edit') { const t = f.get(data.file) ?? ''; f.set(data.file, t.slice(0, data.position) + data.inserted + t.slice(data.position + data.deleted)); }
  else if (data.type === 'file_renamed') { f.set(data.new_file, f.get(data.file)); f.delete(data.file); }
  else if (data.type === 'file_deleted') f.delete(data.file);
}

function body(req) {
  return new Promise((resolve) => { let s = ''; req.on('data', (c) => (s += c)); req.on('end', () => resolve(s ? JSON.parse(s) : null)); });
}

http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (p.startsWith('/take/assets/')) {
    const name = p.slice('/take/assets/'.length);
    const models = /^models\/[a-z0-9_]+(-weights_manifest\.json|\.bin)$/.test(name);
    if (!['take.js', 'take.css', 'take-face.js'].includes(name) && !models) return err(res, 404, 'not_found', 'no');
    const type = name.endsWith('.js') ? 'text/javascript; charset=utf-8' : name.endsWith('.css') ? 'text/css; charset=utf-8' : name.endsWith('.json') ? 'application/json' : 'application/octet-stream';
    res.writeHead(200, { 'Content-Type': type });
    return res.end(readFileSync(path.join(repo, 'api/assets/take', name)));
  }
  if (p.startsWith('/take/')) {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': CSP, 'Referrer-Policy': 'no-referrer', 'Cache-Control': 'no-store' });
    return res.end(readFileSync(path.join(repo, 'api/assets/take/take.html')));
  }
  if (p === '/__dev/extra') {
    const m = Number(url.searchParams.get('minutes') || 15);
    state.extra += m;
    state.deadline = new Date(Date.parse(state.deadline) + m * 60000).toISOString();
    return send(res, 200, workspace());
  }
  if (p === '/__dev/status') { state.status = url.searchParams.get('to'); return send(res, 200, workspace()); }
  if (p === '/__dev/state') return send(res, 200, { ...state, files: Object.fromEntries(state.files) });
  const m = /^\/v1\/sessions\/([^/]+)(\/.*)$/.exec(p);
  if (!m) return err(res, 404, 'not_found', 'route');
  if (req.headers.authorization !== `Bearer ${TOKEN}`) return err(res, 401, 'unauthenticated', 'missing or invalid token');
  const route = `${req.method} ${m[2]}`;
  if (state.deadline && state.status === 'in_progress' && Date.now() > Date.parse(state.deadline)) state.status = 'expired';
  switch (route) {
    case 'GET /workspace': return send(res, 200, workspace());
    case 'GET /notice': return send(res, 200, notice);
    case 'POST /consent': { const b = await body(req); state.scopes = b.scopes; state.status = 'consented'; return send(res, 200, workspace()); }
    case 'POST /consent/withdraw': { const b = await body(req); for (const s of b.scopes) state.scopes[s] = false; return send(res, 200, workspace()); }
    case 'POST /start':
      if (state.status !== 'consented') return err(res, 409, 'consent_required', 'consent first');
      state.status = 'in_progress';
      state.deadline = new Date(Date.now() + MINUTES * 60000).toISOString();
      return send(res, 200, workspace());
    case 'GET /resume': return send(res, 200, { acked_seq: state.acked, files: [...state.files].map(([path, content]) => ({ path, content })), status: state.status, deadline: state.deadline });
    case 'POST /telemetry': {
      const b = await body(req);
      if (state.status !== 'in_progress') return err(res, 409, 'session_not_in_progress', 'not in progress');
      let dup = 0;
      for (const e of b.events) { if (e.seq <= state.acked) { dup++; continue; } apply(e.data); if (e.data.type === 'face_check') state.faceChecks.push(e.data); state.acked = e.seq; }
      return send(res, 200, { accepted: b.events.length - dup, duplicates: dup, last_seq: state.acked });
    }
    case 'POST /submit': {
      if (state.status !== 'in_progress') return err(res, 409, 'session_finished', 'finished');
      state.submitted = await body(req); state.status = 'submitted';
      return send(res, 200, workspace());
    }
    default: return err(res, 404, 'not_found', route);
  }
}).listen(PORT, '127.0.0.1', () => console.log(`look server on http://127.0.0.1:${PORT}/take/${SESSION_ID}#token=${TOKEN}`));
