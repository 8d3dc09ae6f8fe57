// The chat example behind nginx with TLS, as docs/deployment.md sets it up:
// nginx runs the doc's own file (docs/deployment/nginx.conf, with the test's
// port, certificate and upstream on its (*) lines; see nginx.mjs), with a
// certificate made here for the doc's public name, chat.example.com, which
// every client of this test resolves to 127.0.0.1. partysocket connects over
// wss:// through it; the Origin check passes for the public host and refuses
// another; the keepalive's pings cross the proxy; the page is served.
//
//   node --test --test-force-exit interop/proxy/   (from the repository, or proxy/ from interop/)
//
// It skips, saying why, only when nginx is missing and cannot be installed.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import WS from "ws";
import { GoServer, Inbox, Sockets, nextEvent, repoRoot, unique, withTimeout } from "../lib/harness.mjs";
import { Nginx, findNginx, makeCertificate, publicHost, siteConfigPath } from "./nginx.mjs";

const nginxBinary = findNginx();
const skip = nginxBinary
  ? false
  : "nginx not found (NGINX, /usr/sbin/nginx, PATH) and could not be installed (apt-get install nginx needs root)";

let dir, tlsFiles, chat, proxy;

/** TLS options of every client here: trust the test's certificate, resolve the public name to 127.0.0.1. */
let clientTLS;
function toLoopback(hostname, options, callback) {
  if (hostname !== publicHost) return callback(new Error(`this test resolves only ${publicHost}, not ${hostname}`));
  if (options?.all) return callback(null, [{ address: "127.0.0.1", family: 4 }]);
  callback(null, "127.0.0.1", 4);
}

/** ws, with the test's TLS options: what partysocket is given as its WebSocket. */
class ProxiedWS extends WS {
  constructor(url, protocols, options) {
    super(url, protocols, { ...clientTLS, ...options });
  }
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(tmpdir(), "party-proxy-"));
  tlsFiles = makeCertificate(dir, publicHost);
  clientTLS = { ca: tlsFiles.pem, lookup: toLoopback };
  chat = await GoServer.start("./examples/chat");
  proxy = await startProxy("chat", chat);
});

after(async () => {
  await proxy?.stop();
  await chat?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** nginx in front of server (a GoServer), in a directory of its own; edit changes the doc's config. */
function startProxy(name, server, edit) {
  return Nginx.start({
    binary: nginxBinary,
    dir: path.join(dir, name),
    upstream: server.host,
    cert: tlsFiles.cert,
    key: tlsFiles.key,
    edit,
  });
}

/** host:port of a proxy, as a browser would write it (and send it in Host and Origin). */
const publicAddr = (p) => `${publicHost}:${p.port}`;

/** GET https://{public host}:{port}{path} with the test's TLS options. */
function get(p, urlPath) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = https.get({ host: publicHost, port: p.port, path: urlPath, agent: false, ...clientTLS }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
      });
      req.on("error", reject);
    }),
    5000,
    `GET ${urlPath} through nginx`,
  );
}

/**
 * A WebSocket handshake through the proxy, written by hand (as a browser
 * sends it, Origin included): resolves with the 101 and its accept key, or
 * with the refusal's status and body.
 */
function handshake(p, urlPath, origin) {
  const key = randomBytes(16).toString("base64");
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = https.request({
        host: publicHost,
        port: p.port,
        path: urlPath,
        agent: false,
        ...clientTLS,
        headers: {
          Connection: "Upgrade",
          Upgrade: "websocket",
          "Sec-WebSocket-Version": "13",
          "Sec-WebSocket-Key": key,
          Origin: origin,
        },
      });
      req.on("upgrade", (res, socket) => {
        socket.destroy();
        const want = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
        resolve({ status: res.statusCode, acceptOK: res.headers["sec-websocket-accept"] === want });
      });
      req.on("response", (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      });
      req.on("error", reject);
      req.end();
    }),
    5000,
    `the handshake with Origin ${origin}`,
  );
}

test("docs/deployment.md shows docs/deployment/nginx.conf verbatim", { skip }, () => {
  const doc = readFileSync(path.join(repoRoot, "docs", "deployment.md"), "utf8");
  const file = readFileSync(siteConfigPath, "utf8");
  const blocks = [...doc.matchAll(/^```nginx\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  assert.ok(
    blocks.includes(file),
    `no \`\`\`nginx block of docs/deployment.md equals ${siteConfigPath} (${blocks.length} nginx blocks): the doc must show the file the test runs`,
  );
});

test("GET / through nginx over https serves the chat page", { skip }, async () => {
  const page = await get(proxy, "/?room=lobby");
  assert.equal(page.status, 200);
  assert.match(page.headers["content-type"], /^text\/html/);
  assert.match(page.body, /<title>party chat<\/title>/);
  const script = await get(proxy, "/chat.js");
  assert.equal(script.status, 200);
  assert.match(script.headers["content-type"], /javascript/);
});

test("partysocket over wss:// through nginx: welcome, join, messages both ways, leave", { skip }, async (t) => {
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const room = unique("proxied");
  const server = { host: publicAddr(proxy) }; // partysocket picks wss:// for a public name

  const alice = sockets.party(server, { room, id: "alice", WebSocket: ProxiedWS });
  assert.equal(alice.roomUrl, `wss://${publicAddr(proxy)}/parties/main/${room}`);
  assert.equal(await alice.inbox.next(), "Welcome, alice");

  const bob = sockets.party(server, { room, id: "bob", WebSocket: ProxiedWS });
  assert.equal(await bob.inbox.next(), "Welcome, bob");
  assert.equal(await alice.inbox.next(), "Heads up! bob joined the party!");

  bob.send("hello through nginx");
  assert.equal(await alice.inbox.next(), "hello through nginx");
  alice.send("and back");
  assert.equal(await bob.inbox.next(), "and back");

  bob.close();
  assert.equal(await alice.inbox.next(), "So sad! bob left the party!");
  assert.deepEqual(bob.inbox.messages, ["Welcome, bob", "and back"], "everything bob received");
});

test("Origin through nginx: the public host's page may connect, another site gets 403 naming the OriginPatterns entry", { skip }, async (t) => {
  const room = unique("origin");
  // A page at https://chat.example.com:<port>/ sends that Origin, and nginx
  // passes the Host it was sent: the same host, so no OriginPatterns needed.
  const same = await handshake(proxy, `/party/${room}?_pk=page`, `https://${publicAddr(proxy)}`);
  assert.equal(same.status, 101, `same-origin handshake: ${same.body ?? ""}`);
  assert.ok(same.acceptOK, "Sec-WebSocket-Accept matches the key");

  const evil = await handshake(proxy, `/party/${room}?_pk=evil`, "https://evil.test");
  assert.equal(evil.status, 403);
  assert.match(evil.body, /add "evil\.test" to Host\.OriginPatterns/);
  assert.ok(evil.body.includes(`may not connect to "${publicAddr(proxy)}"`), `the 403 names the Host nginx passed: ${evil.body}`);
});

test("without its Host line, the doc's config gets every browser a 403 (the mistake the doc warns about)", { skip }, async (t) => {
  const hostLine = /^ *proxy_set_header Host \$http_host;\n/m;
  const broken = await startProxy("no-host", chat, (site) => {
    assert.match(site, hostLine, "the doc's config sets Host");
    return site.replace(hostLine, "");
  });
  t.after(() => broken.stop());

  const page = await handshake(broken, `/party/${unique("nohost")}?_pk=page`, `https://${publicAddr(broken)}`);
  assert.equal(page.status, 403, "nginx's default Host is the upstream's name, which is not the page's");
  assert.ok(page.body.includes('may not connect to "party_chat"'), page.body);
  assert.ok(page.body.includes(`add "${publicAddr(broken)}" to Host.OriginPatterns`), page.body);
});

test("keepalive through nginx: the server's pings reach an idle client, which stays connected", { skip }, async (t) => {
  // examples/chat has no flag for Host.PingInterval; interop/server has -ping
  // and a party that says hello with the URI it saw, behind the same config.
  const server = await GoServer.start("./interop/server", ["-ping", "100ms"]);
  t.after(() => server.stop());
  const p = await startProxy("keepalive", server);
  t.after(() => p.stop());

  const room = unique("idle");
  const ws = new ProxiedWS(`wss://${publicAddr(p)}/parties/control/${room}?_pk=idle`);
  t.after(() => ws.close());
  ws.inbox = new Inbox(ws, "idle");
  let pings = 0;
  const threePings = new Promise((resolve) => ws.on("ping", () => ++pings === 3 && resolve()));

  const hello = JSON.parse(await ws.inbox.next());
  // The Go server saw the public Host (c.URI() says http: TLS ended at nginx).
  assert.equal(hello.uri, `http://${publicAddr(p)}/parties/control/${room}?_pk=idle`);

  // The client sends nothing but ws's automatic pongs meanwhile.
  await withTimeout(threePings, 5000, `three keepalive pings through nginx (got ${pings})`);
  assert.equal(ws.readyState, WS.OPEN);
  ws.send("still here");
  assert.equal(await ws.inbox.next(), "still here");
});

test("graceful restart behind nginx: the 1012 crosses the proxy and partysocket reconnects to the next process", { skip }, async (t) => {
  const server = await GoServer.start("./examples/chat");
  t.after(() => server.stop());
  const p = await startProxy("restart", server);
  t.after(() => p.stop());
  const sockets = new Sockets();
  t.after(() => sockets.closeAll());
  const room = unique("restart");

  const alice = sockets.party({ host: publicAddr(p) }, { room, id: "alice", WebSocket: ProxiedWS });
  assert.equal(await alice.inbox.next(), "Welcome, alice");
  const closed = nextEvent(alice, "close", 10_000, "alice's close on the server's SIGTERM");
  await server.restart(); // SIGTERM: srv.Shutdown, then h.Shutdown; then the same binary on the same port
  const ev = await closed;
  assert.equal(ev.code, 1012, `close code through nginx (reason ${JSON.stringify(ev.reason)})`);
  // Until the new process listens, nginx answers 502 and partysocket retries.
  assert.equal(await alice.inbox.next(10_000), "Welcome, alice", "alice's welcome from the new process");
  const bob = sockets.party({ host: publicAddr(p) }, { room, id: "bob", WebSocket: ProxiedWS });
  assert.equal(await bob.inbox.next(), "Welcome, bob");
  assert.equal(await alice.inbox.next(), "Heads up! bob joined the party!");
});
