// Clarity reviewer replay page. Plain ES module, no dependencies, no build step.
//
// Data flow:
// * seeking (scrubber, marker click, jump buttons, "go to") asks the server for the full state at
//   that position: exactly one GET /v1/sessions/{id}/replay/state?seq=N per seek;
// * playback starts from that state and applies the following telemetry events locally (pages of
//   GET /replay/events), paced on a timer at the chosen speed, with idle gaps shortened when
//   "skip idle" is on. Speed and skip-idle changes take effect immediately, and the API key stays
//   in the Authorization header (never in a URL).
//
// Positions in files are UTF-16 code units, the unit of JavaScript strings, so edits and cursor
// positions index the strings directly.

import { renderHeldBack } from './held_back.js';

const KEY_STORAGE = 'clarity.review.apiKey';
const SKIP_IDLE_MS = 2000; // idle gaps longer than this are shortened to this when skipping idle
const PAGE_LIMIT = 500; // events per /replay/events page during playback
const LOW_WATER = 150; // fetch the next page when fewer events than this are buffered
const TICK_MS = 25; // playback timer period
const MAX_EVENTS_PER_TICK = 5000;

const MARKER_NAMES = {
  paste: 'Paste',
  focus_away: 'Tab-away',
  code_run: 'Code run (client-reported)',
  test_run: 'Test run (server)',
  face_anomaly: 'Face anomaly',
  submission: 'Submission',
  edit_anomaly: 'Edit anomaly',
  integrity_flag: 'Integrity flag',
};

const el = (id) => document.getElementById(id);

const S = {
  sessionId: null,
  key: null,
  summary: null,
  lastSeq: 0,
  markers: [],
  // Position.
  seq: 0,
  atMs: 0,
  files: new Map(),
  cursor: null,
  event: null,
  activeFile: null,
  userPickedFile: false,
  // Seeking.
  seekToken: 0,
  seekAbort: null,
  seeking: false,
  resumeAfterSeek: false,
  scrubbing: false,
  // Playback.
  playing: false,
  playGen: 0,
  pb: null,
  // Diff.
  errorSource: null,
  markA: null,
  markB: null,
  diffToken: 0,
  // Rendering.
  renderQueued: false,
  lastRendered: { file: null, content: null, lines: 0, tabsKey: '' },
};

// ---------------------------------------------------------------------------------------------
// API access

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, { signal } = {}) {
  const url = `/v1/sessions/${encodeURIComponent(S.sessionId)}${path}`;
  let res;
  try {
    res = await fetch(url, {
      headers: { Authorization: `Bearer ${S.key}`, Accept: 'application/json' },
      signal,
      cache: 'no-store',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network_error', `Network error while loading ${path}: ${e.message}`);
  }
  const text = await res.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!res.ok) {
    const err = body && body.error ? body.error : {};
    throw new ApiError(
      res.status,
      err.code || `http_${res.status}`,
      err.message || `${res.status} ${res.statusText || 'error'}`,
    );
  }
  if (body === null) throw new ApiError(res.status, 'bad_response', `${path} did not answer JSON`);
  return body;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function clamp(n, lo, hi) {
  return Math.min(hi, Math.max(lo, n));
}

function fmtClock(ms) {
  const total = Math.max(0, Math.floor((Number(ms) || 0) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return [h, m, s].map((n) => String(n).padStart(2, '0')).join(':');
}

function fmtDuration(ms) {
  if (ms == null) return '–';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const total = Math.round(ms / 1000);
  if (total < 60) return `${total} s`;
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h ? `${h} h ${m} min` : `${m} min ${s} s`;
}

function fmtDate(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/** Line and column (1-based) of a UTF-16 offset in `text`. */
function lineCol(text, position) {
  if (typeof text !== 'string') return null;
  const pos = clamp(position, 0, text.length);
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < pos; i = text.indexOf('\n', i + 1)) {
    line += 1;
    lineStart = i + 1;
  }
  return { line, col: pos - lineStart + 1 };
}

function eventFile(ev) {
  if (!ev || !ev.data) return null;
  if (ev.type === 'file_renamed') return ev.data.new_file || null;
  if (ev.type === 'file_deleted') return null;
  return typeof ev.data.file === 'string' ? ev.data.file : null;
}

function describeEvent(ev) {
  if (!ev) return 'start of the session';
  const d = ev.data || {};
  switch (ev.type) {
    case 'edit': {
      const ins = typeof d.inserted === 'string' ? d.inserted.length : 0;
      if (d.origin === 'paste') return `paste ${plural(ins, 'char')} into ${d.file}`;
      const origin = d.origin && d.origin !== 'typed' ? ` (${d.origin})` : '';
      return `edit ${d.file}${origin} +${ins} −${d.deleted || 0}`;
    }
    case 'cursor': {
      const lc = lineCol(S.files.get(d.file), d.position);
      const where = lc ? `${d.file}:${lc.line}:${lc.col}` : `${d.file} @${d.position}`;
      const sel = d.selection_end != null && d.selection_end !== d.position
        ? ` (selection of ${Math.abs(d.selection_end - d.position)})` : '';
      return `cursor ${where}${sel}`;
    }
    case 'file_created': return `create ${d.file}`;
    case 'file_renamed': return `rename ${d.file} → ${d.new_file}`;
    case 'file_deleted': return `delete ${d.file}`;
    case 'focus_lost': return 'tab away (editor lost focus)';
    case 'focus_regained': return 'back in the editor';
    case 'code_run': {
      const tests = (d.tests_passed || d.tests_failed)
        ? `, ${d.tests_passed || 0} passed, ${d.tests_failed || 0} failed` : '';
      return `run ${d.command ? `“${d.command}”` : 'code'} → exit ${d.exit_code}${tests}`;
    }
    case 'face_check': {
      const sim = typeof d.similarity === 'number' ? d.similarity.toFixed(2) : '?';
      return `face check (similarity ${sim}, ${plural(d.face_count ?? 0, 'face')})`;
    }
    case 'keystroke': return `keystroke (${d.key_class || 'key'})`;
    default: return ev.type || 'event';
  }
}

// ---------------------------------------------------------------------------------------------
// Banner, notices, busy state

function showError(err, source = 'other') {
  S.errorSource = source;
  const msg = err instanceof ApiError
    ? `${err.message}${err.code ? ` (${err.code}${err.status ? `, HTTP ${err.status}` : ''})` : ''}`
    : String(err && err.message ? err.message : err);
  el('banner-text').textContent = msg;
  el('banner').hidden = false;
}

/** Hides the banner; with a source, only when the banner shows an error from that source. */
function hideError(source) {
  if (source && S.errorSource !== source) return;
  S.errorSource = null;
  el('banner').hidden = true;
  el('banner-text').textContent = '';
}

let noticeTimer = 0;
function notice(text) {
  el('notice').textContent = text;
  clearTimeout(noticeTimer);
  if (text) noticeTimer = setTimeout(() => { el('notice').textContent = ''; }, 4000);
}

function updateBusy() {
  const main = el('replay');
  const state = S.playing ? 'playing' : S.seeking ? 'seeking' : 'idle';
  main.dataset.state = state;
  main.setAttribute('aria-busy', S.seeking ? 'true' : 'false');
  // A live region that speaks every event at 32× is useless: announce only when not playing.
  el('current-event').setAttribute('aria-live', S.playing ? 'off' : 'polite');
  updateButtons();
}

// ---------------------------------------------------------------------------------------------
// Loading

function sessionIdFromPath() {
  const parts = location.pathname.split('/').filter(Boolean);
  const i = parts.lastIndexOf('sessions');
  const id = i >= 0 ? parts[i + 1] : parts[parts.length - 1];
  return id ? decodeURIComponent(id) : null;
}

function readKey() {
  const hash = location.hash.startsWith('#') ? location.hash.slice(1) : location.hash;
  if (hash) {
    const params = new URLSearchParams(hash);
    const key = params.get('key');
    if (key) {
      try { sessionStorage.setItem(KEY_STORAGE, key); } catch { /* storage disabled */ }
      params.delete('key');
      const rest = params.toString();
      history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
      return key;
    }
  }
  try { return sessionStorage.getItem(KEY_STORAGE); } catch { return null; }
}

function forgetKey() {
  S.key = null;
  try { sessionStorage.removeItem(KEY_STORAGE); } catch { /* ignore */ }
}

function showKeyForm() {
  el('replay').hidden = true;
  el('key-form').hidden = false;
  el('key-input').focus();
}

async function load() {
  hideError();
  el('key-form').hidden = true;
  let summary;
  try {
    summary = await api('/replay');
  } catch (e) {
    showError(e, 'load');
    if (e.status === 401 || e.status === 403) {
      forgetKey();
      showKeyForm();
    }
    return;
  }
  S.summary = summary;
  S.lastSeq = Math.max(0, Number(summary.last_seq) || 0);
  S.markers = (Array.isArray(summary.markers) ? summary.markers : [])
    .filter((m) => m && Number.isFinite(Number(m.seq)))
    .sort((a, b) => a.seq - b.seq);
  renderHeader();
  renderHeldBack(el('held-back'), summary.held_back);
  const truncated = el('markers-truncated');
  truncated.hidden = !summary.markers_truncated;
  truncated.textContent = summary.markers_truncated
    ? `This session has more markers than the timeline shows: these are the first ${S.markers.length}` +
      (S.markers.length ? `, up to seq ${S.markers[S.markers.length - 1].seq}.` : '.')
    : '';
  setupScrubber();
  renderMarkers();
  el('replay').hidden = false;
  const wanted = Number(new URLSearchParams(location.search).get('seq'));
  await seek(Number.isFinite(wanted) ? wanted : 0);
}

function renderHeader() {
  const s = S.summary;
  el('candidate').textContent = s.candidate_name || '–';
  el('assessment').textContent = s.assessment_title || '–';
  const status = el('status');
  status.textContent = (s.status || 'unknown').replace(/_/g, ' ');
  status.dataset.status = s.status || 'unknown';
  el('started-at').textContent = fmtDate(s.started_at);
  el('duration').textContent = fmtDuration(s.duration_ms);
  document.title = `${s.candidate_name || 'Session'} · ${s.assessment_title || 'replay'} · Clarity`;
  el('session-facts').hidden = false;
}

// ---------------------------------------------------------------------------------------------
// Timeline: scrubber and markers

function setupScrubber() {
  const sc = el('scrubber');
  sc.max = String(S.lastSeq);
  sc.disabled = S.lastSeq === 0;
  el('scale-end').textContent = `seq ${S.lastSeq}`;
  el('goto-input').max = String(S.lastSeq);
}

function extendLastSeq(seq) {
  if (seq <= S.lastSeq) return;
  S.lastSeq = seq;
  setupScrubber();
  renderMarkers();
}

function pct(seq) {
  return S.lastSeq > 0 ? (clamp(seq, 0, S.lastSeq) / S.lastSeq) * 100 : 0;
}

function markerClasses(m) {
  const cls = ['marker', `kind-${m.kind}`];
  if ((m.kind === 'code_run' || m.kind === 'test_run') && m.data && typeof m.data.passed === 'boolean') {
    cls.push(m.data.passed ? 'passed' : 'failed');
  }
  return cls;
}

function markerLabel(m) {
  return m.label || MARKER_NAMES[m.kind] || m.kind;
}

// One lane per marker kind present, so that markers of different kinds never cover each other.
const LANE_ORDER = ['focus_away', 'paste', 'edit_anomaly', 'test_run', 'code_run', 'face_anomaly', 'submission'];

function renderMarkers() {
  const track = el('marker-track');
  const list = el('marker-list');
  track.replaceChildren();
  list.replaceChildren();
  const kinds = [...new Set(S.markers.map((m) => m.kind))].sort((a, b) => {
    const ia = LANE_ORDER.indexOf(a);
    const ib = LANE_ORDER.indexOf(b);
    return (ia < 0 ? LANE_ORDER.length : ia) - (ib < 0 ? LANE_ORDER.length : ib) || a.localeCompare(b);
  });
  track.style.setProperty('--lanes', String(Math.max(1, kinds.length)));
  el('marker-count').textContent = S.markers.length ? `(${S.markers.length})` : '';
  for (const m of S.markers) {
    const kindName = MARKER_NAMES[m.kind] || m.kind;
    const label = markerLabel(m);
    const time = fmtClock(m.at_ms);

    const b = document.createElement('button');
    b.type = 'button';
    b.className = markerClasses(m).join(' ');
    b.dataset.testid = `marker-${m.kind}`;
    b.dataset.seq = String(m.seq);
    b.dataset.kind = m.kind;
    // The list below gives keyboard users the same jumps; keep the track out of the tab order.
    b.tabIndex = -1;
    b.title = `${kindName} · ${time} · seq ${m.seq}: ${label}`;
    b.setAttribute('aria-label', `${kindName} at seq ${m.seq}: ${label}`);
    b.style.setProperty('left', `${pct(m.seq)}%`);
    b.style.setProperty('--lane', String(kinds.indexOf(m.kind)));
    if (m.end_seq != null && Number(m.end_seq) > m.seq) {
      b.classList.add('span');
      b.style.setProperty('width', `${pct(m.end_seq) - pct(m.seq)}%`);
    }
    b.addEventListener('click', () => seek(m.seq));
    track.append(b);

    const li = document.createElement('li');
    const lb = document.createElement('button');
    lb.type = 'button';
    lb.className = 'marker-item';
    lb.dataset.testid = 'marker-item';
    lb.dataset.kind = m.kind;
    lb.dataset.seq = String(m.seq);
    const sw = document.createElement('span');
    sw.className = `swatch ${markerClasses(m).slice(1).join(' ')}`;
    sw.setAttribute('aria-hidden', 'true');
    const t = document.createElement('span');
    t.className = 'marker-time';
    t.textContent = time;
    const txt = document.createElement('span');
    txt.className = 'marker-text';
    const extra = m.duration_ms != null ? ` (${fmtDuration(m.duration_ms)})` : '';
    txt.textContent = `${kindName}: ${label}${extra}`;
    lb.append(sw, t, txt);
    lb.setAttribute('aria-label', `${time}, seq ${m.seq}. ${kindName}: ${label}${extra}`);
    lb.title = `seq ${m.seq} · ${kindName}: ${label}${extra}`;
    lb.addEventListener('click', () => seek(m.seq));
    li.append(lb);
    list.append(li);
  }
  if (!S.markers.length) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'No markers in this session.';
    list.append(li);
  }
}

function findMarker(kind, direction) {
  if (direction > 0) return S.markers.find((m) => m.kind === kind && m.seq > S.seq) || null;
  for (let i = S.markers.length - 1; i >= 0; i -= 1) {
    const m = S.markers[i];
    if (m.kind === kind && m.seq < S.seq) return m;
  }
  return null;
}

function jump(kind, direction) {
  const m = findMarker(kind, direction);
  const name = (MARKER_NAMES[kind] || kind).toLowerCase();
  if (!m) {
    notice(direction > 0 ? `No ${name} after seq ${S.seq}.` : `No ${name} before seq ${S.seq}.`);
    return;
  }
  notice(`${MARKER_NAMES[kind] || kind}: ${markerLabel(m)}`);
  seek(m.seq);
}

// ---------------------------------------------------------------------------------------------
// Seeking

async function seek(target) {
  const seq = clamp(Math.round(Number(target) || 0), 0, S.lastSeq);
  const token = ++S.seekToken;
  // Seeking while playing (or while an earlier seek will resume playing) keeps playing.
  const resume = S.playing || S.resumeAfterSeek;
  S.resumeAfterSeek = resume;
  stopPlayback();
  if (S.seekAbort) S.seekAbort.abort();
  const ctl = new AbortController();
  S.seekAbort = ctl;
  S.seeking = true;
  updateBusy();
  try {
    const st = await api(`/replay/state?seq=${seq}`, { signal: ctl.signal });
    if (token !== S.seekToken) return;
    applyState(st);
    hideError('seek');
    S.seeking = false;
    S.resumeAfterSeek = false;
    updateBusy();
    if (resume) startPlayback();
    else rememberPosition();
  } catch (e) {
    if (e.name === 'AbortError' || token !== S.seekToken) return;
    S.seeking = false;
    S.resumeAfterSeek = false;
    updateBusy();
    showError(e, 'seek');
    render(); // put the scrubber back where the displayed state is
  } finally {
    if (S.seekAbort === ctl) S.seekAbort = null;
  }
}

function applyState(st) {
  S.seq = Number(st.seq) || 0;
  S.atMs = Number(st.at_ms) || 0;
  S.files = new Map(Object.entries(st.files || {}));
  S.cursor = st.cursor || null;
  S.event = st.event || null;
  S.userPickedFile = false;
  pickActiveFile();
  render();
}

function rememberPosition() {
  const params = new URLSearchParams(location.search);
  if (params.get('seq') === String(S.seq)) return;
  if (S.seq === 0) params.delete('seq');
  else params.set('seq', String(S.seq));
  const q = params.toString();
  history.replaceState(history.state, '', location.pathname + (q ? `?${q}` : '') + location.hash);
}

// ---------------------------------------------------------------------------------------------
// Playback

function speed() {
  return clamp(Number(el('speed').value) || 1, 1, 32);
}

function startPlayback() {
  if (S.playing) return;
  if (S.seeking) {
    // Play as soon as the position being loaded arrives.
    S.resumeAfterSeek = true;
    updateButtons();
    return;
  }
  hideError('playback');
  if (S.seq >= S.lastSeq) {
    // At the end: start over, as media players do.
    S.resumeAfterSeek = true;
    seek(0);
    return;
  }
  S.playing = true;
  const gen = ++S.playGen;
  S.pb = {
    gen,
    buffer: [],
    nextFrom: S.seq + 1,
    exhausted: false,
    fetching: false,
    elapsed: 0,
    lastTick: performance.now(),
    timer: 0,
  };
  updateButtons();
  updateBusy();
  fetchMore(S.pb);
  S.pb.timer = setTimeout(tick, TICK_MS);
}

function stopPlayback() {
  if (S.pb && S.pb.timer) clearTimeout(S.pb.timer);
  S.pb = null;
  S.playGen += 1;
  if (S.playing) {
    S.playing = false;
    updateButtons();
    updateBusy();
  }
}

function pause() {
  S.resumeAfterSeek = false;
  stopPlayback();
  render();
  rememberPosition();
}

async function fetchMore(pb) {
  if (pb.fetching || pb.exhausted) return;
  pb.fetching = true;
  try {
    const r = await api(`/replay/events?from_seq=${pb.nextFrom}&limit=${PAGE_LIMIT}`);
    if (pb.gen !== S.playGen) return;
    const events = (Array.isArray(r.events) ? r.events : []).filter((e) => e.seq >= pb.nextFrom);
    pb.buffer.push(...events);
    if (events.length) pb.nextFrom = events[events.length - 1].seq + 1;
    if (r.next_from_seq == null || !events.length) pb.exhausted = true;
    else pb.nextFrom = Math.max(pb.nextFrom, Number(r.next_from_seq));
  } catch (e) {
    if (pb.gen !== S.playGen) return;
    pause();
    showError(e, 'playback');
  } finally {
    pb.fetching = false;
  }
}

function tick() {
  const pb = S.pb;
  if (!pb || !S.playing) return;
  const now = performance.now();
  pb.elapsed += (now - pb.lastTick) * speed();
  pb.lastTick = now;
  const skip = el('skip-idle').checked;
  let applied = 0;
  while (pb.buffer.length && applied < MAX_EVENTS_PER_TICK) {
    const ev = pb.buffer[0];
    let gap = Math.max(0, (Number(ev.at_ms) || 0) - S.atMs);
    if (skip && gap > SKIP_IDLE_MS) gap = SKIP_IDLE_MS;
    if (pb.elapsed < gap) break;
    pb.elapsed -= gap;
    pb.buffer.shift();
    applyEvent(ev);
    applied += 1;
  }
  if (!pb.buffer.length) {
    if (pb.exhausted && !pb.fetching) {
      stopPlayback();
      render();
      rememberPosition();
      notice('End of the replay.');
      return;
    }
  }
  if (pb.buffer.length < LOW_WATER) fetchMore(pb);
  if (applied) render();
  pb.timer = setTimeout(tick, TICK_MS);
}

/** Whether `pos` is a valid UTF-16 offset in `text`: in range and not inside a surrogate pair. */
function validOffset(text, pos) {
  if (!Number.isInteger(pos) || pos < 0 || pos > text.length) return false;
  if (pos === 0 || pos === text.length) return true;
  const before = text.charCodeAt(pos - 1);
  const after = text.charCodeAt(pos);
  return !(before >= 0xd800 && before <= 0xdbff && after >= 0xdc00 && after <= 0xdfff);
}

/**
 * Applies one telemetry event to the local state, with the server's replay rules
 * (projections/src/replay_engine.rs, `Workspace::apply`): an event that does not fit the state
 * (unknown file, existing path, position out of range or inside a surrogate pair, negative
 * numbers) leaves it unchanged; edits do not move the cursor; a rename carries the cursor along;
 * deleting the cursor's file clears it.
 */
function applyEvent(ev) {
  const d = ev.data || {};
  const files = S.files;
  switch (ev.type) {
    case 'edit': {
      const text = files.get(d.file);
      const pos = Number(d.position);
      const del = Number(d.deleted);
      if (text === undefined || typeof d.inserted !== 'string') break;
      if (!validOffset(text, pos) || !Number.isInteger(del) || del < 0 || !validOffset(text, pos + del)) break;
      files.set(d.file, text.slice(0, pos) + d.inserted + text.slice(pos + del));
      break;
    }
    case 'file_created':
      if (typeof d.file === 'string' && !files.has(d.file)) files.set(d.file, typeof d.content === 'string' ? d.content : '');
      break;
    case 'file_renamed':
      if (files.has(d.file) && typeof d.new_file === 'string' && !files.has(d.new_file)) {
        const content = files.get(d.file);
        files.delete(d.file);
        files.set(d.new_file, content);
        if (S.cursor && S.cursor.file === d.file) S.cursor = { ...S.cursor, file: d.new_file };
        if (S.activeFile === d.file) S.activeFile = d.new_file;
      }
      break;
    case 'file_deleted':
      if (files.delete(d.file) && S.cursor && S.cursor.file === d.file) S.cursor = null;
      break;
    case 'cursor': {
      const text = files.get(d.file);
      const pos = Number(d.position);
      const end = d.selection_end == null ? null : Number(d.selection_end);
      if (text === undefined || !validOffset(text, pos) || (end !== null && !validOffset(text, end))) break;
      S.cursor = { file: d.file, position: pos, selection_end: end };
      break;
    }
    default:
      break;
  }
  S.seq = Number(ev.seq);
  S.atMs = Number(ev.at_ms) || 0;
  S.event = ev;
  extendLastSeq(S.seq);
  S.userPickedFile = S.userPickedFile && !eventFile(ev);
  pickActiveFile();
}

// ---------------------------------------------------------------------------------------------
// Rendering

function pickActiveFile() {
  if (S.userPickedFile && S.activeFile && S.files.has(S.activeFile)) return;
  const candidates = [eventFile(S.event), S.cursor && S.cursor.file, S.activeFile];
  for (const f of candidates) {
    if (f && S.files.has(f)) {
      S.activeFile = f;
      return;
    }
  }
  S.activeFile = sortedFiles()[0] ?? null;
}

function sortedFiles() {
  return [...S.files.keys()].sort((a, b) => a.localeCompare(b));
}

function render() {
  const sc = el('scrubber');
  if (!S.scrubbing) sc.value = String(S.seq);
  sc.setAttribute('aria-valuetext', `seq ${S.seq} of ${S.lastSeq}, ${fmtClock(S.atMs)}`);
  el('current-seq').textContent = String(S.seq);
  el('current-time').textContent = fmtClock(S.atMs);
  el('current-desc').textContent = describeEvent(S.event);
  el('current-event').dataset.type = S.event ? S.event.type : 'start';
  if (!S.playing) el('goto-input').placeholder = String(S.seq);
  renderTabs();
  renderFile();
  updateButtons();
}

function renderTabs() {
  const files = sortedFiles();
  const key = `${files.join('\u0000')}\u0001${S.activeFile}`;
  if (key === S.lastRendered.tabsKey) return;
  S.lastRendered.tabsKey = key;
  const tabs = el('file-tabs');
  tabs.replaceChildren();
  for (const path of files) {
    const b = document.createElement('button');
    b.type = 'button';
    b.setAttribute('role', 'tab');
    b.className = 'file-tab';
    b.dataset.testid = 'file-tab';
    b.dataset.path = path;
    b.id = `tab-${files.indexOf(path)}`;
    const active = path === S.activeFile;
    b.setAttribute('aria-selected', active ? 'true' : 'false');
    b.tabIndex = active ? 0 : -1;
    b.textContent = path;
    b.addEventListener('click', () => selectFile(path, false));
    tabs.append(b);
  }
  if (!files.length) {
    const p = document.createElement('span');
    p.className = 'muted no-files';
    p.textContent = 'No files at this position.';
    tabs.append(p);
  }
}

function selectFile(path, focus) {
  S.activeFile = path;
  S.userPickedFile = true;
  render();
  if (focus) {
    const tab = [...el('file-tabs').querySelectorAll('[role="tab"]')].find((t) => t.dataset.path === path);
    if (tab) tab.focus();
  }
}

function onTabKey(e) {
  if (e.target.getAttribute('role') !== 'tab') return;
  const files = sortedFiles();
  const i = files.indexOf(e.target.dataset.path);
  let next = null;
  if (e.key === 'ArrowRight') next = files[(i + 1) % files.length];
  else if (e.key === 'ArrowLeft') next = files[(i - 1 + files.length) % files.length];
  else if (e.key === 'Home') next = files[0];
  else if (e.key === 'End') next = files[files.length - 1];
  if (next != null) {
    e.preventDefault();
    selectFile(next, true);
  }
}

/** Ranges to highlight in the active file: the last edit's inserted text, selection, caret. */
function highlights(path, text) {
  const h = { caret: null, ranges: [] };
  const c = S.cursor;
  if (c && c.file === path && Number.isFinite(Number(c.position))) {
    const p = clamp(Number(c.position), 0, text.length);
    h.caret = p;
    if (c.selection_end != null && Number(c.selection_end) !== p) {
      const q = clamp(Number(c.selection_end), 0, text.length);
      h.ranges.push({ from: Math.min(p, q), to: Math.max(p, q), cls: 'selection' });
    }
  }
  const ev = S.event;
  if (ev && ev.type === 'edit' && ev.data && ev.data.file === path) {
    const from = clamp(Number(ev.data.position) || 0, 0, text.length);
    const len = typeof ev.data.inserted === 'string' ? ev.data.inserted.length : 0;
    if (len) {
      h.ranges.push({
        from,
        to: clamp(from + len, 0, text.length),
        cls: ev.data.origin === 'paste' ? 'last-edit pasted' : 'last-edit',
      });
    }
    if (h.caret == null) h.caret = clamp(from + len, 0, text.length);
  }
  return h;
}

function renderFile() {
  const pre = el('file-content');
  const path = S.activeFile;
  const text = path != null ? S.files.get(path) ?? '' : '';
  const h = highlights(path, text);
  const sig = `${path}\u0000${h.caret}\u0000${h.ranges.map((r) => `${r.from}-${r.to}-${r.cls}`).join(',')}`;
  if (S.lastRendered.file === sig && S.lastRendered.content === text) return;
  S.lastRendered.file = sig;
  S.lastRendered.content = text;

  pre.dataset.path = path ?? '';
  const tabIndex = sortedFiles().indexOf(path);
  if (tabIndex >= 0) el('file-view').setAttribute('aria-labelledby', `tab-${tabIndex}`);

  // Split the text at every highlight boundary; the caret is an empty element so that the
  // element's textContent stays exactly the file content.
  const points = new Set([0, text.length]);
  for (const r of h.ranges) { points.add(r.from); points.add(r.to); }
  if (h.caret != null) points.add(h.caret);
  const sorted = [...points].sort((a, b) => a - b);
  const frag = document.createDocumentFragment();
  let caretEl = null;
  for (let i = 0; i < sorted.length; i += 1) {
    const at = sorted[i];
    if (h.caret === at && !caretEl) {
      caretEl = document.createElement('span');
      caretEl.className = 'caret';
      caretEl.dataset.testid = 'cursor';
      caretEl.setAttribute('aria-hidden', 'true');
      frag.append(caretEl);
    }
    const end = sorted[i + 1];
    if (end === undefined || end === at) continue;
    const piece = text.slice(at, end);
    const cls = h.ranges.filter((r) => r.from <= at && end <= r.to).map((r) => r.cls);
    if (cls.length) {
      const m = document.createElement('mark');
      m.className = cls.join(' ');
      m.textContent = piece;
      frag.append(m);
    } else {
      frag.append(document.createTextNode(piece));
    }
  }
  pre.replaceChildren(frag);

  let lines = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines += 1;
  if (lines !== S.lastRendered.lines) {
    S.lastRendered.lines = lines;
    const nums = [];
    for (let i = 1; i <= lines; i += 1) nums.push(i);
    el('gutter').textContent = nums.join('\n');
  }

  const meta = el('file-meta');
  if (path == null) {
    meta.textContent = '';
  } else {
    const parts = [`${path}`, plural(lines, 'line'), plural(text.length, 'char')];
    if (S.cursor && S.cursor.file === path) {
      const lc = lineCol(text, Number(S.cursor.position));
      if (lc) parts.push(`cursor at line ${lc.line}, column ${lc.col}`);
    }
    meta.textContent = parts.join(' · ');
  }

  const target = caretEl || pre.querySelector('mark');
  if (target) scrollIntoViewWithin(el('file-view'), target);
}

function scrollIntoViewWithin(container, target) {
  const c = container.getBoundingClientRect();
  const t = target.getBoundingClientRect();
  const margin = 24;
  if (t.top < c.top + margin || t.bottom > c.bottom - margin) {
    container.scrollTop += t.top - c.top - c.height / 3;
  }
  const gutterWidth = el('gutter').getBoundingClientRect().width;
  if (t.left < c.left + gutterWidth + margin || t.right > c.right - margin) {
    container.scrollLeft += t.left - c.left - gutterWidth - c.width / 3;
  }
}

function updateButtons() {
  const ready = !!S.summary;
  const wantsPlay = S.playing || S.resumeAfterSeek;
  el('play').disabled = !ready || wantsPlay || S.lastSeq === 0;
  el('pause').disabled = !wantsPlay;
  el('prev-paste').disabled = !findMarker('paste', -1);
  el('next-paste').disabled = !findMarker('paste', +1);
  el('prev-tab-away').disabled = !findMarker('focus_away', -1);
  el('next-tab-away').disabled = !findMarker('focus_away', +1);
}

// ---------------------------------------------------------------------------------------------
// Diff between two marked positions

function renderMarks() {
  el('mark-a-value').textContent = S.markA == null ? '–' : `seq ${S.markA.seq} · ${fmtClock(S.markA.atMs)}`;
  el('mark-b-value').textContent = S.markB == null ? '–' : `seq ${S.markB.seq} · ${fmtClock(S.markB.atMs)}`;
  el('mark-a-value').dataset.seq = S.markA == null ? '' : String(S.markA.seq);
  el('mark-b-value').dataset.seq = S.markB == null ? '' : String(S.markB.seq);
}

function setMark(which) {
  const mark = { seq: S.seq, atMs: S.atMs };
  if (which === 'a') S.markA = mark;
  else S.markB = mark;
  renderMarks();
  if (S.markA && S.markB) loadDiff();
}

function clearDiff() {
  S.markA = null;
  S.markB = null;
  S.diffToken += 1;
  renderMarks();
  const box = el('diff');
  box.dataset.state = 'empty';
  box.replaceChildren(paragraph('Mark two positions to see what changed between them.', 'muted'));
}

function paragraph(text, cls) {
  const p = document.createElement('p');
  if (cls) p.className = cls;
  p.textContent = text;
  return p;
}

async function loadDiff() {
  const token = ++S.diffToken;
  const from = Math.min(S.markA.seq, S.markB.seq);
  const to = Math.max(S.markA.seq, S.markB.seq);
  const box = el('diff');
  box.dataset.state = 'loading';
  box.replaceChildren(paragraph(`Loading the changes from seq ${from} to seq ${to}…`, 'muted'));
  try {
    const r = await api(`/replay/diff?from_seq=${from}&to_seq=${to}`);
    if (token !== S.diffToken) return;
    hideError('diff');
    renderDiff(r, from, to);
  } catch (e) {
    if (token !== S.diffToken) return;
    box.dataset.state = 'error';
    box.replaceChildren(paragraph('The diff could not be loaded.', 'muted'));
    showError(e, 'diff');
  }
}

function renderDiff(r, from, to) {
  const box = el('diff');
  const files = Array.isArray(r.files) ? r.files : [];
  box.dataset.state = 'ready';
  box.dataset.from = String(from);
  box.dataset.to = String(to);
  const frag = document.createDocumentFragment();
  const reversed = S.markA.seq > S.markB.seq ? ' (B comes before A, so this shows B → A)' : '';
  frag.append(paragraph(
    files.length
      ? `${plural(files.length, 'file')} changed from seq ${from} to seq ${to}${reversed}.`
      : `No changes from seq ${from} to seq ${to}${reversed}.`,
    'diff-summary',
  ));
  for (const f of files) {
    let added = 0;
    let removed = 0;
    for (const h of f.hunks || []) {
      for (const l of h.lines || []) {
        if (l.op === '+') added += 1;
        else if (l.op === '-') removed += 1;
      }
    }
    const det = document.createElement('details');
    det.open = true;
    det.className = `diff-file status-${f.status}`;
    det.dataset.testid = 'diff-file';
    det.dataset.status = f.status;
    det.dataset.path = f.path;
    const sum = document.createElement('summary');
    const name = document.createElement('span');
    name.className = 'diff-path';
    name.textContent = f.path;
    const badge = document.createElement('span');
    badge.className = `badge status-${f.status}`;
    badge.textContent = f.status;
    const counts = document.createElement('span');
    counts.className = 'diff-counts';
    counts.textContent = `+${added} −${removed}`;
    sum.append(name, ' ', badge, ' ', counts);
    det.append(sum);

    const table = document.createElement('table');
    table.className = 'hunks';
    const tbody = document.createElement('tbody');
    for (const h of f.hunks || []) {
      const hr = document.createElement('tr');
      hr.className = 'hunk-header';
      const hc = document.createElement('td');
      hc.colSpan = 4;
      hc.textContent = `@@ -${h.old_start},${h.old_lines} +${h.new_start},${h.new_lines} @@`;
      hr.append(hc);
      tbody.append(hr);
      let oldNo = Number(h.old_start) || 0;
      let newNo = Number(h.new_start) || 0;
      for (const l of h.lines || []) {
        const tr = document.createElement('tr');
        const op = l.op === '+' || l.op === '-' ? l.op : ' ';
        tr.className = op === '+' ? 'add' : op === '-' ? 'del' : 'ctx';
        const o = document.createElement('td');
        const n = document.createElement('td');
        o.className = 'ln';
        n.className = 'ln';
        if (op !== '+') { o.textContent = String(oldNo); oldNo += 1; }
        if (op !== '-') { n.textContent = String(newNo); newNo += 1; }
        const s = document.createElement('td');
        s.className = 'op';
        s.textContent = op;
        const t = document.createElement('td');
        t.className = 'code';
        t.textContent = l.text ?? '';
        tr.append(o, n, s, t);
        tbody.append(tr);
      }
    }
    table.append(tbody);
    det.append(table);
    frag.append(det);
  }
  box.replaceChildren(frag);
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wire() {
  el('banner-close').addEventListener('click', () => hideError());
  el('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = el('key-input').value.trim();
    if (!key) return;
    S.key = key;
    try { sessionStorage.setItem(KEY_STORAGE, key); } catch { /* ignore */ }
    el('key-input').value = '';
    load();
  });

  el('play').addEventListener('click', () => { startPlayback(); el('pause').focus(); });
  el('pause').addEventListener('click', () => { pause(); el('play').focus(); });
  el('speed').addEventListener('change', () => notice(`Speed ${speed()}×`));
  el('skip-idle').addEventListener('change', () => {
    notice(el('skip-idle').checked ? 'Skipping idle pauses.' : 'Playing idle pauses in full.');
  });
  el('skip-idle-hint').textContent = `(pauses over ${SKIP_IDLE_MS / 1000} s)`;
  el('next-paste').addEventListener('click', () => jump('paste', +1));
  el('prev-paste').addEventListener('click', () => jump('paste', -1));
  el('next-tab-away').addEventListener('click', () => jump('focus_away', +1));
  el('prev-tab-away').addEventListener('click', () => jump('focus_away', -1));
  el('goto-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = el('goto-input').value;
    if (v === '') return;
    seek(Number(v));
  });

  const sc = el('scrubber');
  sc.addEventListener('pointerdown', () => { S.scrubbing = true; });
  sc.addEventListener('input', () => {
    S.scrubbing = true;
    el('scrub-preview').textContent = `→ seq ${sc.value}`;
  });
  // `change` fires once on release (pointer) or per key press (keyboard): one seek each.
  sc.addEventListener('change', () => {
    S.scrubbing = false;
    el('scrub-preview').textContent = '';
    seek(Number(sc.value));
  });
  sc.addEventListener('pointerup', () => {
    // A click that does not move the thumb fires no change event.
    setTimeout(() => { if (S.scrubbing && Number(sc.value) === S.seq) S.scrubbing = false; }, 0);
  });

  el('file-tabs').addEventListener('keydown', onTabKey);
  el('mark-a').addEventListener('click', () => setMark('a'));
  el('mark-b').addEventListener('click', () => setMark('b'));
  el('diff-clear').addEventListener('click', clearDiff);

  // Space toggles playback unless a control that uses Space has focus.
  document.addEventListener('keydown', (e) => {
    if (e.key !== ' ' || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t instanceof HTMLElement && t.closest('button, input, select, textarea, summary, a, [role="tab"]')) return;
    if (el('replay').hidden) return;
    e.preventDefault();
    if (S.playing) pause(); else startPlayback();
  });
}

function main() {
  wire();
  renderMarks();
  S.sessionId = sessionIdFromPath();
  S.key = readKey();
  if (!S.sessionId) {
    showError(new Error('This page needs a session id in its address: /review/sessions/{id}.'));
    return;
  }
  if (!S.key) {
    showKeyForm();
    return;
  }
  load();
}

main();
