// Helpers shared by fixtures.mjs and check.test.mjs: a seeded PRNG, base64,
// and describe(), which turns a Yjs document's content into plain JSON that
// keeps what toJSON() loses (text formatting and embeds, XML attributes and
// hooks, subdocuments, binary, bigint, undefined, NaN and -0).
import * as Y from 'yjs'

export const b64 = (u8) => Buffer.from(u8).toString('base64')
export const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'))

// mulberry32: a small deterministic PRNG, seeded.
export const prng = (seed) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n) => Math.floor(next() * n) // 0 <= int(n) < n
  const pick = (arr) => arr[int(arr.length)]
  const shuffle = (arr) => {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = int(i + 1);
      [arr[i], arr[j]] = [arr[j], arr[i]]
    }
    return arr
  }
  return { next, int, pick, shuffle }
}

const sortedObject = (entries) =>
  Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, describe(v)]))

const describeDelta = (op) => {
  const d = { insert: describe(op.insert) }
  if (op.attributes) d.attributes = sortedObject(Object.entries(op.attributes))
  return d
}

export const describe = (v) => {
  if (v instanceof Y.XmlText) return { xmlText: v.toDelta().map(describeDelta) }
  if (v instanceof Y.Text) return { text: v.toDelta().map(describeDelta) }
  if (v instanceof Y.XmlElement) {
    return { xmlElement: v.nodeName, attrs: sortedObject(Object.entries(v.getAttributes())), children: v.toArray().map(describe) }
  }
  if (v instanceof Y.XmlFragment) return { xmlFragment: v.toArray().map(describe) }
  if (v instanceof Y.XmlHook) return { xmlHook: v.hookName, map: sortedObject([...v.entries()]) }
  if (v instanceof Y.Map) return { map: sortedObject([...v.entries()]) }
  if (v instanceof Y.Array) return { array: v.toArray().map(describe) }
  if (v instanceof Y.Doc) return { doc: v.guid, meta: describe(v.meta), autoLoad: v.autoLoad, gc: v.gc }
  if (v instanceof Uint8Array) return { bytes: b64(v) }
  if (typeof v === 'bigint') return { bigint: v.toString() }
  if (v === undefined) return { undefined: true }
  if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0))) return { number: Object.is(v, -0) ? '-0' : String(v) }
  if (Array.isArray(v)) return v.map(describe)
  if (v !== null && typeof v === 'object') return { object: sortedObject(Object.entries(v)) }
  return v
}

const getRoot = { text: 'getText', map: 'getMap', array: 'getArray', xml: 'getXmlFragment' }

// content describes the root types named in roots ({name: 'text'|'map'|'array'|'xml'}).
export const content = (doc, roots) =>
  Object.fromEntries(Object.entries(roots).map(([name, kind]) => [name, describe(doc[getRoot[kind]](name))]))

// applied returns a fresh document (gc as given) that applied the updates in order.
export const applied = (updates, gc = true) => {
  const doc = new Y.Doc({ gc })
  for (const u of updates) Y.applyUpdate(doc, u)
  return doc
}
