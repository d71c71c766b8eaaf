// The browser half of tests/test_vscode.py: Debian's Chromium (headless, via puppeteer-core)
// opens the code-server workbench, clicks the Tab file in the Explorer, then carries out the
// UI requests the extension's self-test (clients/vscode/src/selfTest.ts) writes to DIR:
// ui-N.request.json {waitFor, press?, click?, timeoutMs} -> ui-N.reply.json {ok, text?, error?}.
// It stops when DIR/result.json appears (or after DEADLINE_S) and leaves workbench.png there.
//   node vscode_driver.mjs URL DIR PUPPETEER_PARENT CHROMIUM FILE DEADLINE_S
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [url, dir, puppeteerParent, chromium, file, deadlineS] = process.argv.slice(2);
const puppeteer = createRequire(path.join(puppeteerParent, 'driver.cjs'))('puppeteer-core');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...args) => console.log(`[driver ${new Date().toISOString()}]`, ...args);
const result = path.join(dir, 'result.json');
const deadline = Date.now() + Number(deadlineS) * 1000;

async function handle(page, request) {
  const element = await page.waitForSelector(request.waitFor, { timeout: request.timeoutMs });
  // Monaco splits ghost text into several elements (one per token): join them all.
  const text = await page.$$eval(request.waitFor, (all) => all.map((e) => e.textContent).join(''));
  if (request.press) await page.keyboard.press(request.press);
  if (request.click) {
    // The workbench redraws toolbars as it settles: click what is there now, again if it moved.
    for (let attempt = 1; ; attempt++) {
      try {
        await sleep(300);
        await ((await page.$(request.waitFor)) ?? element).click();
        break;
      } catch (error) {
        if (attempt >= 5 || !/detached|not clickable|no node/i.test(String(error))) throw error;
      }
    }
  }
  return { ok: true, text };
}

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
let code = 1;
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60000 });
  await page.waitForSelector('.monaco-workbench', { timeout: 90000 });
  log('workbench up');
  // A user's click on the file in the Explorer opens it (and activates nothing special:
  // the extension starts on startup).
  const row = await page.waitForSelector(
    `.explorer-folders-view .monaco-list-row[aria-label^="${file}"]`, { timeout: 60000 });
  await row.click();
  log(`clicked ${file}`);
  let n = 1;
  while (!fs.existsSync(result) && Date.now() < deadline) {
    const request = path.join(dir, `ui-${n}.request.json`);
    if (!fs.existsSync(request)) {
      await sleep(200);
      continue;
    }
    const wanted = JSON.parse(fs.readFileSync(request, 'utf8'));
    let reply;
    try {
      reply = await handle(page, wanted);
    } catch (error) {
      reply = { ok: false, error: String(error) };
      await page.screenshot({ path: path.join(dir, `ui-${n}.png`) });
    }
    log(`ui-${n}`, JSON.stringify(wanted), '->', JSON.stringify(reply));
    fs.writeFileSync(path.join(dir, `ui-${n}.reply.tmp`), JSON.stringify(reply));
    fs.renameSync(path.join(dir, `ui-${n}.reply.tmp`), path.join(dir, `ui-${n}.reply.json`));
    n += 1;
  }
  await sleep(500);
  await page.screenshot({ path: path.join(dir, 'workbench.png') });
  code = fs.existsSync(result) ? 0 : 1;
  if (code) log('no result.json before the deadline');
} finally {
  await browser.close();
}
process.exit(code);
