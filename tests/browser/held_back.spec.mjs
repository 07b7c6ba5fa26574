// Headless-browser check that the replay and report pages say when data of the session is held
// back (records quarantined, docs/decisions/0017-poison-records.md), in words, by keyboard
// reach, and without the held records' content.
//
//   BASE_URL=http://127.0.0.1:PORT SESSION_ID=<uuid> API_KEY=clk_... \
//   EXPECT_JSON='{"records":11,"parts":3,"absent":"yyyy"}' node tests/browser/held_back.spec.mjs
//
// Exits 0 when every check passes, 1 naming the failed check otherwise. Screenshots go to
// ARTIFACTS_DIR (default tests/browser/artifacts).

import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = Number(process.env.STEP_TIMEOUT_MS || 20000);
const ARTIFACTS = process.env.ARTIFACTS_DIR || path.join(here, 'artifacts');
let passed = 0;

class CheckFailed extends Error {}
function fail(message) { throw new CheckFailed(message); }
function ok(what) { passed += 1; console.log(`ok ${passed} - ${what}`); }
function env(name) { const v = process.env[name]; if (!v) fail(`environment variable ${name} is required`); return v; }

const tid = (id) => `[data-testid="${id}"]`;

async function checkBox(page, expect, where) {
  const box = page.locator(tid('held-back'));
  try {
    await box.waitFor({ state: 'visible', timeout: TIMEOUT });
  } catch {
    const banner = await page.locator(tid('error-message')).textContent().catch(() => '');
    fail(`no held-back notice on the ${where}; banner: ${banner}`);
  }
  if ((await box.getAttribute('role')) !== 'status') fail(`the ${where}'s notice is not announced (role=status)`);
  const notice = (await page.locator(tid('held-back-notice')).textContent() || '').trim();
  if (!notice.startsWith(`${expect.records} acknowledged records`)) fail(`the ${where} says "${notice}"`);
  if (!notice.includes('Nothing is lost')) fail(`the ${where}'s notice does not say nothing is lost: "${notice}"`);
  const parts = await box.locator('li').count();
  if (parts !== expect.parts) fail(`the ${where} lists ${parts} parts, expected ${expect.parts}`);
  const body = await page.locator('body').innerText();
  if (body.includes(expect.absent)) fail(`the ${where} shows the held record's content`);
  ok(`the ${where} says ${expect.records} records are held back, by part, without their content`);
}

async function main() {
  const base = env('BASE_URL').replace(/\/+$/, '');
  const session = env('SESSION_ID');
  const key = env('API_KEY');
  const expect = JSON.parse(env('EXPECT_JSON'));
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: EXECUTABLE, args: ['--headless', '--no-sandbox', '--disable-gpu'] })
    .catch((e) => fail(`could not launch ${EXECUTABLE}: ${e.message}`));
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${base}/review/sessions/${session}#key=${encodeURIComponent(key)}`);
    await checkBox(page, expect, 'replay page');
    await page.screenshot({ path: path.join(ARTIFACTS, 'held-back-replay.png'), fullPage: true });
    console.log(`  screenshot: ${path.join(ARTIFACTS, 'held-back-replay.png')}`);
    await page.goto(`${base}/review/sessions/${session}/report#key=${encodeURIComponent(key)}`);
    await checkBox(page, expect, 'report page');
    await page.screenshot({ path: path.join(ARTIFACTS, 'held-back-report.png'), fullPage: true });
    console.log(`  screenshot: ${path.join(ARTIFACTS, 'held-back-report.png')}`);
    await context.close();
  } finally {
    await browser.close();
  }
  console.log(`held_back.spec: ${passed} passed, 0 failed`);
}

main().catch((e) => {
  console.error(`FAILED after ${passed} passed check(s): ${e instanceof CheckFailed ? e.message : e.stack}`);
  process.exit(1);
});
