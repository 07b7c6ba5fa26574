// The capture library in real Chromium: a candidate types into a <textarea> with real keyboard
// events at a human pace, pastes from the clipboard, tabs away, reloads mid-session, goes offline
// and comes back; then the events a local ingest endpoint received must replay to the textarea's
// text, with seq 1..N each once. Prints the capture path's cost per event (p50 / p99, measured in
// the page with performance.now()) and the batches and requests per minute it took.
//
//   node web/capture/bench/browser-check.mjs        (after `source scripts/browser.sh && ensure_browser`)
//
// Environment: CHROMIUM (default /usr/bin/chromium), CHARS (characters typed, default 400),
// DELAY_MS (per key, default 80: a fast typist's ~150 words per minute is ~80 ms a key).
// It uses playwright-core from tests/browser/node_modules and esbuild from web/node_modules.

import { createServer } from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.join(here, "..", "..", "..");
const require = createRequire(path.join(repo, "tests", "browser", "package.json"));
const { chromium } = require("playwright-core");

const CHARS = Number(process.env.CHARS || 400);
const DELAY_MS = Number(process.env.DELAY_MS || 80);
const SESSION = "5e55104e-0000-4000-8000-000000000001";
const TOKEN = "cst_check";
const FILE = "main.py";

function fail(message) {
  console.error(`FAILED: ${message}`);
  process.exit(1);
}

// ---- the page and the ingest endpoint -------------------------------------------------------

const bundle = (
  await build({
    entryPoints: [path.join(here, "..", "src", "index.ts")],
    bundle: true,
    format: "iife",
    globalName: "ClarityCapture",
    target: "es2022",
    write: false,
    minify: true,
  })
).outputFiles[0].text;

const PAGE = `<!doctype html><meta charset="utf-8"><title>capture check</title>
<label for="code">Code</label><textarea id="code" rows="20" cols="80"></textarea>
<script src="/capture.js"></script>
<script type="module">
const C = ClarityCapture;
if (!(await C.claimSession(${JSON.stringify(SESSION)}, 3000))) {
  window.secondTab = true;
  throw new Error("this session is open in another tab");
}
const state = await (await fetch("/state")).json();
const { storage, persistent } = await C.IndexedDbStorage.openOrMemory();
if (!persistent) throw new Error("IndexedDB is not available");
const files = new Map(Object.entries(state.files));
const capture = await C.Capture.open({
  sessionId: ${JSON.stringify(SESSION)}, token: ${JSON.stringify(TOKEN)}, storage,
  serverAckedSeq: state.ackedSeq, files,
});
// What the candidate had: the server's reconstruction plus what is still queued here.
const current = C.applyEvents(files, capture.pendingEvents());
const area = document.getElementById("code");
if (!current.has(${JSON.stringify(FILE)})) capture.fileCreated(${JSON.stringify(FILE)}, "");
area.value = current.get(${JSON.stringify(FILE)}) ?? "";
let text = area.value;
const ORIGINS = { insertFromPaste: "paste", insertFromDrop: "paste", historyUndo: "undo", historyRedo: "undo" };
area.addEventListener("input", (e) => {
  const r = C.diffReplacement(text, area.value);
  text = area.value;
  if (r) capture.edit(${JSON.stringify(FILE)}, r.position, r.deleted, r.inserted, ORIGINS[e.inputType] ?? "typed");
});
C.attach(capture, { keyTarget: area });
window.capture = capture;
window.ready = true;
</script>`;

const stored = [];
const requests = [];
let lastSeq = 0;

function replayFiles(upTo) {
  const files = new Map();
  for (const { data } of stored.filter((e) => e.seq <= upTo)) {
    if (data.type === "file_created") files.set(data.file, data.content ?? "");
    if (data.type === "edit") {
      const t = files.get(data.file);
      files.set(data.file, t.slice(0, data.position) + data.inserted + t.slice(data.position + data.deleted));
    }
  }
  return files;
}

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/") {
    // Cross-origin isolated, so that performance.now() has 5 µs resolution instead of 100 µs
    // (the capture path's cost is a few microseconds: coarse ticks would hide it).
    res.writeHead(200, {
      "Content-Type": "text/html",
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
    });
    return res.end(PAGE);
  }
  if (req.method === "GET" && req.url === "/capture.js") {
    res.writeHead(200, { "Content-Type": "text/javascript" });
    return res.end(bundle);
  }
  if (req.method === "GET" && req.url === "/state") {
    res.writeHead(200, { "Content-Type": "application/json" });
    return res.end(JSON.stringify({ ackedSeq: lastSeq, files: Object.fromEntries(replayFiles(lastSeq)) }));
  }
  if (req.method === "POST" && req.url === `/v1/sessions/${SESSION}/telemetry`) {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const events = JSON.parse(body.toString("utf8")).events;
      requests.push({ at: Date.now(), events: events.length, bytes: body.length });
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        res.writeHead(401, { "Content-Type": "application/json" });
        return res.end(JSON.stringify({ error: { code: "unauthenticated", message: "no" } }));
      }
      const fresh = events.filter((e) => e.seq > lastSeq);
      if (fresh.length > 0 && fresh[0].seq !== lastSeq + 1) {
        res.writeHead(409, { "Content-Type": "application/json" });
        return res.end(JSON.stringify({ error: { code: "sequence_gap", message: "gap", details: { expected_seq: lastSeq + 1 } } }));
      }
      stored.push(...fresh);
      if (fresh.length) lastSeq = fresh.at(-1).seq;
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ accepted: fresh.length, duplicates: events.length - fresh.length, last_seq: lastSeq }));
    });
    return;
  }
  res.writeHead(404);
  res.end();
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}`;

// ---- the candidate --------------------------------------------------------------------------

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
const context = await browser.newContext({ permissions: ["clipboard-read", "clipboard-write"] });
const page = await context.newPage();
page.on("pageerror", (e) => fail(`page error: ${e.message}`));
const overheads = [];

async function load() {
  await page.goto(base + "/");
  await page.waitForFunction(() => window.ready === true);
  await page.focus("#code");
}

async function type(text) {
  // Real key events, one at a time, at a steady human pace.
  for (const ch of text) await page.keyboard.type(ch, { delay: DELAY_MS / 2 }).then(() => page.waitForTimeout(DELAY_MS / 2));
}

async function harvest() {
  overheads.push(await page.evaluate(() => window.capture.overhead()));
}

const source = "def fizz(n):\n    for i in range(1, n + 1):\n        print('fizz' if i % 3 == 0 else i)  # ünïcödé 😀\n";
const typed = source.repeat(Math.ceil(CHARS / source.length)).slice(0, CHARS);
const started = Date.now();
await load();
const third = Math.floor(typed.length / 3);
await type(typed.slice(0, third));
// A paste from the clipboard.
await page.evaluate(() => navigator.clipboard.writeText("\n# pasted block\nimport os\n"));
await page.keyboard.press("Control+V");
// A second tab of the same session is refused.
const second = await context.newPage();
second.on("pageerror", () => {});
await second.goto(base + "/");
await second.waitForFunction(() => window.secondTab === true);
await second.close();
// A tab-away. Headless Chromium keeps every page focused and visible, so the window's own
// blur / focus events are dispatched here (the listeners are the real ones).
await page.evaluate(() => window.dispatchEvent(new FocusEvent("blur")));
await page.waitForTimeout(300);
await page.evaluate(() => window.dispatchEvent(new FocusEvent("focus")));
await type(typed.slice(third, 2 * third));
// A reload mid-session: whatever was not acknowledged comes back from IndexedDB.
await harvest();
await page.reload();
await page.waitForFunction(() => window.ready === true);
await page.focus("#code");
await page.keyboard.press("Control+End");
// Offline for a while, typing on.
await context.setOffline(true);
await type(typed.slice(2 * third));
await page.waitForTimeout(1500);
const offlineState = await page.evaluate(() => window.capture.status.get().state);
await context.setOffline(false);
const status = await page.evaluate(() => window.capture.flush());
await harvest();
const finalText = await page.inputValue("#code");
const isolated = await page.evaluate(() => self.crossOriginIsolated);
const elapsedMin = (Date.now() - started) / 60000;
await browser.close();
server.close();

// ---- the checks -----------------------------------------------------------------------------

if (status.state !== "online") fail(`the capture ended ${status.state}: ${JSON.stringify(status.problem)}`);
const seqs = stored.map((e) => e.seq);
if (!seqs.every((s, i) => s === i + 1)) fail(`seq is not 1..N: ${seqs.join(",")}`);
const replayed = replayFiles(lastSeq).get(FILE);
if (replayed !== finalText) fail(`the replay differs from the textarea:\n${JSON.stringify(replayed)}\n${JSON.stringify(finalText)}`);
const pastes = stored.filter((e) => e.data.type === "edit" && e.data.origin === "paste");
if (pastes.length !== 1 || !pastes[0].data.inserted.includes("import os")) fail(`expected one paste, got ${JSON.stringify(pastes)}`);
if (!stored.some((e) => e.data.type === "focus_lost")) fail("no focus_lost recorded");
if (offlineState !== "offline" && offlineState !== "retrying") console.warn(`note: state while offline was ${offlineState}`);
const keys = stored.filter((e) => e.data.type === "keystroke");
const edits = stored.filter((e) => e.data.type === "edit");

const batches = requests.filter((r) => r.events > 0);
console.log(JSON.stringify({
  events: stored.length,
  keystrokes: keys.length,
  edits: edits.length,
  keystrokes_with_up: keys.filter((e) => e.data.up_ms !== undefined).length,
  requests: requests.length,
  mean_events_per_request: +(batches.reduce((n, r) => n + r.events, 0) / batches.length).toFixed(1),
  mean_bytes_per_request: Math.round(batches.reduce((n, r) => n + r.bytes, 0) / batches.length),
  requests_per_minute: +(requests.length / elapsedMin).toFixed(1),
  cross_origin_isolated: isolated,
  state_while_offline: offlineState,
  overhead_before_reload: overheads[0],
  overhead_after_reload: overheads[1],
}, null, 2));
