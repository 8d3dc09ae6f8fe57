// A worker thread of scenario (b): some of the room's editors. Each editor is
// a YClient with its own Y.Doc (client id = its index + 1) that types a
// 4-character insert at a random place of its text at a fixed rate. With
// apply, it applies every update it receives, as an editor does, and types
// among everyone's text; without, it reads only each update's first struct
// id and types among its own inserts (the updates are as valid, and the
// servers' work the same, for a fraction of the clients' CPU). Before sending, it stores the send time in the
// shared table sendTimes[index * maxSeq + seq]; a receiver reads the client
// id and clock of each update it gets (seq = clock / 4) and so the latency
// from send to receipt, across workers, on the one monotonic clock.

import { parentPort, workerData } from "node:worker_threads";
import { YClient, firstStruct, now } from "./client.mjs";
import { prng } from "./doc.mjs";

const { url, lo, hi, maxSeq, sendTimes: sab, apply } = workerData;
const sendTimes = new BigInt64Array(sab);
const insertLen = 4;
const editors = [];
const latencies = []; // ms
const counts = { sent: 0, received: 0, echoes: 0, unknown: 0, lastReceive: 0n };

function onRemote(index, update) {
  const s = firstStruct(update);
  if (!s) return;
  if (s.client === index + 1) {
    counts.echoes++; // y-websocket's server sends a client its own updates back
    return;
  }
  const sent = Atomics.load(sendTimes, (s.client - 1) * maxSeq + s.clock / insertLen);
  if (sent === 0n) {
    counts.unknown++;
    return;
  }
  const t = now();
  counts.received++;
  counts.lastReceive = t;
  latencies.push(Number(t - sent) / 1e6);
}

async function connect() {
  for (let i = lo; i < hi; i++) {
    const c = new YClient(url, { onRemoteUpdate: (u) => onRemote(i, u), apply });
    c.doc.clientID = i + 1;
    c.index = i;
    c.rnd = prng(i + 1);
    editors.push(c);
  }
  // A few at a time, as a room fills in practice.
  for (let k = 0; k < editors.length; k += 10) await Promise.all(editors.slice(k, k + 10).map((c) => c.connect()));
}

/** Types perEditor inserts per editor, one every period ms, editor i starting at t0 + its phase. */
function type({ t0, period, perEditor, editorsTotal }) {
  const t0ns = BigInt(t0);
  const done = editors.map(
    (c) =>
      new Promise((resolve) => {
        const phase = (c.index / editorsTotal) * period;
        const text = c.doc.getText("codemirror");
        let k = 0;
        const tick = () => {
          Atomics.store(sendTimes, c.index * maxSeq + k, now()); // its k-th insert starts at clock k * insertLen
          text.insert(c.rnd.int(text.length + 1), "ab" + String.fromCharCode(97 + (k % 26)) + " "); // sent by the update handler
          counts.sent++;
          if (++k === perEditor) return resolve();
          schedule();
        };
        const schedule = () => {
          const due = t0ns + BigInt(Math.round((phase + k * period) * 1e6));
          setTimeout(tick, Math.max(0, Number(due - now()) / 1e6));
        };
        schedule();
      }),
  );
  return Promise.all(done);
}

parentPort.on("message", async (m) => {
  try {
    if (m.op === "connect") {
      await connect();
      parentPort.postMessage({ op: "connected" });
    } else if (m.op === "type") {
      await type(m);
      parentPort.postMessage({ op: "typed" });
    } else if (m.op === "counts") {
      parentPort.postMessage({ op: "counts", counts: { ...counts, lastReceive: counts.lastReceive.toString() } });
    } else if (m.op === "report") {
      const lat = Float64Array.from(latencies);
      const texts = apply ? editors.map((c) => c.doc.getText("codemirror").toString()) : [];
      const closed = editors.filter((c) => c.closed !== undefined).length;
      for (const c of editors) c.close();
      parentPort.postMessage({ op: "report", latencies: lat, texts, closed }, [lat.buffer]);
    }
  } catch (err) {
    parentPort.postMessage({ op: "error", error: String(err?.stack ?? err) });
  }
});
