// Headless-browser check of the reviewer replay page (/review/sessions/{id}).
//
// A plain Node script (no test runner): exits 0 when every check passes, 1 with a message naming
// the failed check otherwise. Run by the Rust end-to-end test against a real API:
//
//   BASE_URL=http://127.0.0.1:PORT SESSION_ID=<uuid> API_KEY=clk_... \
//   EXPECT_JSON='{"last_seq":N,"paste_seq":P,"files_at_last":{"app.py":"..."},"tab_away_seq":F}' \
//   node tests/browser/replay.spec.mjs
//
// Optional: EXPECT_JSON.candidate_name (else the name the API reports is expected in the header),
// CHROMIUM (default /usr/bin/chromium), ARTIFACTS_DIR (default tests/browser/artifacts),
// STEP_TIMEOUT_MS (default 20000).

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = process.env.ARTIFACTS_DIR || path.join(here, 'artifacts');
const STEP_TIMEOUT = Number(process.env.STEP_TIMEOUT_MS || 20000);
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';

class CheckFailed extends Error {}

function fail(message) {
  throw new CheckFailed(message);
}

function env(name) {
  const v = process.env[name];
  if (!v) fail(`environment variable ${name} is required`);
  return v;
}

let BASE_URL;
let SESSION_ID;
let API_KEY;
let EXPECT;
let PAGE_URL;

function readConfig() {
  BASE_URL = env('BASE_URL').replace(/\/+$/, '');
  SESSION_ID = env('SESSION_ID');
  API_KEY = env('API_KEY');
  try {
    EXPECT = JSON.parse(env('EXPECT_JSON'));
  } catch (e) {
    if (e instanceof CheckFailed) throw e;
    fail(`EXPECT_JSON is not valid JSON: ${e.message}`);
  }
  for (const k of ['last_seq', 'paste_seq', 'tab_away_seq']) {
    if (!Number.isInteger(EXPECT[k])) fail(`EXPECT_JSON.${k} must be an integer, got ${JSON.stringify(EXPECT[k])}`);
  }
  if (!EXPECT.files_at_last || typeof EXPECT.files_at_last !== 'object') fail('EXPECT_JSON.files_at_last must be an object');
  PAGE_URL = `${BASE_URL}/review/sessions/${encodeURIComponent(SESSION_ID)}`;
}

const tid = (id) => `[data-testid="${id}"]`;

let passed = 0;
function ok(what) {
  passed += 1;
  console.log(`ok ${passed} - ${what}`);
}

function expectEqual(actual, expected, what) {
  if (actual === expected) return;
  if (typeof actual === 'string' && typeof expected === 'string' && (actual.length > 80 || expected.length > 80)) {
    fail(`${what}: ${firstDifference(actual, expected)}`);
  }
  fail(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

/** Calls the replay API directly (to learn facts the page should show). */
async function apiGet(p) {
  const res = await fetch(`${BASE_URL}/v1/sessions/${encodeURIComponent(SESSION_ID)}${p}`, {
    headers: { Authorization: `Bearer ${API_KEY}` },
  });
  const text = await res.text();
  if (!res.ok) fail(`GET ${p} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** Where two strings first differ, with a little context from each (for failure messages). */
function firstDifference(actual, expected) {
  if (typeof actual !== 'string' || typeof expected !== 'string') {
    return `got ${short(actual)}, expected ${short(expected)}`;
  }
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i += 1;
  const from = Math.max(0, i - 30);
  return `length ${actual.length} (expected ${expected.length}), first difference at offset ${i}: `
    + `got …${short(actual.slice(from, i + 40), 200)}, expected …${short(expected.slice(from, i + 40), 200)}`;
}

function short(s, n = 120) {
  const j = JSON.stringify(s);
  return j.length > n ? `${j.slice(0, n)}…` : j;
}

// ---------------------------------------------------------------------------------------------
// Page helpers

/** Waits until the page shows `seq` and is not seeking. */
async function waitForSeq(page, seq, what) {
  try {
    await page.waitForFunction(
      (v) => {
        const root = document.querySelector('[data-testid="replay"]');
        const cur = document.querySelector('[data-testid="current-seq"]');
        return root && !root.hidden && root.dataset.state !== 'seeking' && root.dataset.state !== 'loading'
          && cur && cur.textContent.trim() === v;
      },
      String(seq),
      { timeout: STEP_TIMEOUT },
    );
  } catch {
    fail(`${what}: the current seq did not become ${seq} (it shows ${await currentSeqText(page)}; ${await bannerText(page)})`);
  }
}

async function currentSeqText(page) {
  return (await page.locator(tid('current-seq')).textContent().catch(() => null))?.trim() ?? null;
}

async function bannerText(page) {
  const banner = page.locator(tid('error-banner'));
  if (await banner.isVisible().catch(() => false)) {
    return `error banner: ${(await banner.textContent()).trim()}`;
  }
  return 'no error banner';
}

async function assertNoBanner(page, when) {
  if (await page.locator(tid('error-banner')).isVisible()) {
    fail(`${when}: the page shows an error: ${(await page.locator(tid('error-message')).textContent()).trim()}`);
  }
}

async function assertEnabled(page, testid, when) {
  if (!(await page.locator(tid(testid)).isEnabled())) fail(`the ${testid} button is disabled ${when}`);
}

async function fileContent(page) {
  return page.locator(tid('file-content')).evaluate((e) => e.textContent);
}

async function activeTab(page) {
  return page.locator(`${tid('file-tab')}[aria-selected="true"]`).getAttribute('data-path', { timeout: STEP_TIMEOUT });
}

async function tabPaths(page) {
  return page.locator(tid('file-tab')).evaluateAll((tabs) => tabs.map((t) => t.dataset.path));
}

/** Clicks a tab and returns the text of the file view. */
async function showFile(page, filePath) {
  const tab = page.locator(`${tid('file-tab')}[data-path="${filePath.replace(/["\\]/g, '\\$&')}"]`);
  if ((await tab.count()) !== 1) fail(`no file tab for ${filePath} (tabs: ${short(await tabPaths(page), 300)})`);
  await tab.click();
  await page.waitForFunction(
    (p) => document.querySelector('[data-testid="file-content"]').dataset.path === p,
    filePath,
    { timeout: STEP_TIMEOUT },
  );
  return fileContent(page);
}

/** Seeks with the keyboard on the scrubber (Home = seq 0, End = last seq). */
async function scrubTo(page, key, seq, what) {
  await page.locator(tid('scrubber')).focus();
  await page.keyboard.press(key);
  await waitForSeq(page, seq, what);
}

/** Counts the requests the page makes to an endpoint while `action` runs. */
function requestCounter(page, fragment) {
  let n = 0;
  const on = (req) => { if (req.url().includes(fragment)) n += 1; };
  page.on('request', on);
  return { count: () => n, stop: () => page.off('request', on) };
}

// ---------------------------------------------------------------------------------------------
// The checks

async function checkMainFlow(browser) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  context.setDefaultTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) console.log(`  [browser console] ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) console.log(`  [browser] HTTP ${r.status()} for ${r.url()}`);
  });
  try {
    const summary = await apiGet('/replay');
    const candidate = EXPECT.candidate_name ?? summary.candidate_name;

    // Load with the key in the fragment.
    const res = await page.goto(`${PAGE_URL}#key=${encodeURIComponent(API_KEY)}`, { waitUntil: 'load' });
    if (!res || !res.ok()) fail(`GET ${PAGE_URL} answered ${res ? res.status() : 'nothing'}`);
    await waitForSeq(page, 0, 'initial load');
    await assertNoBanner(page, 'after loading');
    if (page.url().includes('key=')) fail(`the API key was left in the address bar: ${page.url()}`);
    const stored = await page.evaluate(() => Object.values({ ...sessionStorage }));
    if (!stored.includes(API_KEY)) fail('the API key from the fragment was not kept in sessionStorage');
    ok('the page loads with the key from the URL fragment, then removes it from the URL');

    // Header.
    const shown = (await page.locator(tid('candidate')).textContent()).trim();
    expectEqual(shown, candidate, 'candidate in the header');
    ok(`the header shows the candidate (${candidate})`);

    // Scrubber.
    const max = await page.locator(tid('scrubber')).getAttribute('max');
    expectEqual(Number(max), EXPECT.last_seq, 'scrubber max');
    ok(`the scrubber spans 0..${EXPECT.last_seq}`);

    // Paste marker drawn on the track.
    const pasteMarkers = page.locator(`${tid('marker-track')} ${tid('marker-paste')}`);
    const pasteSeqs = await pasteMarkers.evaluateAll((ms) => ms.map((m) => Number(m.dataset.seq)));
    if (!pasteSeqs.includes(EXPECT.paste_seq)) {
      fail(`no paste marker at seq ${EXPECT.paste_seq} on the track (paste markers at ${short(pasteSeqs)})`);
    }
    const box = await pasteMarkers.first().boundingBox();
    if (!box || box.width <= 0 || box.height <= 0) fail('the paste marker is not drawn (no visible box)');
    ok(`a paste marker is drawn at seq ${EXPECT.paste_seq}`);

    // next-paste from seq 0: one /replay/state request, lands on the paste, shows the pasted text.
    expectEqual(await currentSeqText(page), '0', 'seq before next-paste');
    await assertEnabled(page, 'next-paste', 'at seq 0 (is there a paste marker after seq 0?)');
    const states = requestCounter(page, '/replay/state');
    await page.locator(tid('next-paste')).click();
    await waitForSeq(page, EXPECT.paste_seq, 'next paste');
    states.stop();
    expectEqual(states.count(), 1, 'requests to /replay/state for one jump');
    await assertNoBanner(page, 'after next paste');
    const atPaste = await apiGet(`/replay/state?seq=${EXPECT.paste_seq}`);
    const ev = atPaste.event;
    if (!ev || !ev.data || typeof ev.data.inserted !== 'string' || !ev.data.inserted) {
      fail(`the event at paste_seq ${EXPECT.paste_seq} is not an edit that inserts text: ${short(ev, 300)}`);
    }
    const pasted = ev.data.inserted;
    const pasteFile = ev.data.file;
    expectEqual(await activeTab(page), pasteFile, 'file tab shown after jumping to the paste');
    const textAtPaste = await fileContent(page);
    if (!textAtPaste.includes(pasted)) {
      fail(`after next-paste the file view of ${pasteFile} does not contain the pasted text ${short(pasted)}`);
    }
    expectEqual(textAtPaste, atPaste.files[pasteFile], `content of ${pasteFile} at seq ${EXPECT.paste_seq}`);
    if (!(pasteFile in EXPECT.files_at_last)) {
      fail(`the pasted file ${pasteFile} is not among files_at_last (${short(Object.keys(EXPECT.files_at_last))})`);
    }
    ok(`next-paste jumps from 0 to seq ${EXPECT.paste_seq} with one state request and shows the pasted text in ${pasteFile}`);

    // Seek to the end: exactly the final files.
    await scrubTo(page, 'End', EXPECT.last_seq, 'seeking to the last seq');
    await assertNoBanner(page, 'after seeking to the end');
    const tabs = (await tabPaths(page)).sort();
    const expectedTabs = Object.keys(EXPECT.files_at_last).sort();
    expectEqual(JSON.stringify(tabs), JSON.stringify(expectedTabs), `file tabs at seq ${EXPECT.last_seq}`);
    for (const [p, content] of Object.entries(EXPECT.files_at_last)) {
      const text = await showFile(page, p);
      if (text !== content) {
        fail(`file view of ${p} at seq ${EXPECT.last_seq} differs from files_at_last: ${firstDifference(text, content)}`);
      }
    }
    if (!Object.values(EXPECT.files_at_last).some((c) => c.includes(pasted))) {
      console.log('  note: the pasted text was later changed; it is not in files_at_last verbatim');
    }
    ok(`seeking to seq ${EXPECT.last_seq} shows exactly files_at_last (${expectedTabs.join(', ')})`);

    // next-tab-away from the start.
    await scrubTo(page, 'Home', 0, 'seeking back to seq 0');
    await assertEnabled(page, 'next-tab-away', 'at seq 0 (is there a focus_away marker after seq 0?)');
    await page.locator(tid('next-tab-away')).click();
    await waitForSeq(page, EXPECT.tab_away_seq, 'next tab-away');
    ok(`next-tab-away jumps from 0 to seq ${EXPECT.tab_away_seq}`);

    // Play at 32×: the position advances within 2 s.
    await page.locator(tid('speed')).selectOption('32');
    await page.locator(tid('skip-idle')).check();
    if (Number(await currentSeqText(page)) >= EXPECT.last_seq) await scrubTo(page, 'Home', 0, 'seeking to seq 0 to play');
    const before = Number(await currentSeqText(page));
    await assertEnabled(page, 'play', `at seq ${before}`);
    await page.locator(tid('play')).click();
    try {
      await page.waitForFunction(
        (b) => Number(document.querySelector('[data-testid="current-seq"]').textContent) > b,
        before,
        { timeout: 2000, polling: 50 },
      );
    } catch {
      fail(`playing at 32× did not move past seq ${before} within 2 s (${await bannerText(page)})`);
    }
    await page.waitForTimeout(300);
    // Pause, unless playback already reached the end (then the pause button is disabled).
    const pauseButton = page.locator(tid('pause'));
    if (await pauseButton.isEnabled()) await pauseButton.click({ timeout: 2000 }).catch(() => {});
    await page.waitForFunction(() => document.querySelector('[data-testid="replay"]').dataset.state === 'idle', null, { timeout: STEP_TIMEOUT });
    const pausedAt = Number(await currentSeqText(page));
    await page.waitForTimeout(300);
    expectEqual(Number(await currentSeqText(page)), pausedAt, 'seq after pausing (playback must stop)');
    await assertNoBanner(page, 'after playing');
    // What playback built locally must match the server's state at that position.
    const server = await apiGet(`/replay/state?seq=${pausedAt}`);
    const shownFile = await activeTab(page);
    if (shownFile !== null) {
      expectEqual(await fileContent(page), server.files[shownFile], `played-back content of ${shownFile} at seq ${pausedAt}`);
    }
    expectEqual(JSON.stringify((await tabPaths(page)).sort()), JSON.stringify(Object.keys(server.files).sort()), `played-back file set at seq ${pausedAt}`);
    ok(`play at 32× advanced from seq ${before} to ${pausedAt}; the played-back files match the server's state there`);

    // Diff between seq 0 and the end shows an added file.
    await scrubTo(page, 'Home', 0, 'seeking to seq 0 for mark A');
    await page.locator(tid('mark-a')).click();
    await scrubTo(page, 'End', EXPECT.last_seq, 'seeking to the end for mark B');
    await page.locator(tid('mark-b')).click();
    try {
      await page.waitForFunction(() => document.querySelector('[data-testid="diff"]').dataset.state !== 'loading'
        && document.querySelector('[data-testid="diff"]').dataset.state !== 'empty', null, { timeout: STEP_TIMEOUT });
    } catch {
      fail(`the diff panel did not finish loading (${await bannerText(page)})`);
    }
    const diffState = await page.locator(tid('diff')).getAttribute('data-state');
    expectEqual(diffState, 'ready', `diff panel state (${await bannerText(page)})`);
    const added = await page.locator(`${tid('diff-file')}[data-status="added"]`).evaluateAll((fs) => fs.map((f) => f.dataset.path));
    if (!added.length) fail('the diff from seq 0 to the last seq shows no added file');
    const addedVisible = await page.locator(`${tid('diff-file')}[data-status="added"]`).first().isVisible();
    if (!addedVisible) fail('the added file in the diff panel is not visible');
    ok(`mark A at 0 and mark B at ${EXPECT.last_seq} show a diff with added ${added.join(', ')}`);

    if (pageErrors.length) fail(`the page threw: ${pageErrors.join(' | ')}`);
    ok('no uncaught errors in the page');

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'replay.png'), fullPage: true });
    console.log(`  screenshot: ${path.join(ARTIFACTS, 'replay.png')}`);
  } catch (e) {
    await mkdir(ARTIFACTS, { recursive: true }).catch(() => {});
    await page.screenshot({ path: path.join(ARTIFACTS, 'failure.png'), fullPage: true }).catch(() => {});
    if (pageErrors.length) console.error(`page errors: ${pageErrors.join(' | ')}`);
    throw e;
  } finally {
    await context.close();
  }
}

async function checkKeyPrompt(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  try {
    // No key anywhere: a prompt form; a wrong key: an error banner and the form again.
    await page.goto(PAGE_URL, { waitUntil: 'load' });
    await page.locator(tid('key-form')).waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    await page.locator(tid('key-input')).fill('clk_not_a_real_key');
    await page.locator(tid('key-submit')).click();
    await page.locator(tid('error-banner')).waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    await page.locator(tid('key-form')).waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    ok('without a key the page asks for one; a refused key shows an error banner');

    await page.locator(tid('key-input')).fill(API_KEY);
    await page.locator(tid('key-submit')).click();
    await waitForSeq(page, 0, 'loading with the key typed into the form');
    await assertNoBanner(page, 'after entering a valid key');
    // A reload keeps the key (sessionStorage).
    await page.reload({ waitUntil: 'load' });
    await waitForSeq(page, 0, 'reloading with the key in sessionStorage');
    ok('a key typed into the form loads the replay and survives a reload');
  } finally {
    await context.close();
  }
}

async function main() {
  readConfig();
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: EXECUTABLE,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (e) {
    fail(`could not launch ${EXECUTABLE} (scripts/browser.sh ensure_browser installs it): ${e.message}`);
  }
  try {
    await checkMainFlow(browser);
    await checkKeyPrompt(browser);
  } finally {
    await browser.close();
  }
  console.log(`replay.spec: ${passed} passed, 0 failed`);
}

main().catch((e) => {
  if (e instanceof CheckFailed) {
    console.error(`FAILED after ${passed} passed check(s): ${e.message}`);
  } else {
    console.error(`FAILED after ${passed} passed check(s) with an unexpected error:`, e);
  }
  process.exit(1);
});
