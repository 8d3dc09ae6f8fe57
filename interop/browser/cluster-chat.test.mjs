// The cluster's chat (cluster/examples/chat: the guide's chat on three nodes
// over an embedded NATS server, serving examples/chat's page) in headless
// Chromium: tabs on different nodes chat in one room, as a user sees it in
// each tab's message list; a closed tab's leave reaches the others; SIGINT
// stops the command cleanly (exit 0 within 15 s) with two tabs open. The
// three tabs side by side are saved to artifacts/cluster-chat-browser.png.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { buildGo, repoRoot, unique, withTimeout } from "../lib/harness.mjs";
import { launchChromium, saveSideBySide, watchProblems } from "../lib/chromium.mjs";

const screenshot = path.join(repoRoot, "artifacts", "cluster-chat-browser.png");
const deadline = 10_000; // for every wait on what another tab or the cluster does
const nodes = 3;

let chat, browser;
const problems = []; // console errors and uncaught exceptions of every page

/**
 * The command run as documented, with no flags but -ports 0,0,0 (free
 * ports): its output, and each node's URL from the lines it prints
 * ("node1: http://127.0.0.1:PORT/?room=lobby").
 */
class ClusterChat {
  constructor(binary) {
    this.log = "";
    this.proc = spawn(binary, ["-ports", Array(nodes).fill(0).join(",")], { stdio: ["ignore", "pipe", "pipe"] });
    this.exited = new Promise((resolve) => this.proc.once("exit", (code, signal) => resolve({ code, signal })));
    process.once("exit", () => this.proc.kill("SIGKILL")); // if a failed test leaves it running
    const onData = (chunk) => (this.log += chunk);
    this.proc.stdout.setEncoding("utf8").on("data", onData);
    this.proc.stderr.setEncoding("utf8").on("data", onData);
  }

  /** Resolves with the URLs of the nodes (http://HOST:PORT, node1 first) once the command printed them all. */
  urls() {
    return withTimeout(
      new Promise((resolve, reject) => {
        const look = () => {
          const found = [...this.log.matchAll(/^node(\d+): (http:\/\/[^\s/]+)\/\?room=lobby$/gm)];
          if (found.length >= nodes) resolve(found.sort((a, b) => a[1] - b[1]).map((m) => m[2]));
        };
        this.proc.stdout.on("data", look);
        this.proc.once("exit", (code) => reject(new Error(`cluster/examples/chat exited with ${code}:\n${this.log}`)));
        look();
      }),
      30_000,
      `cluster/examples/chat to print its ${nodes} nodes' URLs`,
    ).catch((err) => {
      throw new Error(`${err.message}; it printed:\n${this.log}`);
    });
  }

  /** Whether the process still runs. */
  get running() {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }
}

before(async () => {
  chat = new ClusterChat(buildGo("./examples/chat", { cwd: "cluster" }));
  chat.nodeURLs = await chat.urls();
  browser = await launchChromium({ viewport: { width: 460, height: 560 } });
});

after(async () => {
  await browser?.close();
  if (chat?.running) {
    chat.proc.kill("SIGKILL");
    await chat.exited;
  }
});

/** Opens the chat page of the node at url as name in room, in a new tab, and waits until its socket is open. */
async function openChat(url, room, name) {
  const page = await browser.newPage();
  watchProblems(page, name, problems);
  await page.goto(`${url}/?room=${encodeURIComponent(room)}&name=${encodeURIComponent(name)}`);
  try {
    await page.locator('#status[data-state="open"]').waitFor({ timeout: deadline });
  } catch {
    const status = await page.locator("#status").textContent();
    assert.fail(
      `${name}'s tab on ${url}: not connected after ${deadline} ms (status "${status}"); the command printed:\n${chat.log}`,
    );
  }
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
      { timeout: deadline },
    );
  } catch {
    assert.deepEqual(await messages(page), want, `${what}, after ${deadline} ms; the command printed:\n${chat.log}`);
  }
}

/** Types text into the page's input and sends it with the Send button. */
async function say(page, text) {
  await page.locator("#input").pressSequentially(text);
  await page.locator("#send").click();
}

test("cluster chat in Chromium: tabs on three nodes chat in one room; SIGINT stops the command cleanly", async () => {
  const [n1, n2, n3] = chat.nodeURLs;
  assert.equal(new Set(chat.nodeURLs).size, nodes, `three different node URLs: ${chat.nodeURLs}`);
  const room = unique("cluster-chat");
  const shots = []; // [page, caption], saved side by side once all three tabs chatted, or on a failure
  const tabs = []; // [page, name] of the tabs still open at the SIGINT
  try {
    // ann on node 1, bob on node 3: each is welcomed; ann sees bob join.
    const ann = await openChat(n1, room, "ann");
    shots.push([ann, `ann — node1 ${n1}`]);
    await expectMessages(ann, ["Welcome, ann"], "ann's tab (node1) after joining");
    const bob = await openChat(n3, room, "bob");
    shots.push([bob, `bob — node3 ${n3}`]);
    await expectMessages(bob, ["Welcome, bob"], "bob's tab (node3) after joining");
    await expectMessages(ann, ["Welcome, ann", "Heads up! bob joined the party!"], "ann's tab after bob joined on another node");

    // bob types; ann's tab shows it; bob's shows it once, as his own (the server does not echo it).
    const hello = "Grüße from node3 — ¡hola!";
    await say(bob, hello);
    const annSees = ["Welcome, ann", "Heads up! bob joined the party!", `bob: ${hello}`];
    await expectMessages(ann, annSees, "ann's tab after bob's message");
    // ann answers with the Enter key: once it reached bob, an echo of bob's own message would have come before it.
    await ann.locator("#input").fill("Hi Bob, from node1!");
    await ann.locator("#input").press("Enter");
    const bobSees = ["Welcome, bob", `bob: ${hello}`, "ann: Hi Bob, from node1!"];
    await expectMessages(bob, bobSees, "bob's tab after ann's answer (his own message once, no echo)");
    annSees.push("ann: Hi Bob, from node1!");
    await expectMessages(ann, annSees, "ann's tab after her answer (no echo)");
    const mine = (page) => page.locator("#messages li.mine").allTextContents();
    assert.deepEqual(await mine(bob), [`bob: ${hello}`], "bob's own messages in his tab");
    assert.deepEqual(await mine(ann), ["ann: Hi Bob, from node1!"], "ann's own messages in her tab");

    // carol on node 2, the third node: welcomed; both others see her join, and her message.
    const carol = await openChat(n2, room, "carol");
    shots.push([carol, `carol — node2 ${n2}`]);
    await expectMessages(carol, ["Welcome, carol"], "carol's tab (node2) after joining");
    annSees.push("Heads up! carol joined the party!");
    bobSees.push("Heads up! carol joined the party!");
    await expectMessages(ann, annSees, "ann's tab after carol joined");
    await expectMessages(bob, bobSees, "bob's tab after carol joined");
    await say(carol, "hey all, node2 here");
    annSees.push("carol: hey all, node2 here");
    bobSees.push("carol: hey all, node2 here");
    await expectMessages(ann, annSees, "ann's tab after carol's message");
    await expectMessages(bob, bobSees, "bob's tab after carol's message");

    // The three tabs side by side, then bob closes his: ann and carol are told.
    await saveSideBySide(browser, shots, screenshot);
    shots.length = 0; // saved
    await bob.close();
    annSees.push("So sad! bob left the party!");
    await expectMessages(ann, annSees, "ann's tab after bob closed his");
    const carolSees = ["Welcome, carol", "carol: hey all, node2 here", "So sad! bob left the party!"];
    await expectMessages(carol, carolSees, "carol's tab after bob closed his");
    assert.deepEqual(problems, [], "console errors or uncaught exceptions in the tabs");
    tabs.push([ann, "ann"], [carol, "carol"]);
  } finally {
    // On a failure: the tabs as they were.
    await saveSideBySide(browser, shots, screenshot).catch((err) => console.log(`no screenshot: ${err.message}`));
  }

  // SIGINT with ann's and carol's tabs open: the command hands over, closes and exits 0 within 15 s.
  const t0 = Date.now();
  chat.proc.kill("SIGINT");
  const exit = await withTimeout(chat.exited, 15_000, "cluster/examples/chat to exit on SIGINT").catch((err) => {
    throw new Error(`${err.message}; it printed:\n${chat.log}`);
  });
  assert.deepEqual(exit, { code: 0, signal: null }, `cluster/examples/chat's exit on SIGINT; it printed:\n${chat.log}`);
  console.log(`cluster/examples/chat exited 0 ${Date.now() - t0} ms after SIGINT`);
  // What the open tabs show then: disconnected (and retrying).
  for (const [page, name] of tabs) {
    await page.locator('#status[data-state="closed"]').waitFor({ timeout: deadline }).catch(async () => {
      const status = await page.locator("#status").textContent();
      assert.fail(`${name}'s tab after the command exited: status "${status}", want disconnected`);
    });
  }
});
