// Builds Yjs documents with every kind of content and writes, for the Go
// package party/yjs, what the npm yjs package makes of them:
//
//   yjs/testdata/fixtures.json    one case per scenario: its updates (base64),
//                                 Y.mergeUpdates of them, Y.encodeStateVectorFromUpdate
//                                 of each, Y.diffUpdate against chosen state vectors,
//                                 and the content of a document that applied them.
//   yjs/testdata/bench-text.bin.gz  a ~1 MB text made of many small edits, for the
//                                 benchmarks (see writeBench).
//
// Deterministic: fixed client ids, fixed guids, a seeded PRNG. Run from interop/:
//   node yjs/fixtures.mjs [outdir]      (outdir defaults to ../yjs/testdata)
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { b64, prng, content, applied } from './lib.mjs'

// session makes documents with the given client ids that record their own
// updates (in the order they happen) and can sync with each other.
const session = (ids, gc = true) => {
  const updates = []
  const docs = ids.map((id) => {
    const doc = new Y.Doc({ gc })
    doc.clientID = id
    doc.on('update', (u, origin) => { if (origin !== 'sync') updates.push(u) })
    return doc
  })
  const sync = (from, to) => Y.applyUpdate(to, Y.encodeStateAsUpdate(from, Y.encodeStateVector(to)), 'sync')
  const syncAll = () => { for (const a of docs) for (const b of docs) if (a !== b) sync(a, b) }
  return { docs, updates, sync, syncAll }
}

const textCase = (gc) => {
  const s = session([1], gc)
  const [d] = s.docs
  const t = d.getText('text')
  t.insert(0, 'Hello 👋 world 🌍!')
  t.format(0, 5, { bold: true })
  t.insert(6, 'dear ', { italic: true, color: '#f00' })
  t.insertEmbed(3, { image: 'cat.png', size: [1, 2] })
  t.insert(t.length, '🎉🎉🎉 end')
  t.delete(2, 3)
  t.delete(t.length - 8, 1) // half of a surrogate pair
  t.format(4, 10, { bold: null, underline: true })
  t.insert(1, 'é中\u0000x')
  const svMid = Y.encodeStateVector(d)
  t.delete(0, 4)
  t.insert(5, 'more 😀')
  return { roots: { text: 'text' }, updates: [...s.updates, Y.encodeStateAsUpdate(d), Y.encodeStateAsUpdate(d, svMid)], svs: [svMid] }
}

const mapCase = (gc) => {
  const s = session([2], gc)
  const [d] = s.docs
  const m = d.getMap('map')
  const values = {
    str: 'ünïcödé 🙂', int: 42, neg: -7, big: 2 ** 31 - 1, bigger: 2 ** 40, huge: 2 ** 53 - 1, float: 0.1,
    f32: 1.5, nan: NaN, inf: -Infinity, negzero: -0, yes: true, no: false, nul: null, undef: undefined,
    obj: { b: 1, a: [1, 'two', { three: 3 }], nested: { deep: { deeper: [null, true] } } },
    arr: [1, 2.5, 'x', [], {}], bytes: new Uint8Array([0, 1, 2, 255]), bigint: 2n ** 60n, empty: ''
  }
  for (const [k, v] of Object.entries(values)) m.set(k, v)
  const svMid = Y.encodeStateVector(d)
  m.set('int', 43)
  m.delete('neg')
  m.set('str', 'overwritten')
  m.set('str', 'twice')
  const inner = m.set('inner', new Y.Map())
  inner.set('x', 1)
  inner.set('text', new Y.Text('inner text'))
  m.delete('obj')
  return { roots: { map: 'map' }, updates: [...s.updates, Y.encodeStateAsUpdate(d), Y.encodeStateAsUpdate(d, svMid)], svs: [svMid] }
}

const arrayCase = (gc) => {
  const s = session([3], gc)
  const [d] = s.docs
  const a = d.getArray('array')
  a.insert(0, [1, 2, 3, 'four', { five: 5 }, [6], null, true])
  a.insert(2, [new Uint8Array([9, 8, 7])])
  const nested = new Y.Array()
  a.insert(1, [nested])
  nested.insert(0, ['n1', 'n2', 'n3'])
  const m = new Y.Map()
  a.push([m])
  m.set('k', 'v')
  m.set('t', new Y.Text('deep'))
  const svMid = Y.encodeStateVector(d)
  a.delete(3, 3)
  nested.delete(1, 1)
  a.delete(a.length - 1, 1) // a map with children: they become GC
  a.insert(0, ['front'])
  return { roots: { array: 'array' }, updates: [...s.updates, Y.encodeStateAsUpdate(d), Y.encodeStateAsUpdate(d, svMid)], svs: [svMid] }
}

const xmlCase = (gc) => {
  const s = session([4], gc)
  const [d] = s.docs
  const f = d.getXmlFragment('xml')
  const p = new Y.XmlElement('p')
  p.setAttribute('class', 'lead')
  p.setAttribute('data-n', '1')
  const txt = new Y.XmlText()
  p.insert(0, [txt])
  txt.insert(0, 'xml text ✓')
  txt.format(0, 3, { strong: {} })
  const hook = new Y.XmlHook('widget')
  hook.set('config', { on: true })
  f.insert(0, [p, hook, new Y.XmlElement('hr'), new Y.XmlText('tail')])
  const svMid = Y.encodeStateVector(d)
  p.removeAttribute('data-n')
  f.delete(2, 1)
  return { roots: { xml: 'xml' }, updates: [...s.updates, Y.encodeStateAsUpdate(d), Y.encodeStateAsUpdate(d, svMid)], svs: [svMid] }
}

const subdocCase = (gc) => {
  const s = session([5], gc)
  const [d] = s.docs
  const docs = d.getArray('docs')
  docs.insert(0, [new Y.Doc({ guid: 'sub-1' }), new Y.Doc({ guid: 'sub-2', gc: false, meta: { title: 'two' } })])
  d.getMap('byname').set('third', new Y.Doc({ guid: 'sub-3', autoLoad: true }))
  docs.delete(0, 1)
  return { roots: { docs: 'array', byname: 'map' }, updates: [...s.updates, Y.encodeStateAsUpdate(d)], svs: [] }
}

// concurrentCase: three clients edit the same types while partly connected.
const concurrentCase = (gc, seed) => {
  const rnd = prng(seed)
  const s = session([30, 10, 2000000000], gc)
  const svs = []
  for (let round = 0; round < 6; round++) {
    for (const d of s.docs) {
      const t = d.getText('text')
      const a = d.getArray('array')
      const m = d.getMap('map')
      for (let i = 0; i < 4; i++) {
        const pos = rnd.int(t.length + 1)
        if (rnd.next() < 0.7 || t.length === 0) t.insert(pos, rnd.pick(['a', 'bc', '😀', 'def ', 'ω']), rnd.next() < 0.2 ? { bold: true } : undefined)
        else t.delete(Math.min(pos, t.length - 1), 1 + rnd.int(2))
      }
      a.insert(rnd.int(a.length + 1), [rnd.int(100), 'c' + d.clientID])
      if (a.length > 4 && rnd.next() < 0.5) a.delete(rnd.int(a.length - 2), 2)
      m.set(rnd.pick(['x', 'y', 'z']), { by: d.clientID, round })
      if (rnd.next() < 0.3) m.delete(rnd.pick(['x', 'y', 'z']))
    }
    s.sync(s.docs[round % 3], s.docs[(round + 1) % 3])
    svs.push(Y.encodeStateVector(s.docs[round % 3]))
  }
  s.syncAll()
  return {
    roots: { text: 'text', array: 'array', map: 'map' },
    updates: [...s.updates, ...s.docs.map((d) => Y.encodeStateAsUpdate(d))],
    svs: svs.slice(0, 3)
  }
}

// legacyCase hand-writes what yjs no longer writes but still reads: ContentJSON
// (in an array and as a map value), and a run with a gap (so merging makes a Skip).
const legacyCase = () => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 2) // two clients
  encoding.writeVarUint(e, 1) // client 8: one struct
  encoding.writeVarUint(e, 8)
  encoding.writeVarUint(e, 0)
  encoding.writeUint8(e, 2 | 0x20) // ContentJSON, parentSub
  encoding.writeVarUint(e, 1) // parent is a root type
  encoding.writeVarString(e, 'legacyMap')
  encoding.writeVarString(e, 'k')
  encoding.writeVarUint(e, 1)
  encoding.writeVarString(e, '{"deep":[1,2,{"x":null}]}')
  encoding.writeVarUint(e, 2) // client 7: two structs
  encoding.writeVarUint(e, 7)
  encoding.writeVarUint(e, 0)
  encoding.writeUint8(e, 2) // ContentJSON
  encoding.writeVarUint(e, 1)
  encoding.writeVarString(e, 'legacy')
  encoding.writeVarUint(e, 3)
  for (const v of ['{"a":1}', '[1,2]', 'undefined']) encoding.writeVarString(e, v)
  encoding.writeUint8(e, 2 | 0x80) // ContentJSON after (7, 2)
  encoding.writeVarUint(e, 7)
  encoding.writeVarUint(e, 2)
  encoding.writeVarUint(e, 1)
  encoding.writeVarString(e, '"s"')
  encoding.writeVarUint(e, 0) // no deletes
  const legacy = encoding.toUint8Array(e)
  // Three updates of one client; the middle one is left out, so the merge has a gap.
  const s = session([9])
  const t = s.docs[0].getText('gappy')
  t.insert(0, 'one ')
  t.insert(4, 'two ')
  t.insert(8, 'three')
  t.delete(0, 2)
  return { roots: { legacy: 'array', legacyMap: 'map', gappy: 'text' }, updates: [legacy, s.updates[0], s.updates[2], s.updates[3]], svs: [] }
}

const cases = () => [
  ['text', textCase(true)], ['text-nogc', textCase(false)],
  ['map', mapCase(true)], ['map-nogc', mapCase(false)],
  ['array', arrayCase(true)], ['array-nogc', arrayCase(false)],
  ['xml', xmlCase(true)], ['xml-nogc', xmlCase(false)],
  ['subdocs', subdocCase(true)],
  ['concurrent', concurrentCase(true, 1)], ['concurrent-nogc', concurrentCase(false, 2)],
  ['legacy', legacyCase()]
]

// fixture computes, with yjs, what the Go package must agree with.
const fixture = (name, gc, { roots, updates, svs }) => {
  const merged = Y.mergeUpdates(updates)
  const svOf = (u) => Y.encodeStateVectorFromUpdate(u)
  const half = Y.encodeStateVector(applied(updates.slice(0, updates.length >> 1), gc))
  const allSVs = [new Uint8Array([0]), half, ...svs, ...updates.slice(0, 2).map(svOf)]
  const diffs = []
  for (const [of, u] of [[-1, merged], [updates.length - 1, updates[updates.length - 1]]]) {
    for (const sv of allSVs) diffs.push({ of, sv: b64(sv), diff: b64(Y.diffUpdate(u, sv)) })
  }
  return {
    name,
    gc,
    roots,
    updates: updates.map(b64),
    stateVectors: updates.map((u) => b64(svOf(u))),
    merged: b64(merged),
    mergedStateVector: b64(svOf(merged)),
    diffs,
    content: content(applied(updates, gc), roots)
  }
}

// writeBench writes bench-text.bin.gz: lib0 varUint8Array frames
// [final state, state before the last 1000 edits, state vector halfway,
//  the last 1000 edits' updates…], gzipped.
const writeBench = (dir) => {
  const rnd = prng(7)
  const s = session([11])
  const d = s.docs[0]
  const t = d.getText('text')
  let cursor = 0
  let base = null
  let half = null
  for (let i = 0; ; i++) {
    const r = rnd.next()
    if (r < 0.6 || t.length < 10) {
      cursor = rnd.int(t.length + 1)
      t.insert(cursor, 'lorem ipsum dolor sit amet'.slice(0, 1 + rnd.int(8)))
    } else if (r < 0.9) {
      t.insert(Math.min(cursor, t.length), rnd.pick(['a', 'e', 'i', 'o', 'u', ' ', 'é', '😀']))
      cursor++
    } else {
      t.delete(rnd.int(t.length - 5), 1 + rnd.int(4))
    }
    if (i === 30000) half = Y.encodeStateVector(d)
    if (i === 59000) base = Y.encodeStateAsUpdate(d)
    if (i === 60000) break
  }
  const e = encoding.createEncoder()
  for (const f of [Y.encodeStateAsUpdate(d), base, half, ...s.updates.slice(-1000)]) encoding.writeVarUint8Array(e, f)
  writeFileSync(join(dir, 'bench-text.bin.gz'), gzipSync(encoding.toUint8Array(e), { level: 9 }))
}

export const writeFixtures = (dir) => {
  mkdirSync(dir, { recursive: true })
  const out = { yjs: '13.6.33', cases: cases().map(([name, c]) => fixture(name, !name.endsWith('-nogc'), c)) }
  writeFileSync(join(dir, 'fixtures.json'), JSON.stringify(out, null, 1) + '\n')
  writeBench(dir)
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const here = dirname(fileURLToPath(import.meta.url))
  writeFixtures(process.argv[2] ?? join(here, '..', '..', 'yjs', 'testdata'))
}
