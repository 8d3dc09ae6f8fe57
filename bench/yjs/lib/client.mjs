// A minimal Yjs client for the benchmark: one WebSocket (ws) and one Y.Doc,
// speaking y-protocols' sync messages as y-websocket's and y-partykit's
// providers do (step 1 on open, step 2 answered, local changes sent as
// updates), without awareness, reconnection or timers. The same client runs
// against every server.

import WebSocket from "ws";
import * as Y from "yjs";
import * as syncProtocol from "y-protocols/sync";
import * as encoding from "lib0/encoding";
import * as decoding from "lib0/decoding";

export const messageSync = 0;

/** Nanoseconds on the monotonic clock, shared by every thread of the process. */
export const now = () => process.hrtime.bigint();

export class YClient {
  /**
   * @param {string} url ws://host/parties/main/{room}
   * @param {object} [opts]
   * @param {Y.Doc} [opts.doc] the document (a fresh one by default)
   * @param {(update: Uint8Array) => void} [opts.onRemoteUpdate] called with each sync update received, before it is applied
   * @param {boolean} [opts.apply] whether to apply the sync updates received after the first sync (true by default)
   */
  constructor(url, { doc = new Y.Doc(), onRemoteUpdate, apply = true } = {}) {
    this.url = url;
    this.doc = doc;
    this.onRemoteUpdate = onRemoteUpdate;
    this.apply = apply;
    this.times = {}; // ns: dial, open, step2 (received), synced (applied)
    this.received = 0;
    this.sendUpdate = (update, origin) => {
      if (origin === this || this.ws?.readyState !== WebSocket.OPEN) return;
      const enc = encoding.createEncoder();
      encoding.writeVarUint(enc, messageSync);
      syncProtocol.writeUpdate(enc, update);
      this.ws.send(encoding.toUint8Array(enc));
    };
    doc.on("update", this.sendUpdate);
  }

  /** Connects and resolves once the server's step 2 has been applied (the provider's "synced"). */
  connect(timeoutMs = 30_000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.url}: not synced within ${timeoutMs} ms`)), timeoutMs);
      this.times.dial = now();
      const ws = new WebSocket(this.url, { perMessageDeflate: false, maxPayload: 256 << 20 });
      ws.binaryType = "nodebuffer";
      this.ws = ws;
      ws.on("open", () => {
        this.times.open = now();
        const enc = encoding.createEncoder();
        encoding.writeVarUint(enc, messageSync);
        syncProtocol.writeSyncStep1(enc, this.doc);
        ws.send(encoding.toUint8Array(enc));
      });
      ws.on("message", (data) => {
        if (this.handle(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))) {
          clearTimeout(timer);
          resolve(this);
        }
      });
      ws.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.on("close", (code) => {
        clearTimeout(timer);
        this.closed = code;
        reject(new Error(`${this.url}: closed with ${code} before it synced`));
      });
    });
  }

  /** Handles one message; true when it was the step 2 that synced the client. */
  handle(msg) {
    const dec = decoding.createDecoder(msg);
    if (decoding.readVarUint(dec) !== messageSync) return false; // awareness and the rest: not used here
    const start = dec.pos;
    const syncType = decoding.readVarUint(dec);
    if (syncType === syncProtocol.messageYjsUpdate) {
      this.received++;
      if (this.onRemoteUpdate) this.onRemoteUpdate(decoding.readVarUint8Array(dec));
      if (!this.apply) return false;
    }
    if (syncType === syncProtocol.messageYjsSyncStep2 && !this.synced) {
      this.times.step2 = now();
      this.step2Bytes = msg.length;
    }
    dec.pos = start;
    const enc = encoding.createEncoder();
    encoding.writeVarUint(enc, messageSync);
    syncProtocol.readSyncMessage(dec, enc, this.doc, this);
    if (encoding.length(enc) > 1) this.ws.send(encoding.toUint8Array(enc));
    if (syncType === syncProtocol.messageYjsSyncStep2 && !this.synced) {
      this.synced = true;
      this.times.synced = now();
      return true;
    }
    return false;
  }

  close() {
    this.doc.off("update", this.sendUpdate);
    this.ws?.removeAllListeners("close");
    this.ws?.close();
  }
}

/** The client id and first clock of an update's first run of structs (a typed insert has one). */
export function firstStruct(update) {
  const dec = decoding.createDecoder(update);
  if (decoding.readVarUint(dec) === 0) return null; // no structs: only deletions
  decoding.readVarUint(dec); // the run's number of structs
  return { client: decoding.readVarUint(dec), clock: decoding.readVarUint(dec) };
}

/** Resolves when the server's state vector for doc's content equals doc's: a fresh client syncs and compares. */
export async function serverHas(url, doc, timeoutMs = 30_000) {
  const want = Buffer.from(Y.encodeStateVector(doc));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = new YClient(url);
    await c.connect(timeoutMs);
    const got = Buffer.from(Y.encodeStateVector(c.doc));
    c.close();
    if (got.equals(want)) return;
    if (Date.now() > deadline) throw new Error(`${url}: the server's document does not catch up with the seeder's`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
