// Test harness: builds and runs Go programs of this repository, and wraps
// sockets so tests can wait for what they expect with bounded waits and clear
// failure messages.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import PartySocket from "partysocket";
import WS from "ws";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

const binDir = mkdtempSync(path.join(tmpdir(), "party-interop-"));
const running = new Set(); // server processes to kill if a failed test leaves one behind
process.on("exit", () => {
  for (const proc of running) proc.kill("SIGKILL");
  rmSync(binDir, { recursive: true, force: true });
});

/**
 * Builds a main package (e.g. "./interop/server") once per process and returns the binary's path. The build runs in
 * repoRoot, or in its subdirectory cwd: a package of another module of the repository (e.g. cwd "cluster" for
 * "./internal/cmd/interopcluster").
 */
export function buildGo(pkg, { cwd = "" } = {}) {
  const out = path.join(binDir, `${cwd}/${pkg}`.replaceAll(/[^A-Za-z0-9]+/g, "_"));
  if (!buildGo.done.has(out)) {
    execFileSync("go", ["build", "-o", out, pkg], { cwd: path.join(repoRoot, cwd), stdio: ["ignore", "inherit", "inherit"] });
    buildGo.done.add(out);
  }
  return out;
}
buildGo.done = new Set();

/**
 * A Go server process that prints a line containing "http://{addr}" once it
 * listens, or, with nodes > 1, one such line per node once all of them do,
 * given their addresses as one comma-separated -addr. start() runs it on
 * free ports unless addrs are known, so restart() can bring it back on the
 * same ports.
 */
export class GoServer {
  constructor(binary, args = [], { nodes = 1 } = {}) {
    this.binary = binary;
    this.args = args;
    this.nodes = nodes;
    this.proc = null;
    this.addrs = null; // host:port of each node, in node order
    this.log = "";
  }

  static async start(pkg, args = []) {
    const s = new GoServer(buildGo(pkg), args);
    await s.start();
    return s;
  }

  /** host:port (of the first node), as partysocket's host option wants it. */
  get host() {
    return this.addrs?.[0] ?? null;
  }

  /** host:port of every node: one for a single server. */
  get hosts() {
    return this.addrs ?? [];
  }

  get addr() {
    return this.host;
  }

  get httpURL() {
    return `http://${this.host}`;
  }

  get wsURL() {
    return `ws://${this.host}`;
  }

  async start() {
    const addr = (this.addrs ?? Array(this.nodes).fill("127.0.0.1:0")).join(",");
    const proc = spawn(this.binary, ["-addr", addr, ...this.args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    running.add(proc);
    this.exited = new Promise((resolve) =>
      proc.once("exit", (code, signal) => {
        running.delete(proc);
        resolve({ code, signal });
      }),
    );
    const onData = (chunk) => {
      this.log += chunk;
    };
    proc.stderr.setEncoding("utf8").on("data", onData);
    proc.stdout.setEncoding("utf8").on("data", onData);
    const what = this.nodes === 1 ? "its address" : `the addresses of its ${this.nodes} nodes`;
    const from = this.log.length; // (what an earlier run printed stays in the log, but is not this run's)
    this.addrs = await withTimeout(
      new Promise((resolve, reject) => {
        const look = () => {
          const found = [...this.log.slice(from).matchAll(/http:\/\/([^\s/]+)/g)].map((m) => m[1]);
          if (found.length >= this.nodes) resolve(found.slice(0, this.nodes));
        };
        proc.stdout.on("data", look);
        proc.stderr.on("data", look);
        proc.once("exit", (code) => reject(new Error(`${this.binary} exited with ${code}:\n${this.log}`)));
      }),
      30_000,
      `${this.binary} to print ${what}`,
    );
  }

  /** Stops the process with signal and waits for it to exit. */
  async stop(signal = "SIGTERM") {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill(signal);
    const { code } = await withTimeout(this.exited, 15_000, `${this.binary} to exit on ${signal}`);
    if (signal === "SIGTERM" && code !== 0) {
      throw new Error(`${this.binary} exited with ${code} on SIGTERM:\n${this.log}`);
    }
  }

  /** Stops the server (every node) and starts it again on the same ports. */
  async restart() {
    await this.stop();
    this.log = "";
    await this.start();
  }
}

/**
 * How many nodes serve the interop suite: PARTY_INTEROP_NODES, or 1. With 1,
 * the suite runs interop/server; with more, the cluster module's
 * interopcluster command, which serves the same app on that many nodes of a
 * cluster in one process.
 */
export const interopNodes = Number(process.env.PARTY_INTEROP_NODES || 1);
if (!Number.isInteger(interopNodes) || interopNodes < 1) {
  throw new Error(`PARTY_INTEROP_NODES=${process.env.PARTY_INTEROP_NODES}: expected a number of nodes, 1 or more`);
}

/**
 * Starts the interop suite's server (interop/server/app) with args: one
 * process of interop/server, or with PARTY_INTEROP_NODES=N a cluster of N
 * nodes (cluster/internal/cmd/interopcluster). Either way, server.hosts
 * lists its nodes' addresses, and restart() stops the whole process and
 * starts it again on the same ports.
 */
export async function startInteropServer(args = []) {
  if (interopNodes === 1) return GoServer.start("./interop/server", args);
  const binary = buildGo("./internal/cmd/interopcluster", { cwd: "cluster" });
  const s = new GoServer(binary, ["-nodes", String(interopNodes), ...args], { nodes: interopNodes });
  await s.start();
  return s;
}

/**
 * Starts the yjs tests' server (yjs/internal/cmd/yjsserver, party/internal/yjsapp) with args: one process of
 * yjsserver, or with PARTY_INTEROP_NODES=N the same app on N nodes of a cluster (interopcluster -app yjs), whose
 * -data is JetStream's store directory rather than a FileStore's. Either way, server.hosts lists its nodes'
 * addresses, and stop() then start() brings the server back on the same ports and the same -data.
 */
export async function startYjsServer(args = []) {
  if (interopNodes === 1) return GoServer.start("./yjs/internal/cmd/yjsserver", args);
  const binary = buildGo("./internal/cmd/interopcluster", { cwd: "cluster" });
  const s = new GoServer(binary, ["-app", "yjs", "-nodes", String(interopNodes), ...args], { nodes: interopNodes });
  await s.start();
  return s;
}

/**
 * Makes node 1 of an interopcluster leave the cluster while the others serve on (SIGUSR1): it stops accepting and
 * hands its rooms over (its clients, and the clients of its rooms on other nodes, get 1012). Resolves once it has
 * left, within 15 s.
 */
export async function firstNodeLeaves(server) {
  if (server.nodes < 2) throw new Error("firstNodeLeaves needs a cluster of 2 nodes or more");
  server.proc.kill("SIGUSR1");
  await withTimeout(
    new Promise((resolve, reject) => {
      const look = () => {
        if (/^node1 left$/m.test(server.log)) resolve();
        else if (server.proc.exitCode !== null) reject(new Error(`${server.binary} exited:\n${server.log}`));
        else setTimeout(look, 10);
      };
      look();
    }),
    15_000,
    `node1 to leave the cluster (${server.binary} printing "node1 left")`,
  );
}

/** Rejects with a message naming what was awaited if p does not settle within ms. */
export function withTimeout(p, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves with the next event of type on target (an EventTarget or a ws client), within ms. */
export function nextEvent(target, type, ms = 5000, what = `a "${type}" event`) {
  return withTimeout(
    new Promise((resolve) => target.addEventListener(type, resolve, { once: true })),
    ms,
    what,
  );
}

/** Options every partysocket in the suite gets: ws as WebSocket and short reconnect delays. */
export const fastReconnect = {
  WebSocket: WS,
  minReconnectionDelay: 20,
  maxReconnectionDelay: 250,
  reconnectionDelayGrowFactor: 1.3,
  connectionTimeout: 4000,
};

/**
 * Sockets collects the sockets a test opens and closes them at the end:
 * `const sockets = new Sockets(); t.after(() => sockets.closeAll());`
 *
 * It also spreads the test's clients over the server's nodes: each client
 * (a socket, or a fetch) takes the next of server.hosts in turn, so with a
 * cluster of three the first is on node 1, the second on node 2, the third
 * on node 3, the fourth on node 1 again. With one server, every client has
 * its host.
 */
export class Sockets {
  constructor() {
    this.all = [];
    this.clients = 0;
  }

  /** host:port for the test's next client: the server's next node, in turn. */
  nextHost(server) {
    const hosts = server.hosts?.length ? server.hosts : [server.host];
    return hosts[this.clients++ % hosts.length];
  }

  /**
   * Opens a PartySocket with the suite's defaults on the next host (socket.serverHost) and an Inbox on it
   * (socket.inbox).
   */
  party(server, options) {
    const host = this.nextHost(server);
    const ps = new PartySocket({ host, ...fastReconnect, ...options });
    ps.serverHost = host;
    ps.inbox = new Inbox(ps, options.id ?? ps.id);
    this.all.push(ps);
    return ps;
  }

  /** Opens a plain ws client with an Inbox (socket.inbox); options go to ws (e.g. autoPong: false). */
  raw(url, options) {
    const ws = new WS(url, options);
    ws.binaryType = "arraybuffer";
    ws.inbox = new Inbox(ws, url);
    this.all.push(ws);
    return ws;
  }

  closeAll() {
    for (const s of this.all) {
      try {
        s.close();
      } catch {}
    }
    this.all = [];
  }
}

/**
 * Inbox records every message a socket receives, in order, and hands them out
 * one by one: next() returns the first message not yet taken, waiting for it
 * if needed.
 */
export class Inbox {
  constructor(socket, name) {
    this.name = name;
    this.messages = [];
    this.taken = 0;
    this.waiter = null;
    socket.addEventListener("message", (e) => {
      this.messages.push(e.data);
      if (this.waiter) this.waiter();
    });
  }

  /** The next message not yet taken, within ms. */
  async next(ms = 5000) {
    while (this.taken >= this.messages.length) {
      await withTimeout(
        new Promise((resolve) => (this.waiter = resolve)),
        ms,
        `a message for ${this.name} (it had ${this.messages.length}: ${JSON.stringify(this.messages.slice(-5).map(show))})`,
      );
    }
    return this.messages[this.taken++];
  }

  /** Takes messages until one satisfies pred and returns it, within ms overall. */
  async until(pred, ms = 5000, what = "a matching message") {
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what} on ${this.name}`);
      const m = await this.next(left).catch((err) => {
        throw new Error(`waiting for ${what}: ${err.message}`);
      });
      if (pred(m)) return m;
    }
  }

  /** Takes the next message, parsed as JSON. */
  async nextJSON(ms) {
    const m = await this.next(ms);
    if (typeof m !== "string") throw new Error(`${this.name}: expected a JSON text message, got ${show(m)}`);
    return JSON.parse(m);
  }
}

function show(m) {
  if (typeof m === "string") return m.length > 80 ? m.slice(0, 80) + "…" : m;
  return `<${m?.constructor?.name} ${m?.byteLength ?? m?.size} bytes>`;
}

/** A name unique to this run, for rooms that must not meet rooms of other tests. */
export function unique(prefix) {
  unique.n = (unique.n ?? 0) + 1;
  return `${prefix}-${process.pid}-${unique.n}`;
}
