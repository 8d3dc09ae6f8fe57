// What partysocket sends and receives besides the guide's text: binary
// frames, PartySocket.fetch, the query option against the before-upgrade
// hook, and tags.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import PartySocket from "partysocket";
import { Sockets, nextEvent, startInteropServer, unique } from "../lib/harness.mjs";

let server;
before(async () => {
  server = await startInteropServer();
});
after(() => server?.stop());

test("binary round-trips byte-exact (ArrayBuffer and Uint8Array) and non-ASCII text stays text", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const ps = sockets.party(server, { room: unique("bin"), party: "control", id: "bytes" });
  ps.binaryType = "arraybuffer";
  await ps.inbox.nextJSON();

  const all = Uint8Array.from({ length: 256 }, (_, i) => i); // every byte value, invalid UTF-8 included
  ps.send(all.buffer);
  const got1 = await ps.inbox.next();
  assert.ok(got1 instanceof ArrayBuffer, `expected an ArrayBuffer back, got ${typeof got1}`);
  assert.deepEqual(new Uint8Array(got1), all);

  // A view into a larger buffer: only the view's bytes travel.
  const backing = Uint8Array.from({ length: 100 }, (_, i) => 255 - i);
  const view = backing.subarray(10, 42);
  ps.send(view);
  const got2 = await ps.inbox.next();
  assert.ok(got2 instanceof ArrayBuffer);
  assert.deepEqual(new Uint8Array(got2), Uint8Array.from(view));

  const large = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7919) & 0xff);
  ps.send(large);
  assert.deepEqual(new Uint8Array(await ps.inbox.next()), large);

  ps.send(new Uint8Array(0));
  const empty = await ps.inbox.next();
  assert.ok(empty instanceof ArrayBuffer && empty.byteLength === 0, "an empty binary message stays binary");

  const text = "héllo wörld — 日本語 👋🏽 \u0000 end";
  ps.send(text);
  const got3 = await ps.inbox.next();
  assert.equal(typeof got3, "string", "text must come back as text");
  assert.equal(got3, text);

  // Through the guide's server too: binary is broadcast as the same bytes.
  const room = unique("bin-chat");
  const a = sockets.party(server, { room, id: "a" });
  a.binaryType = "arraybuffer";
  await a.inbox.next();
  const b = sockets.party(server, { room, id: "b" });
  await b.inbox.next();
  await a.inbox.next(); // b's join
  b.send(all);
  assert.deepEqual(new Uint8Array(await a.inbox.next()), all);
});

test("PartySocket.fetch reaches the room's OnRequest (GET and POST with a body)", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const room = `${unique("feed")} café`; // spaces and non-ASCII: percent-encoded on the wire
  const opts = { party: "feed", room };

  // A socket in the same room sees what is POSTed.
  const ps = sockets.party(server, { ...opts, id: "reader" });
  await nextEvent(ps, "open");

  const body = "first post ✓";
  const post = await PartySocket.fetch({ ...opts, host: sockets.nextHost(server) }, { method: "POST", body });
  assert.equal(post.status, 201);
  assert.equal(await post.text(), `stored ${Buffer.byteLength(body)} bytes as item 1`);
  assert.equal(await ps.inbox.next(), body, "the POSTed body, broadcast to the room's socket");

  const get = await PartySocket.fetch({ ...opts, host: sockets.nextHost(server) });
  assert.equal(get.status, 200);
  assert.equal(get.headers.get("content-type"), "application/json");
  const json = await get.json();
  assert.deepEqual(json.items, [body]);
  assert.equal(json.party, "feed");
  assert.equal(json.room, encodeURIComponent(room), "room id is the segment as sent, percent-encoded");
  assert.equal(json.connections, 1);

  const put = await PartySocket.fetch({ ...opts, host: sockets.nextHost(server) }, { method: "PUT", body: "x" });
  assert.equal(put.status, 405);

  // The guide's server has no OnRequest: a clear 426, not a hang or a 500.
  const chat = await PartySocket.fetch({ host: sockets.nextHost(server), room });
  assert.equal(chat.status, 426);
  assert.match(await chat.text(), /OnRequest/);
});

test("query, including an async function returning a token, reaches the before-upgrade hook, which refuses a bad token", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const room = unique("secure");

  // A static query.
  const alice = sockets.party(server, { room, party: "secure", id: "a", query: { token: "t0k3n-alice" } });
  assert.equal(await alice.inbox.next(), "welcome alice");

  // An async function, evaluated again on every connect: the first token is
  // refused by the hook, the refreshed one is let in.
  const asked = [];
  const bob = sockets.party(server, {
    room,
    party: "secure",
    id: "b",
    query: async () => {
      await new Promise((r) => setTimeout(r, 5));
      const token = asked.length === 0 ? "expired" : "t0k3n-bob";
      asked.push(token);
      return { token };
    },
  });
  const refused = nextEvent(bob, "error");
  assert.match((await refused).message, /401/, "the hook's refusal (401) reaches the client");
  assert.equal(await bob.inbox.next(), "welcome bob");
  assert.deepEqual(asked, ["expired", "t0k3n-bob"]);

  // A bad token is refused before the upgrade: no open, and OnConnect never runs.
  const mallory = sockets.party(server, { room, party: "secure", id: "m", query: { token: "forged" } });
  let opened = false;
  mallory.addEventListener("open", () => (opened = true));
  const err = await nextEvent(mallory, "error");
  assert.match(err.message, /401/);
  // Let it retry a few times; every attempt is refused.
  for (let i = 0; i < 3; i++) assert.match((await nextEvent(mallory, "error")).message, /401/);
  mallory.close();
  assert.equal(opened, false, "a forged token must never open");
  assert.deepEqual(mallory.inbox.messages, []);
});

test("protocols option: a subprotocol the Host accepts is chosen; an unknown one alone fails the handshake", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const room = unique("proto");

  const ps = sockets.party(server, { room, party: "control", id: "p", protocols: ["other.v9", "party.v1"] });
  await nextEvent(ps, "open");
  assert.equal(ps.protocol, "party.v1");
  assert.equal((await ps.inbox.nextJSON()).id, "p");

  // A client insists on a subprotocol the server does not speak: WebSocket
  // clients (ws, browsers) then fail the handshake, and partysocket retries.
  const stranger = sockets.party(server, { room, party: "control", id: "s", protocols: ["other.v9"] });
  const err = await nextEvent(stranger, "error");
  assert.match(err.message, /subprotocol/i);
  stranger.close();
});

test("tags: ConnectionTags are seen by the client, and a tag-only broadcast reaches only that tag", async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const room = unique("tags");
  const join = async (id, role) => {
    const ps = sockets.party(server, { room, party: "tags", id, query: { role } });
    assert.deepEqual(JSON.parse((await ps.inbox.next()).replace(/^tags /, "")), [id, `role:${role}`], `${id}'s tags`);
    return ps;
  };
  const admin1 = await join("admin1", "admin");
  const admin2 = await join("admin2", "admin");
  const guest = await join("guest", "guest");

  guest.send("admins:the secret");
  assert.equal(await admin1.inbox.next(), "to admins from guest: the secret");
  assert.equal(await admin2.inbox.next(), "to admins from guest: the secret");

  admin1.send("all:fence");
  assert.equal(await guest.inbox.next(), "to all from admin1: fence", "the guest's next message (not the admins' one)");
  assert.equal(await admin1.inbox.next(), "to all from admin1: fence");
  assert.equal(await admin2.inbox.next(), "to all from admin1: fence");
});

