// The PartyKit guide's broadcast server, driven by the real partysocket client:
// end to end, through every URL form, across rooms, and with 200 clients.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Sockets, nextEvent, startInteropServer, unique } from "../lib/harness.mjs";

let server;
before(async () => {
  server = await startInteropServer();
});
after(() => server?.stop());

test("guide end to end: welcome with partysocket's id, join to others only, broadcast except sender, leave", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const room = unique("guide");

  const alice = sockets.party(server, { room, id: "alice" });
  assert.equal(await alice.inbox.next(), "Welcome, alice");

  const bob = sockets.party(server, { room, id: "bob" });
  assert.equal(await bob.inbox.next(), "Welcome, bob");
  assert.equal(await alice.inbox.next(), "Heads up! bob joined the party!");

  alice.send("Hello everyone");
  assert.equal(await bob.inbox.next(), "Hello everyone");
  bob.send("Hi alice");
  // Had the join notice reached bob, or alice's own message come back to
  // her, it would come before these.
  assert.equal(await alice.inbox.next(), "Hi alice", "alice's next message");

  bob.close();
  assert.equal(await alice.inbox.next(), "So sad! bob left the party!");
  assert.deepEqual(bob.inbox.messages, ["Welcome, bob", "Hello everyone"], "everything bob received");
});

test("URL forms: partysocket default /parties/main, prefix, party, path and basePath options, raw ws on /party/{room}", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const room = unique("forms");

  // partysocket's default URL and the guide's /party/{room} reach one room.
  const ps = sockets.party(server, { room, id: "ps" });
  assert.equal(ps.roomUrl, `ws://${ps.serverHost}/parties/main/${room}`);
  assert.equal(await ps.inbox.next(), "Welcome, ps");
  const raw = sockets.raw(`ws://${sockets.nextHost(server)}/party/${room}?_pk=raw`);
  assert.equal(await raw.inbox.next(), "Welcome, raw");
  assert.equal(await ps.inbox.next(), "Heads up! raw joined the party!");
  raw.send("from raw ws");
  assert.equal(await ps.inbox.next(), "from raw ws");
  ps.send("from partysocket");
  assert.equal(await raw.inbox.next(), "from partysocket");

  // The path option adds segments after the room: same room.
  const deep = sockets.party(server, { room, id: "deep", path: "some/sub/path" });
  assert.equal(deep.roomUrl, `ws://${deep.serverHost}/parties/main/${room}/some/sub/path`);
  assert.equal(await deep.inbox.next(), "Welcome, deep");
  assert.equal(await ps.inbox.next(), "Heads up! deep joined the party!");
  assert.equal(await raw.inbox.next(), "Heads up! deep joined the party!");

  // basePath replaces the whole path: a Go 1.22 mux pattern, /rooms/{room}.
  const based = sockets.party(server, { basePath: `rooms/${room}`, id: "based" });
  assert.equal(based.roomUrl, `ws://${based.serverHost}/rooms/${room}`);
  assert.equal(await based.inbox.next(), "Welcome, based");
  based.send("from basePath");
  assert.equal(await ps.inbox.until((m) => m === "from basePath"), "from basePath");

  // The party option reaches a named party of the same Host.
  const ctl = sockets.party(server, { room, party: "control", id: "ctl" });
  const hello = await ctl.inbox.nextJSON();
  assert.equal(hello.type, "hello");
  assert.equal(hello.id, "ctl");
  assert.match(hello.uri, new RegExp(`/parties/control/${room}\\?_pk=ctl$`));

  // The prefix option reaches a Host whose Prefix matches.
  const c1 = sockets.party(server, { room, prefix: "custom", id: "c1" });
  assert.equal(c1.roomUrl, `ws://${c1.serverHost}/custom/main/${room}`);
  assert.equal(await c1.inbox.next(), "Welcome, c1");
  const c2 = sockets.party(server, { room, prefix: "custom", id: "c2" });
  assert.equal(await c2.inbox.next(), "Welcome, c2");
  assert.equal(await c1.inbox.next(), "Heads up! c2 joined the party!");
  c2.send("via custom prefix");
  assert.equal(await c1.inbox.next(), "via custom prefix");
});

test("rooms are isolated: a message in one room never reaches another", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const roomA = unique("iso");
  const roomB = roomA.toUpperCase(); // ids are case-sensitive: another room

  // Each joins after the previous one's welcome, so who sees which join notice is known.
  const join = async (room, id) => {
    const ps = sockets.party(server, { room, id });
    assert.equal(await ps.inbox.next(), `Welcome, ${id}`);
    return ps;
  };
  const a1 = await join(roomA, "a1");
  const a2 = await join(roomA, "a2");
  const b1 = await join(roomB, "b1");
  const b2 = await join(roomB, "b2");
  assert.equal(await a1.inbox.next(), "Heads up! a2 joined the party!");
  assert.equal(await b1.inbox.next(), "Heads up! b2 joined the party!");

  a1.send("only for room A");
  assert.equal(await a2.inbox.next(), "only for room A");
  b2.send("fence in room B");
  assert.equal(await b1.inbox.next(), "fence in room B", "b1's next message (room A's must not come first)");
  assert.ok(!b2.inbox.messages.includes("only for room A"), `b2 got room A's message: ${b2.inbox.messages}`);
});

test("200 partysocket clients in one room each receive one broadcast exactly once", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const room = unique("crowd");
  const n = 200;

  const clients = [];
  for (let i = 0; i < n; i++) {
    clients.push(sockets.party(server, { room, id: `c${String(i).padStart(3, "0")}` }));
  }
  await Promise.all(clients.map((c) => c.inbox.until((m) => m === `Welcome, ${c.id}`, 30_000, "its welcome")));

  const sender = sockets.party(server, { room, id: "announcer" });
  await nextEvent(sender, "open", 10_000);
  // Everyone has seen the announcer join before it says anything.
  await Promise.all(
    clients.map((c) => c.inbox.until((m) => m === "Heads up! announcer joined the party!", 30_000, "the announcer's join")),
  );
  sender.send("the broadcast");
  sender.send("the fence");
  await Promise.all(clients.map((c) => c.inbox.until((m) => m === "the fence", 30_000, "the fence")));

  for (const c of clients) {
    const got = c.inbox.messages.filter((m) => m === "the broadcast").length;
    assert.equal(got, 1, `${c.id} received the broadcast ${got} times`);
  }
  assert.ok(!sender.inbox.messages.includes("the broadcast"), "the sender received its own broadcast");
});
