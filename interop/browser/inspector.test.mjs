// The live inspector (Host.Inspector, mounted by examples/chat -inspector at
// /debug/party/) in headless Chromium: two WebSocket clients join a room and
// the page shows it with 2 connections; a click on it lists the connections;
// once they leave, the page shows the room empty or gone. Screenshots:
// artifacts/inspector-room.png and artifacts/inspector-connections.png.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import WS from "ws";
import { GoServer, repoRoot, unique, nextEvent } from "../lib/harness.mjs";
import { launchChromium, watchProblems } from "../lib/chromium.mjs";

const artifacts = path.join(repoRoot, "artifacts");
const deadline = 10_000; // for every wait on the page (it polls every second)

let server, browser;
const problems = []; // console errors and uncaught exceptions of the page

before(async () => {
  server = await GoServer.start("./examples/chat", ["-inspector"]);
  browser = await launchChromium({ viewport: { width: 1180, height: 620 } });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Saves a screenshot of page as artifacts/name. */
async function screenshot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  const file = path.join(artifacts, name);
  writeFileSync(file, await page.screenshot({ fullPage: true }));
  console.log(`screenshot: ${file}`);
}

/** The selector of a cell (connections, rate...) of room's row in party main; unique() names need no escaping. */
const cell = (room, column) => `#parties tr[data-party="main"][data-room="${room}"] td.${column}`;

/** Waits until the page's row for room shows one of want connections (null: no row). */
async function expectRoom(page, room, want, what) {
  const shown = (selector) => document.querySelector(selector)?.textContent ?? null;
  try {
    await page.waitForFunction(
      ([selector, want]) => want.includes(document.querySelector(selector)?.textContent ?? null),
      [cell(room, "connections"), want],
      { timeout: deadline },
    );
  } catch {
    const got = await page.evaluate(shown, cell(room, "connections"));
    assert.fail(`${what}: the page shows ${got ?? "no row"} for the room's connections, want ${want.map((w) => w ?? "no row").join(" or ")}`);
  }
}

test("inspector in Chromium: a room appears with its connections, lists them, and empties", async () => {
  const room = unique("inspected");
  const page = await browser.newPage();
  watchProblems(page, "inspector", problems);
  await page.goto(`${server.httpURL}/debug/party/`);
  await page.locator('#status[data-state="live"]').waitFor({ timeout: deadline });

  const clients = ["ann", "bob"].map((id) => new WS(`${server.wsURL}/parties/main/${room}?_pk=${id}`));
  clients.push(new WS(`${server.wsURL}/parties/main/${room}-other?_pk=cy`)); // another room, another row
  let chatter;
  try {
    await Promise.all(clients.map((ws) => nextEvent(ws, "open")));
    chatter = setInterval(() => clients[0].send("ann: hi"), 100); // a few messages per second to show
    await expectRoom(page, room, ["2"], "after two clients joined");
    await expectRoom(page, `${room}-other`, ["1"], "the other room");
    await page.waitForFunction((selector) => Number(document.querySelector(selector)?.textContent) > 0, cell(room, "rate"), {
      timeout: deadline,
    });
    await screenshot(page, "inspector-room.png");

    await page.locator(`#parties tr[data-room="${room}"]`).click();
    for (const id of ["ann", "bob"]) {
      const row = page.locator(`#connections tr[data-connection="${id}"]`);
      await row.waitFor({ timeout: deadline });
      assert.match(await row.textContent(), /127\.0\.0\.1:\d+/, `${id}'s row shows its remote address`);
    }
    assert.equal(await page.locator("#room-name").textContent(), `main/${room}`);
    assert.equal(await page.locator("#connections tbody tr").count(), 2, "the room's connections, and only them");
    await screenshot(page, "inspector-connections.png");
  } finally {
    clearInterval(chatter);
    for (const ws of clients) ws.close();
  }
  await expectRoom(page, room, ["0", null], "after both clients left");
  await page.locator('#room-note', { hasText: /^(0 connections|This room is no longer in memory)\.$/ }).waitFor({ timeout: deadline });
  assert.deepEqual(problems, [], "console errors or uncaught exceptions in the page");
  await page.close();
});
