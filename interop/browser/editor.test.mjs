// The collaborative editor example (examples/editor) in headless Chromium:
// two pages on one room type into CodeMirror, each sees the other's text and
// cursor, both converge; after a restart of the server with the same -data
// directory, a fresh page sees the document and the old pages reconnect.
// The pages side by side are saved to artifacts/editor-browser.png.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { GoServer, repoRoot, unique } from "../lib/harness.mjs";
import { launchChromium, saveSideBySide, watchProblems } from "../lib/chromium.mjs";

const screenshot = path.join(repoRoot, "artifacts", "editor-browser.png");
const deadline = 10_000; // for every wait on what another page or the server does

let server, browser, data;
const problems = []; // console errors and uncaught exceptions of every page

before(async () => {
  data = mkdtempSync(path.join(tmpdir(), "party-editor-data-"));
  server = await GoServer.start("./examples/editor", ["-data", data]);
  browser = await launchChromium({ viewport: { width: 520, height: 540 } });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (data) rmSync(data, { recursive: true, force: true });
});

/** Opens the editor on room as name and waits until its document is synced. */
async function openEditor(room, name) {
  const page = await browser.newPage();
  watchProblems(page, name, problems);
  // The page needs nothing but the app: no CDN, no web fonts.
  page.on("request", (r) => {
    if (!r.url().startsWith(`${server.httpURL}/`) && !r.url().startsWith("data:")) problems.push(`${name}: fetched ${r.url()}`);
  });
  page.on("websocket", (ws) => {
    if (!ws.url().startsWith(`${server.wsURL}/parties/main/`)) problems.push(`${name}: WebSocket to ${ws.url()}`);
  });
  await page.goto(`${server.httpURL}/?room=${encodeURIComponent(room)}&name=${encodeURIComponent(name)}`);
  await page.locator('#status[data-state="synced"]').waitFor({ timeout: deadline });
  return page;
}

/** What the page's editor shows (CodeMirror's document). */
const shown = (page) => page.evaluate(() => window.editor.view.state.doc.toString());

/** Waits until the page's editor shows text containing each of parts. */
async function expectText(page, parts, what) {
  try {
    await page.waitForFunction(
      (parts) => parts.every((p) => window.editor.view.state.doc.toString().includes(p)),
      parts,
      { timeout: deadline },
    );
  } catch {
    assert.fail(`${what}: the editor shows ${JSON.stringify(await shown(page))}, want it to contain ${JSON.stringify(parts)}`);
  }
}

/** Types text at the start or end of the page's editor, key by key. */
async function typeAt(page, where, text) {
  await page.locator(".cm-content").click();
  await page.keyboard.press(where === "start" ? "Control+Home" : "Control+End");
  await page.keyboard.type(text, { delay: 5 });
}

/** The Y.Text, the editor's document and the visible lines of a page. */
async function views(page) {
  return page.evaluate(() => ({
    ytext: window.editor.text.toString(),
    editor: window.editor.view.state.doc.toString(),
    // The lines' text without the others' carets (widgets holding their
    // names) and CodeMirror's zero-width widget buffers.
    lines: [...document.querySelectorAll(".cm-content .cm-line")]
      .map((line) => {
        const copy = line.cloneNode(true);
        for (const caret of copy.querySelectorAll(".cm-ySelectionCaret")) caret.remove();
        return copy.textContent.replaceAll("\u2060", "");
      })
      .join("\n"),
  }));
}

test("editor in Chromium: two pages edit one document, which survives a restart", async () => {
  const room = unique("editor");
  const shots = []; // [page, caption], saved side by side at the end, pass or fail
  try {
    const ann = await openEditor(room, "ann");
    shots.push([ann, `ann — room ${room}`]);
    const bob = await openEditor(room, "bob");
    shots.push([bob, `bob — room ${room}`]);
    for (const page of [ann, bob]) await page.locator('#people[data-count="2"]').waitFor({ timeout: deadline });

    // Ann types; bob's editor shows it. Bob answers below; ann's shows it.
    const hello = "Hello from Ann — grüße! ";
    await typeAt(ann, "start", hello);
    await expectText(bob, [hello], "bob's page after ann typed");
    const answer = "\nBob was here.";
    await typeAt(bob, "end", answer);
    await expectText(ann, [hello + answer], "ann's page after bob typed");

    // Both at once, at both ends: the server merges, both pages converge.
    await Promise.all([typeAt(ann, "start", "1. "), typeAt(bob, "end", " (2)")]);
    const want = `1. ${hello}${answer} (2)`;
    for (const [page, name] of [[ann, "ann"], [bob, "bob"]]) {
      await expectText(page, [want], `${name}'s page after typing at once`);
      const v = await views(page);
      assert.deepEqual(v, { ytext: want, editor: want, lines: want }, `${name}'s Y.Text, editor and visible lines`);
    }

    // Awareness: each page shows the other's caret with its name.
    await ann.locator(".cm-ySelectionInfo", { hasText: "bob" }).waitFor({ timeout: deadline });
    await bob.locator(".cm-ySelectionInfo", { hasText: "ann" }).waitFor({ timeout: deadline });
    assert.deepEqual(problems, [], "console errors or uncaught exceptions before the restart");

    // A restart with the same -data: a fresh page gets the document from disk,
    // the old pages reconnect, and what one of them types reaches the others.
    await server.restart();
    const cy = await openEditor(room, "cy");
    shots.push([cy, `cy — same room, after a restart`]);
    await expectText(cy, [want], "cy's page after the restart");
    await ann.locator('#status[data-state="synced"]').waitFor({ timeout: deadline });
    await typeAt(ann, "end", "\nAnn, after the restart.");
    const final = `${want}\nAnn, after the restart.`;
    for (const [page, name] of [[ann, "ann"], [bob, "bob"], [cy, "cy"]]) {
      await expectText(page, [final], `${name}'s page after ann typed past the restart`);
      assert.deepEqual(await views(page), { ytext: final, editor: final, lines: final }, `${name}'s page`);
    }
    await cy.locator('#people[data-count="3"]').waitFor({ timeout: deadline });

    // While the server was down, Chromium logged the provider's failed dials.
    const refused = /WebSocket connection to '[^']*' failed/;
    assert.deepEqual(problems.filter((p) => !refused.test(p)), [], "console errors or uncaught exceptions");
  } finally {
    await saveSideBySide(browser, shots, screenshot).catch((err) => console.log(`no screenshot: ${err.message}`));
  }
});
