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

/** Builds a main package of the repository (e.g. "./interop/server") once per process and returns the binary's path. */
export function buildGo(pkg) {
  const out = path.join(binDir, pkg.replaceAll(/[^A-Za-z0-9]+/g, "_"));
  if (!buildGo.done.has(out)) {
    execFileSync("go", ["build", "-o", out, pkg], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
    buildGo.done.add(out);
  }
  return out;
}
buildGo.done = new Set();

/**
 * A Go server process that prints a line containing "http://{addr}" once it
 * listens. start() runs it on a free port unless addr is given, so restart()
 * can bring it back on the same port.
 */
export class GoServer {
  constructor(binary, args = []) {
    this.binary = binary;
    this.args = args;
    this.proc = null;
    this.addr = null;
    this.log = "";
  }

  static async start(pkg, args = []) {
    const s = new GoServer(buildGo(pkg), args);
    await s.start();
    return s;
  }

  /** host:port, as partysocket's host option wants it. */
  get host() {
    return this.addr;
  }

  get httpURL() {
    return `http://${this.addr}`;
  }

  get wsURL() {
    return `ws://${this.addr}`;
  }

  async start() {
    const proc = spawn(this.binary, ["-addr", this.addr ?? "127.0.0.1:0", ...this.args], {
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
    this.addr = await withTimeout(
      new Promise((resolve, reject) => {
        const look = () => {
          const m = this.log.match(/http:\/\/([^\s/]+)/);
          if (m) resolve(m[1]);
        };
        proc.stdout.on("data", look);
        proc.stderr.on("data", look);
        proc.once("exit", (code) => reject(new Error(`${this.binary} exited with ${code}:\n${this.log}`)));
      }),
      30_000,
      `${this.binary} to print its address`,
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

  /** Stops the server and starts it again on the same port. */
  async restart() {
    await this.stop();
    this.log = "";
    await this.start();
  }
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
 */
export class Sockets {
  constructor() {
    this.all = [];
  }

  /** Opens a PartySocket with the suite's defaults and an Inbox on it (socket.inbox). */
  party(server, options) {
    const ps = new PartySocket({ host: server.host, ...fastReconnect, ...options });
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
