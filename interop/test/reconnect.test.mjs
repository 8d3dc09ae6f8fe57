// Closes chosen by the server, a whole-server restart, and the read limit, as
// partysocket sees them: it must reconnect on its own with the same id and
// deliver what was queued meanwhile, and show the server's close code as is.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Sockets, nextEvent, startInteropServer, unique, withTimeout } from "../lib/harness.mjs";

let server;
before(async () => {
  server = await startInteropServer();
});
after(() => server?.stop());

test("reconnection after the server closes the connection: same id, queued messages arrive", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const room = unique("kick");

  const ps = sockets.party(server, { room, party: "control", id: "phoenix" });
  const first = await ps.inbox.nextJSON();
  assert.deepEqual([first.type, first.id, first.connects], ["hello", "phoenix", 1]);

  const closed = nextEvent(ps, "close");
  ps.send("close 4000 kicked");
  const ev = await closed;
  assert.equal(ev.code, 4000);
  assert.equal(ev.reason, "kicked");
  // Disconnected now: these are queued by partysocket, sent on reconnect.
  assert.equal(ps.send("queued while away 1"), false, "send() while closed should queue");
  assert.equal(ps.send("queued while away 2"), false, "send() while closed should queue");

  const again = await ps.inbox.nextJSON();
  assert.deepEqual([again.type, again.id, again.connects], ["hello", "phoenix", 2], "the server saw the same id again");
  assert.equal(again.boot, first.boot);
  assert.equal(await ps.inbox.next(), "queued while away 1");
  assert.equal(await ps.inbox.next(), "queued while away 2");
});

test("reconnection after the whole server restarts on the same port: same id, queued messages arrive", async (t) => {
  const sockets = new Sockets();
  const own = await startInteropServer(); // this test restarts it
  let restarted = Promise.resolve();
  t.after(async () => {
    sockets.closeAll();
    await restarted.catch(() => {}); // never leave a restart half done
    await own.stop();
  });
  const room = unique("restart");

  const ps = sockets.party(own, { room, party: "control", id: "survivor" });
  const first = await ps.inbox.nextJSON();
  assert.deepEqual([first.type, first.id], ["hello", "survivor"]);

  const closed = nextEvent(ps, "close", 10_000);
  restarted = own.restart(); // SIGTERM, wait for exit, start again on the same port
  const ev = await closed;
  assert.equal(ev.code, 1012, `graceful shutdown should close with 1012 (service restart), got ${ev.code} ${ev.reason}`);
  assert.equal(ps.send("sent while the server was down"), false);
  await restarted;
  ps.send("sent after it came back");

  const again = await ps.inbox.nextJSON(15_000);
  assert.equal(again.type, "hello");
  assert.equal(again.id, "survivor", "partysocket kept its id across the restart");
  assert.notEqual(again.boot, first.boot, "a new server process answered");
  assert.equal(await ps.inbox.next(), "sent while the server was down");
  assert.equal(await ps.inbox.next(), "sent after it came back");
});

test("close code chosen by the server (4001 with a reason) reaches partysocket's close event unchanged", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const reason = "unauthorized: token expired – bitte neu anmelden"; // non-ASCII too

  const seen = [];
  const ps = sockets.party(server, {
    room: unique("deny"),
    party: "control",
    id: "denied",
    // The app's way to stop retrying on a terminal close.
    shouldReconnectOnClose: (e) => {
      seen.push([e.code, e.reason]);
      return e.code !== 4001;
    },
  });
  await ps.inbox.nextJSON();
  const closed = nextEvent(ps, "close");
  ps.send(`close 4001 ${reason}`);
  const ev = await closed;
  assert.equal(ev.code, 4001);
  assert.equal(ev.reason, reason);
  assert.deepEqual(seen, [[4001, reason]], "shouldReconnectOnClose saw the code and reason");
  assert.equal(ps.shouldReconnect, false, "partysocket stopped retrying");
});

test("a message over the read limit closes with 1009, and partysocket reconnects", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());

  // The /limited Host has ReadLimit 1 KiB.
  const ps = sockets.party(server, { room: unique("big"), prefix: "limited", party: "main", id: "bigmouth" });
  const first = await ps.inbox.nextJSON();
  assert.equal(first.connects, 1);
  ps.send("x".repeat(1024));
  assert.equal(await ps.inbox.next(), "x".repeat(1024), "a message at the limit is accepted");

  const closed = nextEvent(ps, "close");
  ps.send("x".repeat(1025));
  const ev = await closed;
  assert.equal(ev.code, 1009, `expected 1009 (message too big), got ${ev.code} ${ev.reason}`);

  const again = await ps.inbox.nextJSON();
  assert.deepEqual([again.id, again.connects], ["bigmouth", 2], "reconnected with the same id");
  ps.send("small again");
  assert.equal(await ps.inbox.next(), "small again");
});

test("a sender over Host.RateLimit is slowed, not closed: every message comes back, in order, at the limit's pace", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());

  // The /paced Host allows 50 messages/s with a burst of 5: the first 6
  // messages are read at once, then one every 20 ms.
  const ps = sockets.party(server, { room: unique("paced"), prefix: "paced", party: "main", id: "eager" });
  await ps.inbox.nextJSON();
  let closed = null;
  ps.addEventListener("close", (e) => (closed = e));
  const n = 30;
  for (let i = 0; i < n; i++) ps.send(`m${i}`);
  const arrivals = [];
  for (let i = 0; i < n; i++) {
    assert.equal(await ps.inbox.next(), `m${i}`, "echoes arrive in order");
    arrivals.push(performance.now());
  }
  const span = arrivals[n - 1] - arrivals[0];
  const floor = ((n - 6) * 1000) / 50;
  assert.ok(span >= floor * 0.9, `${n} messages came back over ${span.toFixed(0)} ms, faster than the limit allows (${floor} ms)`);
  assert.equal(closed, null, `partysocket was closed: ${closed?.code} ${closed?.reason}`);
});

test("duplicate id: the newer partysocket replaces the older with 4409; the room sees it leave then join; shouldReconnectOnClose keeps the older away", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const room = unique("twin");
  // Without this, two live partysockets sharing an id take turns replacing
  // each other: partysocket reconnects after every close.
  const stayReplaced = { shouldReconnectOnClose: (e) => e.code !== 4409 };

  const obs = sockets.party(server, { room, id: "obs" });
  assert.equal(await obs.inbox.next(), "Welcome, obs");
  const older = sockets.party(server, { room, id: "twin", ...stayReplaced });
  assert.equal(await older.inbox.next(), "Welcome, twin");
  assert.equal(await obs.inbox.next(), "Heads up! twin joined the party!");

  const replaced = nextEvent(older, "close");
  const newer = sockets.party(server, { room, id: "twin", ...stayReplaced });
  const ev = await replaced;
  assert.equal(ev.code, 4409);
  assert.match(ev.reason, /replaced/);
  assert.equal(older.shouldReconnect, false);

  // As if the older one had closed before the newer arrived: the others see
  // it leave, then join; the newcomer gets its welcome, not its own leave.
  assert.equal(await obs.inbox.next(), "So sad! twin left the party!");
  assert.equal(await obs.inbox.next(), "Heads up! twin joined the party!");
  assert.equal(await newer.inbox.next(), "Welcome, twin", "the newcomer's first message");
  obs.send("fence");
  assert.equal(await newer.inbox.next(), "fence");
  newer.send("the newer one works");
  assert.equal(await obs.inbox.next(), "the newer one works");
});

test("keepalive: a client that never answers a ping is dropped within 2×PingInterval+PingTimeout; partysocket, which answers, stays open", async (t) => {
  const interval = 40; // ms, the server's -ping
  const timeout = 100; // ms, its -ping-timeout
  // The documented bound, plus a margin for a loaded machine: the default
  // PingTimeout (10 s) would be far outside it.
  const margin = 1000;
  const bound = 2 * interval + timeout + margin;
  const sockets = new Sockets();
  const pinging = await startInteropServer(["-ping", `${interval}ms`, "-ping-timeout", `${timeout}ms`]);
  t.after(async () => {
    sockets.closeAll();
    await pinging.stop();
  });
  const room = unique("idle");

  // partysocket sends nothing; its ws answers the pings, as a browser does.
  const ps = sockets.party(pinging, { room, party: "control", id: "answers" });
  await ps.inbox.nextJSON();
  const psClosed = new Promise((_, reject) =>
    ps.addEventListener("close", (e) => reject(new Error(`partysocket, which answers pings, was closed: ${e.code} ${e.reason}`))),
  );

  // A ws client that never answers a ping.
  const silent = sockets.raw(`ws://${sockets.nextHost(pinging)}/parties/control/${room}?_pk=silent`, { autoPong: false });
  let unanswered = 0;
  silent.on("ping", () => unanswered++);
  const dropped = new Promise((resolve) => silent.once("close", (code) => resolve(code)));
  await nextEvent(silent, "open");
  const opened = performance.now();
  const code = await withTimeout(dropped, bound, `the silent client to be dropped (${bound} ms: 2×${interval} + ${timeout} + ${margin} margin)`);
  const took = performance.now() - opened;
  t.diagnostic(`the silent client was dropped ${took.toFixed(0)} ms after it opened, having ignored ${unanswered} pings`);
  assert.ok(unanswered >= 1, "the server pinged the silent client before dropping it");
  assert.equal(code, 1006, "dropped without a close handshake");

  // partysocket was idle all along, longer than the silent client: it stays
  // open while a third client counts 10 more pings (10×40 ms, over twice the
  // bound without its margin).
  const counter = sockets.raw(`ws://${sockets.nextHost(pinging)}/parties/control/${room}?_pk=counter`);
  let pings = 0;
  const counted = new Promise((resolve, reject) => {
    counter.on("ping", () => ++pings >= 10 && resolve());
    counter.once("close", (code) => reject(new Error(`the counting client, which answers pings too, was closed (${code}) after ${pings} pings`)));
  });
  await withTimeout(Promise.race([counted, psClosed]), 10_000, "10 pings to the counting client");
  ps.send("still connected");
  assert.equal(await ps.inbox.next(), "still connected", "partysocket's first connection still works, no reconnect between");
});
