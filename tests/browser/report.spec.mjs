// Headless-browser check of the candidate report page (/review/sessions/{id}/report).
//
//   BASE_URL=http://127.0.0.1:PORT SESSION_ID=<uuid> API_KEY=clk_... \
//   EXPECT_JSON='{"content_hash":"…","candidate":"…","aggregate":"75.0 / 100","tier":"…","finding_links":N}' \
//   node tests/browser/report.spec.mjs
//
// Exits 0 when every check passes, 1 naming the failed check otherwise.

import { chromium } from 'playwright-core';

const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = Number(process.env.STEP_TIMEOUT_MS || 20000);
let passed = 0;

class CheckFailed extends Error {}
function fail(message) { throw new CheckFailed(message); }
function ok(what) { passed += 1; console.log(`ok ${passed} - ${what}`); }
function env(name) { const v = process.env[name]; if (!v) fail(`environment variable ${name} is required`); return v; }

const tid = (id) => `[data-testid="${id}"]`;

async function ready(page, what) {
  try {
    await page.waitForSelector(`${tid('report')}[data-state="ready"]`, { timeout: TIMEOUT });
  } catch {
    const banner = await page.locator(tid('error-message')).textContent().catch(() => '');
    fail(`the report did not load (${what}); banner: ${banner}`);
  }
}

async function textOf(page, id) {
  return (await page.locator(tid(id)).textContent() || '').trim();
}

async function main() {
  const base = env('BASE_URL').replace(/\/+$/, '');
  const session = env('SESSION_ID');
  const key = env('API_KEY');
  const expect = JSON.parse(env('EXPECT_JSON'));
  const browser = await chromium.launch({ executablePath: EXECUTABLE, args: ['--headless', '--no-sandbox', '--disable-gpu'] })
    .catch((e) => fail(`could not launch ${EXECUTABLE}: ${e.message}`));
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${base}/review/sessions/${session}/report#key=${encodeURIComponent(key)}`);
    await ready(page, 'with the key in the fragment');
    ok('the report loads with the key from the URL fragment');
    if (page.url().includes(key)) fail('the API key is still in the address bar');
    if (requests.some((u) => u.includes(key))) fail('the API key was sent in a URL');
    ok('the key leaves the address bar and never travels in a URL');
    const hash = await textOf(page, 'content-hash');
    if (hash !== expect.content_hash) fail(`content hash ${hash}, expected ${expect.content_hash}`);
    ok('the page shows the report version hash the API served');
    const candidate = await textOf(page, 'candidate');
    if (candidate !== expect.candidate) fail(`candidate ${candidate}, expected ${expect.candidate}`);
    const aggregate = await textOf(page, 'aggregate');
    if (aggregate !== expect.aggregate) fail(`aggregate ${aggregate}, expected ${expect.aggregate}`);
    ok('candidate and aggregate score are shown');
    const automated = await textOf(page, 'automated');
    if (!automated || !/not graded|\/ 100/.test(automated)) fail(`automated checks show ${JSON.stringify(automated)}`);
    ok(`automated checks: ${automated}`);
    const tier = await textOf(page, 'tier');
    if (tier !== expect.tier) fail(`tier ${tier}, expected ${expect.tier}`);
    const links = await page.locator(tid('finding-link')).count();
    if (links !== expect.finding_links) fail(`${links} finding links, expected ${expect.finding_links}`);
    if (links > 0) {
      const href = await page.locator(tid('finding-link')).first().getAttribute('href');
      if (!href.startsWith(`/review/sessions/${session}?seq=`)) fail(`finding link ${href} does not open the replay`);
    }
    ok('the integrity tier and links into the replay at each finding are shown');
    const rows = await page.locator(`${tid('scores')} tbody tr`).count();
    if (rows !== expect.criteria) fail(`${rows} rubric rows, expected ${expect.criteria}`);
    ok('one rubric row per criterion');
    // A served version by its hash: same content (the key is in sessionStorage now).
    await page.goto(`${base}/review/sessions/${session}/report#version=${expect.content_hash}`);
    await ready(page, 'by version');
    if ((await textOf(page, 'content-hash')) !== expect.content_hash) fail('the version view shows another hash');
    ok('a served version is shown again by its hash');
    await context.close();
    // Without a key: the form.
    const fresh = await browser.newContext();
    const p2 = await fresh.newPage();
    await p2.goto(`${base}/review/sessions/${session}/report`);
    await p2.waitForSelector(`${tid('key-form')}:not([hidden])`, { timeout: TIMEOUT });
    await p2.fill(tid('key-input'), key);
    await p2.click(tid('key-submit'));
    await ready(p2, 'with the key typed into the form');
    ok('without a key the page asks for one and then loads');
    await fresh.close();
  } finally {
    await browser.close();
  }
  console.log(`report.spec: ${passed} passed, 0 failed`);
}

main().catch((e) => {
  console.error(`FAILED after ${passed} passed check(s): ${e instanceof CheckFailed ? e.message : e.stack}`);
  process.exit(1);
});
