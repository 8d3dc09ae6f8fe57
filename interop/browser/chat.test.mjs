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
  const shots = []; // [page, caption], saved side by side at the end, pass or fail
  try {
    const ann = await openChat(room, "ann");
    shots.push([ann, `ann — room ${room}`]);
    await expectMessages(ann, ["Welcome, ann"], "ann's page after joining");
    const bob = await openChat(room, "bob");
    shots.push([bob, `bob — room ${room}`]);
    await expectMessages(bob, ["Welcome, bob"], "bob's page after joining");
    await expectMessages(ann, ["Welcome, ann", "Heads up! bob joined the party!"], "ann's page after bob joined");
    const cy = await openChat(other, "cy");
    shots.push([cy, `cy — room ${other}`]);
    await expectMessages(cy, ["Welcome, cy"], "cy's page after joining");

    // Bob types and clicks Send; ann's page shows it, bob's shows it as his own.
    const hello = "Grüße from Bob — ¡hola!";
    await bob.locator("#input").pressSequentially(hello);
    await bob.locator("#send").click();
    await expectMessages(ann, ["Welcome, ann", "Heads up! bob joined the party!", `bob: ${hello}`], "ann's page");
    await expectMessages(bob, ["Welcome, bob", `bob: ${hello}`], "bob's page");
    assert.equal(await bob.locator("#messages li.mine").textContent(), `bob: ${hello}`);
    assert.equal(await ann.locator("#messages li.mine").count(), 0, "bob's message is not ann's own");
    assert.equal(await bob.locator("#input").inputValue(), "", "the input is cleared after sending");

    // Ann answers with the Enter key.
    await ann.locator("#input").fill("Hi Bob!");
    await ann.locator("#input").press("Enter");
    await expectMessages(bob, ["Welcome, bob", `bob: ${hello}`, "ann: Hi Bob!"], "bob's page after ann's answer");

    // A fence in cy's room: had room one's messages reached cy, they would show first.
    const fencer = new WS(`${server.wsURL}/parties/main/${encodeURIComponent(other)}?_pk=dot`);
    await nextEvent(fencer, "open");
    fencer.send("dot: fence");
    await expectMessages(cy, ["Welcome, cy", "Heads up! dot joined the party!", "dot: fence"], "cy's page (another room)");
    fencer.close();
    await expectMessages(
      cy,
      ["Welcome, cy", "Heads up! dot joined the party!", "dot: fence", "So sad! dot left the party!"],
      "cy's page",
    );
    assert.deepEqual(problems, [], "console errors or uncaught exceptions in the pages");
  } finally {
    await saveSideBySide(shots).catch((err) => console.log(`no screenshot: ${err.message}`));
  }
});

test("chat in Chromium: a second tab with the same name replaces the first, which stops retrying", async () => {
  const room = unique("browser-twin");
  const first = await openChat(room, "eve");
  const second = await openChat(room, "eve");
  await first.locator('#status[data-state="closed"]', { hasText: "eve joined from another tab" }).waitFor();
  await expectMessages(second, ["Welcome, eve"], "the second tab");
  assert.equal(await second.locator("#status").getAttribute("data-state"), "open");
  await first.close();
  await second.close();
});

/** Screenshots each page and saves them side by side, captioned, as one PNG. */
async function saveSideBySide(shots) {
  if (shots.length === 0) return;
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
