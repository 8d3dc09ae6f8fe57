// The chat example in a real browser: Debian's Chromium, headless, driven by
// playwright-core (which never downloads a browser). Two pages in one room
// talk; a page in another room sees none of it. A screenshot of the pages side
// by side is saved to artifacts/chat-browser.png for a person to look at.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import WS from "ws";
import { chromium } from "playwright-core";
import { GoServer, repoRoot, unique, nextEvent } from "../lib/harness.mjs";

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const artifacts = path.join(repoRoot, "artifacts");
const screenshot = path.join(artifacts, "chat-browser.png");

let server, browser, profile;
const problems = []; // console errors and uncaught exceptions of every page

before(async () => {
  server = await GoServer.start("./examples/chat");
  profile = mkdtempSync(path.join(tmpdir(), "party-chromium-")); // a fresh --user-data-dir
  browser = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
    ],
    viewport: { width: 460, height: 560 },
  });
  browser.setDefaultTimeout(10_000);
});

after(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await server?.stop();
});

/** Opens the chat page as name in room and waits until its socket is open. */
async function openChat(room, name) {
  const page = await browser.newPage();
  page.on("console", (m) => m.type() === "error" && problems.push(`${name}: console: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`${name}: ${e.message}`));
  await page.goto(`${server.httpURL}/?room=${encodeURIComponent(room)}&name=${name}`);
  await page.locator('#status[data-state="open"]').waitFor();
  return page;
}

/** The texts of the page's message list. */
const messages = (page) => page.locator("#messages li").allTextContents();

/** Waits until the page's message list equals want. */
async function expectMessages(page, want, what) {
  try {
    await page.waitForFunction(
      (want) => JSON.stringify([...document.querySelectorAll("#messages li")].map((li) => li.textContent)) === JSON.stringify(want),
      want,
      { timeout: 10_000 },
    );
  } catch {
    assert.deepEqual(await messages(page), want, what);
  }
}

test("chat in Chromium: two pages in one room talk, a page in another room sees nothing", async () => {
  const room = unique("browser");
  const other = `${room}-other`;

  const ann = await openChat(room, "ann");
  await expectMessages(ann, ["Welcome, ann"], "ann's page after joining");
  const bob = await openChat(room, "bob");
  await expectMessages(bob, ["Welcome, bob"], "bob's page after joining");
  await expectMessages(ann, ["Welcome, ann", "Heads up! bob joined the party!"], "ann's page after bob joined");
  const cy = await openChat(other, "cy");
  await expectMessages(cy, ["Welcome, cy"], "cy's page after joining");

  // Bob types and clicks Send; ann's page shows it, bob's shows it as his own.
  await bob.locator("#input").pressSequentially("Grüße from Bob — ¡hola!");
  await bob.locator("#send").click();
  await expectMessages(ann, ["Welcome, ann", "Heads up! bob joined the party!", "bob: Grüße from Bob — ¡hola!"], "ann's page");
  await expectMessages(bob, ["Welcome, bob", "bob: Grüße from Bob — ¡hola!"], "bob's page");
  assert.equal(await bob.locator("#messages li.mine").textContent(), "bob: Grüße from Bob — ¡hola!");
  assert.equal(await ann.locator("#messages li.mine").count(), 0, "bob's message is not ann's own");
  assert.equal(await bob.locator("#input").inputValue(), "", "the input is cleared after sending");

  // Ann answers with the Enter key.
  await ann.locator("#input").fill("Hi Bob!");
  await ann.locator("#input").press("Enter");
  await expectMessages(bob, ["Welcome, bob", "bob: Grüße from Bob — ¡hola!", "ann: Hi Bob!"], "bob's page after ann's answer");

  // A fence in cy's room: had room one's messages reached cy, they would show first.
  const fencer = new WS(`${server.wsURL}/parties/main/${encodeURIComponent(other)}?_pk=dot`);
  await nextEvent(fencer, "open");
  fencer.send("dot: fence");
  await expectMessages(cy, ["Welcome, cy", "Heads up! dot joined the party!", "dot: fence"], "cy's page (another room)");
  fencer.close();
  await expectMessages(cy, ["Welcome, cy", "Heads up! dot joined the party!", "dot: fence", "So sad! dot left the party!"], "cy's page");

  await saveSideBySide([
    [ann, `ann — room ${room}`],
    [bob, `bob — room ${room}`],
    [cy, `cy — room ${other}`],
  ]);
  assert.deepEqual(problems, [], "console errors or uncaught exceptions in the pages");
});

/** Screenshots each page and saves them side by side, captioned, as one PNG. */
async function saveSideBySide(shots) {
  const panes = [];
  for (const [page, caption] of shots) {
    const png = await page.screenshot();
    panes.push(
      `<figure><figcaption>${caption}</figcaption><img src="data:image/png;base64,${png.toString("base64")}"></figure>`,
    );
  }
  const sheet = await browser.newPage({ viewport: { width: 460 * shots.length + 20 * (shots.length + 1), height: 620 } });
  await sheet.setContent(`<!doctype html>
<style>body{margin:0;padding:10px;display:flex;gap:20px;background:#ddd;font:14px system-ui}
figure{margin:0}figcaption{padding:4px 0}img{display:block;border:1px solid #888;background:#fff}</style>
${panes.join("\n")}`);
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(screenshot, await sheet.screenshot({ fullPage: true }));
  console.log(`screenshot: ${screenshot}`);
}
