// Screenshots of every screen of the candidate page against look-server.mjs (for LOOKS only):
//   node web/take/dev/look-server.mjs --face & node web/take/dev/screenshots.mjs [OUT_DIR]
// Writes NAME-1280.png and NAME-800.png (1280×800 and 800×600) to OUT_DIR
// (default tests/browser/artifacts/take-look/), and logs the page's console errors.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const require = createRequire(path.join(repo, 'tests/browser/package.json'));
const { chromium } = require('playwright-core');
const out = path.resolve(process.argv[2] ?? path.join(repo, 'tests/browser/artifacts/take-look'));
mkdirSync(out, { recursive: true });
const BASE = 'http://127.0.0.1:8766';
const URL_ = `${BASE}/take/5e55a000-0000-4000-8000-000000000002#token=cst_devdevdevdev`;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium' });
for (const [w, hgt] of [[1280, 800], [800, 600]]) {
  await fetch(`${BASE}/__dev/status?to=invited`, { method: 'POST' });
  const ctx = await browser.newContext({ viewport: { width: w, height: hgt } });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.log(`[${w}] console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => console.log(`[${w}] page error: ${e.message}`));
  const shot = async (name) => { await page.waitForTimeout(300); await page.screenshot({ path: path.join(out, `${name}-${w}.png`) }); console.log(`${name}-${w}.png`); };
  await page.goto(URL_);
  await page.waitForSelector('[data-screen="welcome"]');
  await shot('1-welcome');
  await page.getByRole('button', { name: /monitoring notice/ }).click();
  await page.waitForSelector('[data-screen="notice"]');
  await shot('2-notice');
  await page.getByRole('button', { name: /I consent/ }).click();
  await shot('2b-notice-error');
  await page.getByTestId('scope-keystroke_dynamics').check();
  await page.getByTestId('ack').check();
  await page.getByTestId('consent').click();
  await page.waitForSelector('[data-screen="start"]');
  await shot('3-start');
  await page.getByTestId('start').click();
  await page.waitForSelector('[data-screen="workspace"]');
  await page.locator('.cm-content').click();
  await page.keyboard.type('// hello from the look script\n', { delay: 5 });
  await shot('4-workspace');
  await page.getByTestId('new-file').click();
  await page.getByTestId('file-name').fill('src/../x.ts');
  await page.getByTestId('file-ok').click();
  await shot('5-new-file-error');
  await page.keyboard.press('Escape');
  await ctx.setOffline(true);
  await page.keyboard.type('x');
  await page.waitForTimeout(2500);
  await shot('6-offline');
  await ctx.setOffline(false);
  await fetch(`${BASE}/__dev/extra?minutes=15`, { method: 'POST' });
  await page.getByTestId('submit').click();
  await shot('7-submit-dialog');
  await page.getByTestId('submit-confirm').click();
  await page.waitForSelector('[data-screen="confirmation"]', { timeout: 30000 });
  await shot('8-confirmation');
  await ctx.close();
}
await browser.close();
