// The two scenarios, each against one running server.

import { Worker } from "node:worker_threads";
import { YClient, serverHas, now } from "./client.mjs";
import { procStats } from "./servers.mjs";

const ms = (a, b) => Number(b - a) / 1e6;

/**
 * (a) Sync of the 1 MB document to a new client. A seeder sends the
 * document's updates into a fresh room and stays connected (the room is
 * warm, as when someone is editing); then, reps times, a new client with an
 * empty document connects and syncs: connect → open, → step 2 received,
 * → step 2 applied ("synced", what a provider reports).
 */
export async function syncScenario(server, { seed, reps }) {
  const url = `${server.url}/sync-${process.pid}-${Date.now()}`;
  const seeder = new YClient(url);
  await seeder.connect();
  for (const u of seed.updates) await sendPaced(seeder, u);
  await serverHas(url, seeder.doc, 60_000);
  const runs = [];
  for (let i = 0; i <= reps; i++) {
    const c = new YClient(url);
    await c.connect(60_000);
    const t = c.times;
    if (c.doc.getText("codemirror").length !== seed.chars) throw new Error(`${server.name}: a client synced a wrong document`);
    runs.push({ open: ms(t.dial, t.open), received: ms(t.dial, t.step2), synced: ms(t.dial, t.synced), bytes: c.step2Bytes });
    c.close();
    await new Promise((r) => setTimeout(r, 100));
  }
  seeder.close();
  return { first: runs[0], runs: runs.slice(1) };
}

/** Applies update to the client's document (which sends it), waiting while the socket's buffer is full. */
async function sendPaced(client, update) {
  const { applyUpdate } = await import("yjs");
  applyUpdate(client.doc, update, "seed");
  while (client.ws.bufferedAmount > 1 << 20) await new Promise((r) => setTimeout(r, 5));
}

/**
 * (b) editors clients in one room, spread over workers threads, each typing
 * rate inserts a second for seconds; then up to 10 s for the last
 * deliveries. Returns counts, latencies (ms, sorted) and the server's CPU.
 */
export async function editorsScenario(server, { editors, rate, seconds, workers, apply }) {
  const url = `${server.url}/editors-${process.pid}-${Date.now()}`;
  const perEditor = Math.round(rate * seconds);
  const maxSeq = perEditor + 1;
  const sendTimes = new SharedArrayBuffer(8 * editors * maxSeq);
  const pool = [];
  for (let w = 0; w < workers; w++) {
    const lo = Math.floor((w * editors) / workers);
    const hi = Math.floor(((w + 1) * editors) / workers);
    pool.push(spawnWorker({ url, lo, hi, maxSeq, sendTimes, apply: apply === "all" }));
  }
  try {
    await Promise.all(pool.map((w) => w.call({ op: "connect" }, "connected")));
    await new Promise((r) => setTimeout(r, 1000)); // let the joins settle
    const before = procStats(server.pid);
    const t0 = now() + 200_000_000n;
    await Promise.all(pool.map((w) => w.call({ op: "type", t0: t0.toString(), period: 1000 / rate, perEditor, editorsTotal: editors }, "typed")));
    const expected = perEditor * editors * (editors - 1);
    const counts = await drain(pool, expected);
    const after = procStats(server.pid);
    const reports = await Promise.all(pool.map((w) => w.call({ op: "report" }, "report")));
    const latencies = Float64Array.from(reports.flatMap((r) => Array.from(r.latencies))).sort();
    // Convergence: every applying editor has the same text, and a new
    // client gets every insert from the server.
    const texts = new Set(reports.flatMap((r) => r.texts));
    const last = await new YClient(url).connect(60_000);
    const length = last.doc.getText("codemirror").length;
    if (texts.size === 1 && [...texts][0].length !== length) texts.add("differs from the server's");
    last.close();
    return {
      sent: counts.sent,
      expected,
      received: counts.received,
      unknown: counts.unknown,
      echoes: counts.echoes,
      closed: reports.reduce((n, r) => n + r.closed, 0),
      converged: texts.size <= 1 && length === 4 * counts.sent,
      seconds: ms(t0, counts.lastReceive) / 1000,
      latencies,
      serverCPU: after.cpu - before.cpu,
      serverRSS: after.rssMiB,
    };
  } finally {
    await Promise.all(pool.map((w) => w.worker.terminate()));
  }
}

/** Polls the workers' counts until every expected delivery arrived, or 10 s without progress. */
async function drain(pool, expected) {
  let last = -1;
  let stalled = Date.now();
  for (;;) {
    const all = await Promise.all(pool.map((w) => w.call({ op: "counts" }, "counts")));
    const sum = { sent: 0, received: 0, unknown: 0, echoes: 0, lastReceive: 0n };
    for (const { counts: c } of all) {
      for (const k of ["sent", "received", "unknown", "echoes"]) sum[k] += c[k];
      if (BigInt(c.lastReceive) > sum.lastReceive) sum.lastReceive = BigInt(c.lastReceive);
    }
    if (sum.received >= expected) return sum;
    if (sum.received !== last) {
      last = sum.received;
      stalled = Date.now();
    } else if (Date.now() - stalled > 10_000) return sum;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function spawnWorker(data) {
  const worker = new Worker(new URL("./editors-worker.mjs", import.meta.url), { workerData: data });
  const waiting = new Map();
  let failure = null;
  const fail = (err) => {
    failure = err;
    for (const { reject } of waiting.values()) reject(err);
    waiting.clear();
  };
  worker.on("message", (m) => {
    if (m.op === "error") return fail(new Error(m.error));
    const w = waiting.get(m.op);
    waiting.delete(m.op);
    w?.resolve(m);
  });
  worker.on("error", fail);
  return {
    worker,
    call(msg, reply) {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        waiting.set(reply, { resolve, reject });
        worker.postMessage(msg);
      });
    },
  };
}

/** The p-th percentile (0–100) of sorted values. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
