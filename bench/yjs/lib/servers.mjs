// The servers under test, each started fresh on a free port of 127.0.0.1 and
// stopped with SIGTERM; every one serves Yjs rooms at ws://{addr}/parties/main/{room}.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "../../..");
const work = mkdtempSync(path.join(tmpdir(), "party-bench-yjs-"));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));

/** Builds a main package of the repository into the work directory. */
function buildGo(pkg) {
  const out = path.join(work, pkg.replaceAll(/[^A-Za-z0-9]+/g, "_"));
  execFileSync("go", ["build", "-o", out, pkg], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
  return out;
}

/** The servers, by name: what runs, and how it is described in the table. */
export const servers = {
  "party-file": {
    what: "examples/editor: yjs.NewServer, documents in a FileStore (an fsync per update)",
    command: (port) => [buildGo.cached("./examples/editor"), ["-addr", `127.0.0.1:${port}`, "-data", mkdtempSync(path.join(work, "data-"))]],
  },
  "party-mem": {
    what: "yjs/internal/cmd/yjsserver: yjs.NewServer, documents in memory (party's MemoryStore)",
    command: (port) => [buildGo.cached("./yjs/internal/cmd/yjsserver"), ["-addr", `127.0.0.1:${port}`]],
  },
  "y-websocket": {
    what: "@y/websocket-server 0.1.5 (its src/server.js, on yjs 13.6.33), documents in memory",
    command: () => [process.execPath, [path.join(here, "..", "node_modules", "@y", "websocket-server", "src", "server.js")]],
    env: (port) => ({ HOST: "127.0.0.1", PORT: String(port) }),
  },
};

buildGo.cache = new Map();
buildGo.cached = (pkg) => {
  if (!buildGo.cache.has(pkg)) buildGo.cache.set(pkg, buildGo(pkg));
  return buildGo.cache.get(pkg);
};

/** Builds every Go server now, so that no build runs during a measurement. */
export function buildAll(names) {
  for (const name of names) servers[name].command(0);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts the named server; resolves once it accepts connections, with its URL, pid and stop(). */
export async function startServer(name) {
  const spec = servers[name];
  const port = await freePort();
  const [bin, args] = spec.command(port);
  const proc = spawn(bin, args, {
    env: { ...process.env, ...(spec.env?.(port) ?? {}) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  proc.stdout.on("data", (d) => (log += d));
  proc.stderr.on("data", (d) => (log += d));
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  const deadline = Date.now() + 30_000;
  while (!(await accepts(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`${name} did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    name,
    url: `ws://127.0.0.1:${port}/parties/main`,
    pid: proc.pid,
    log: () => log,
    async stop() {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function accepts(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds (user + system) and RSS in MiB of a process, from /proc. */
export function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKiB = Number(status.match(/VmRSS:\s+(\d+)/)[1]);
  return { cpu: ticks / 100, rssMiB: rssKiB / 1024 };
}
