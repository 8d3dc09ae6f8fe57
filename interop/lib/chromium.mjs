// Headless Debian Chromium for the browser tests, driven by playwright-core
// (which never downloads a browser): the launch flags, and a side-by-side
// screenshot of several pages for a person to look at.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Chromium's flags: no sandbox (containers), no GPU, no network of its own (updates, sync, QUIC). */
export const chromiumArgs = [
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
];

/**
 * Launches headless Chromium with a fresh profile and returns its context;
 * close() also removes the profile.
 */
export async function launchChromium({ viewport }) {
  const profile = mkdtempSync(path.join(tmpdir(), "party-chromium-")); // a fresh --user-data-dir
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: chromiumArgs,
    viewport,
  });
  browser.setDefaultTimeout(10_000);
  const close = browser.close.bind(browser);
  browser.close = async () => {
    try {
      await close();
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  };
  return browser;
}

/** Records page's console errors and uncaught exceptions in problems, prefixed with name. */
export function watchProblems(page, name, problems) {
  page.on("console", (m) => m.type() === "error" && problems.push(`${name}: console: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`${name}: ${e.message}`));
}

/**
 * Screenshots each [page, caption] of shots and saves them side by side,
 * captioned, as one PNG at file (its directory is made if needed).
 */
export async function saveSideBySide(browser, shots, file) {
  if (shots.length === 0) return;
  const panes = [];
  let width = 20;
  let height = 0;
  for (const [page, caption] of shots) {
    const png = await page.screenshot();
    const size = page.viewportSize();
    width += size.width + 22;
    height = Math.max(height, size.height);
    panes.push(
      `<figure><figcaption>${caption}</figcaption><img src="data:image/png;base64,${png.toString("base64")}"></figure>`,
    );
  }
  const sheet = await browser.newPage({ viewport: { width, height: height + 60 } });
  await sheet.setContent(`<!doctype html>
<style>body{margin:0;padding:10px;display:flex;gap:20px;background:#ddd;font:14px system-ui}
figure{margin:0}figcaption{padding:4px 0}img{display:block;border:1px solid #888;background:#fff}</style>
${panes.join("\n")}`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, await sheet.screenshot({ fullPage: true }));
  await sheet.close();
  console.log(`screenshot: ${file}`);
}
