// The candidate report page: /review/sessions/{id}/report#key=clk_… (optionally &version=<hash>).
// Everything shown comes from GET /v1/sessions/{id}/report; the API key is sent in the
// Authorization header only and kept in sessionStorage, never in a URL the server sees.

import { renderHeldBack } from './held_back.js';

const KEY_STORAGE = 'clarity.apiKey';
const el = (id) => document.getElementById(id);

function sessionId() {
  const parts = location.pathname.split('/').filter(Boolean);
  const i = parts.lastIndexOf('sessions');
  return i >= 0 ? decodeURIComponent(parts[i + 1]) : null;
}

function fragment() {
  return new URLSearchParams(location.hash.startsWith('#') ? location.hash.slice(1) : location.hash);
}

function readKey() {
  const params = fragment();
  const key = params.get('key');
  if (key) {
    try { sessionStorage.setItem(KEY_STORAGE, key); } catch { /* storage disabled */ }
    params.delete('key');
    const rest = params.toString();
    history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
    return key;
  }
  try { return sessionStorage.getItem(KEY_STORAGE); } catch { return null; }
}

function showError(message) {
  el('banner-text').textContent = message;
  el('banner').hidden = false;
}

function text(id, value) {
  el(id).textContent = value === null || value === undefined || value === '' ? '—' : String(value);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return null;
  const m = Math.floor(seconds / 60);
  return `${m} min ${seconds % 60} s`;
}

function render(report, key) {
  const c = report.content;
  const id = report.session_id;
  text('candidate', c.candidate);
  text('assessment', c.assessment && `${c.assessment.title} v${c.assessment.version}`);
  text('status', c.status);
  text('time-used', duration(c.time_used_seconds));
  text('aggregate', c.scores.aggregate === null ? null : `${c.scores.aggregate.toFixed(1)} / 100`);
  text('cohort', c.cohort && `percentile ${c.cohort.percentile.toFixed(1)}, rank ${c.cohort.rank} of ${c.cohort.size}`);
  text('decision', c.decision && `${c.decision.outcome}: ${c.decision.rationale}`);
  text('content-hash', report.content_hash);
  text('served', `(first served ${new Date(report.first_served_at).toLocaleString()})`);
  const rows = el('score-rows');
  rows.replaceChildren();
  for (const criterion of c.scores.criteria) {
    const tr = document.createElement('tr');
    tr.dataset.testid = `criterion-${criterion.criterion}`;
    const reviews = criterion.completed_reviews.map((r) => `${r.score} — ${r.justification}`).join('\n');
    for (const v of [criterion.name, criterion.weight, criterion.mean === null ? '—' : criterion.mean.toFixed(2), reviews || '—']) {
      const td = document.createElement('td');
      td.textContent = String(v);
      td.style.whiteSpace = 'pre-line';
      tr.append(td);
    }
    rows.append(tr);
  }
  const tier = el('tier');
  tier.textContent = c.integrity.tier || 'not analysed';
  tier.className = `tier ${c.integrity.tier || ''}`;
  const list = el('findings');
  list.replaceChildren();
  for (const f of c.integrity.findings) {
    const li = document.createElement('li');
    li.textContent = `${f.detector} · ${f.rule} (${f.level}): ${f.summary} `;
    if (f.replay_seq !== null) {
      const a = document.createElement('a');
      a.href = `/review/sessions/${encodeURIComponent(id)}?seq=${f.replay_seq}`;
      a.textContent = `open the replay at seq ${f.replay_seq}`;
      a.dataset.testid = 'finding-link';
      li.append(a);
    }
    list.append(li);
  }
  const auto = c.automated || null;
  const grade = auto && auto.grade;
  text('automated', grade
    ? `${grade.percent.toFixed(1)} / 100 (${grade.checks_passed} of ${grade.checks_total} checks, ${grade.grader_version})`
      + (auto.earlier.length ? `; earlier: ${auto.earlier.map((g) => `${g.grader_version} ${g.percent.toFixed(1)}`).join(', ')}` : '')
    : 'not graded');
  const failed = el('failed-checks');
  failed.replaceChildren();
  for (const f of (grade ? grade.failed : [])) {
    const li = document.createElement('li');
    li.textContent = `Failed: ${f.name} (weight ${f.weight ?? '?'})${f.message ? ` — ${f.message}` : ''}`;
    failed.append(li);
  }
  if (grade && grade.failed.length === 0) {
    const li = document.createElement('li');
    li.textContent = 'Every check passed.';
    failed.append(li);
  }
  const last = c.code_runs.last;
  const server = auto ? `; on the server: ${auto.runs} run${auto.runs === 1 ? '' : 's'}` + (auto.last_run ? `, last ${auto.last_run[0]} of ${auto.last_run[1]} tests passed` : '') : '';
  text('runs', `${c.code_runs.total} reported by the client (unverified)` + (last ? `; last: exit ${last.exit_code}, ${last.tests_passed} passed, ${last.tests_failed} failed` : '') + server);
  renderHeldBack(el('held-back'), c.held_back);
  el('report').hidden = false;
  el('report').dataset.state = 'ready';
  void key;
}

async function load(key) {
  const id = sessionId();
  const version = fragment().get('version');
  const url = `/v1/sessions/${encodeURIComponent(id)}/report` + (version ? `?version=${encodeURIComponent(version)}` : '');
  const r = await fetch(url, { headers: { Authorization: `Bearer ${key}`, Accept: 'application/json' } });
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    const message = body && body.error ? `${body.error.message} (${body.error.code})` : `HTTP ${r.status}`;
    showError(message);
    if (r.status === 401) el('key-form').hidden = false;
    return;
  }
  render(body, key);
}

function start() {
  const key = readKey();
  el('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const k = el('key-input').value.trim();
    try { sessionStorage.setItem(KEY_STORAGE, k); } catch { /* storage disabled */ }
    el('key-form').hidden = true;
    el('banner').hidden = true;
    load(k);
  });
  if (!key) {
    el('key-form').hidden = false;
    return;
  }
  load(key);
}

start();
