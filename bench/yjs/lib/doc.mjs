// The benchmark's 1 MB document: one client typing words at places chosen by
// a seeded PRNG (mostly near where it typed last, sometimes anywhere), no
// deletions, so that every server keeps the same content (a server with gc
// and one without agree on a document without deletions). It is built
// transaction by transaction, and each transaction's update is what a seeder
// sends, so that no message is near a server's message size limit.

import * as Y from "yjs";

/** mulberry32: a small deterministic PRNG. */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n) };
}

const words = ("the room keeps one document and every editor sees each change as it happens while the server " +
  "stores it before anyone else hears of it so that a restart loses nothing grüße façade 日本語 text").split(" ");

/**
 * Builds the document: transactions of perTx words until its encoding has at
 * least targetBytes. Returns the Y.Doc, the updates in order, and figures.
 */
export function buildDocument({ targetBytes = 1_000_000, perTx = 400, seed = 1, clientID = 4242 } = {}) {
  const rnd = prng(seed);
  const doc = new Y.Doc();
  doc.clientID = clientID;
  const text = doc.getText("codemirror");
  const updates = [];
  doc.on("update", (u) => updates.push(u));
  let cursor = 0;
  let size = 0;
  while (size < targetBytes) {
    doc.transact(() => {
      for (let i = 0; i < perTx; i++) {
        if (rnd.next() < 0.15) cursor = rnd.int(text.length + 1); // jump elsewhere
        const w = words[rnd.int(words.length)] + (rnd.next() < 0.1 ? ".\n" : " ");
        text.insert(cursor, w);
        cursor += w.length;
      }
    });
    if (updates.length % 10 === 0) size = Y.encodeStateAsUpdate(doc).length;
  }
  const encoded = Y.encodeStateAsUpdate(doc);
  return { doc, updates, bytes: encoded.length, chars: text.length, structs: countStructs(encoded) };
}

function countStructs(update) {
  const parsed = Y.decodeUpdate(update);
  return parsed.structs.length;
}
