// Checks the Go package party/yjs against the npm yjs package:
//  (a) the committed fixtures are what yjs writes today;
//  (b) our MergeUpdates and DiffUpdate of the fixtures make, in yjs, the same
//      documents as yjs's own mergeUpdates and diffUpdate;
//  (c) three clients make 1,000 random edits while partly connected; our merge
//      of all their updates (and of random parts of them) makes the document
//      that applying them one by one makes.
// Our operations run in yjs/internal/cmd/yjsops, built once with Go on PATH.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import * as Y from 'yjs'
import { writeFixtures } from './fixtures.mjs'
import { b64, unb64, prng, content, applied } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = join(here, '..', '..')
const testdata = join(repoRoot, 'yjs', 'testdata')
const tmp = mkdtempSync(join(tmpdir(), 'yjs-check-'))
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }))

let binary = null
// ours runs requests through party/yjs (see yjsops) and returns the results as
// bytes; an error from Go fails the test with its message.
const ours = (requests) => {
  if (binary === null) {
    binary = join(tmp, 'yjsops')
    execFileSync('go', ['build', '-o', binary, './yjs/internal/cmd/yjsops'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] })
  }
  const out = JSON.parse(execFileSync(binary, [], { input: JSON.stringify(requests), maxBuffer: 1 << 30 }))
  return out.map((r, i) => {
    assert.equal(r.error, undefined, `request ${i} (${requests[i].op}) failed in Go: ${r.error}`)
    return unb64(r.result ?? '')
  })
}
const merge = (updates) => ({ op: 'merge', updates: updates.map(b64) })
const diff = (update, sv) => ({ op: 'diff', update: b64(update), stateVector: b64(sv) })

// sameDoc asserts that two documents hold the same content and state.
const sameDoc = (got, want, roots, what) => {
  assert.deepEqual(content(got, roots), content(want, roots), `${what}: content`)
  assert.deepEqual(Y.encodeStateVector(got), Y.encodeStateVector(want), `${what}: state vector`)
  assert.deepEqual(Y.encodeStateAsUpdate(got), Y.encodeStateAsUpdate(want), `${what}: encoded state`)
}

const fixtures = JSON.parse(readFileSync(join(testdata, 'fixtures.json'), 'utf8'))

test('(a) the committed fixtures are what yjs writes', () => {
  const dir = join(tmp, 'fixtures')
  writeFixtures(dir)
  assert.equal(readFileSync(join(dir, 'fixtures.json'), 'utf8'), readFileSync(join(testdata, 'fixtures.json'), 'utf8'),
    'yjs/testdata/fixtures.json is stale: run `node yjs/fixtures.mjs` in interop/ and commit it')
  const bench = (d) => gunzipSync(readFileSync(join(d, 'bench-text.bin.gz')))
  assert.ok(bench(dir).equals(bench(testdata)), 'yjs/testdata/bench-text.bin.gz is stale: run `node yjs/fixtures.mjs`')
})

test('(b) our merge and diff of the fixtures make the documents yjs makes', () => {
  const requests = []
  for (const c of fixtures.cases) {
    const updates = c.updates.map(unb64)
    const half = Y.encodeStateVector(applied(updates.slice(0, updates.length >> 1), c.gc))
    requests.push(merge(updates))
    for (const d of c.diffs) requests.push(diff(unb64(d.of < 0 ? c.merged : c.updates[d.of]), unb64(d.sv)))
    requests.push(diff(unb64(c.merged), half))
  }
  const results = ours(requests)
  let next = 0
  let same = 0
  for (const c of fixtures.cases) {
    const updates = c.updates.map(unb64)
    const ourMerge = results[next++]
    if (Buffer.from(ourMerge).equals(unb64(c.merged))) same++
    const want = applied([unb64(c.merged)], c.gc)
    sameDoc(applied([ourMerge], c.gc), want, c.roots, `${c.name}: our merge`)
    assert.deepEqual(content(want, c.roots), c.content, `${c.name}: yjs's merge and the fixture's content`)
    assert.deepEqual(Y.encodeStateVectorFromUpdate(ourMerge), unb64(c.mergedStateVector), `${c.name}: state vector of our merge`)
    for (const [i, d] of c.diffs.entries()) {
      const ourDiff = results[next++]
      if (Buffer.from(ourDiff).equals(unb64(d.diff))) same++
      sameDoc(applied([ourDiff], c.gc), applied([unb64(d.diff)], c.gc), c.roots, `${c.name}: our diff ${i}`)
    }
    // The half-way document plus our diff against its state vector is the whole document.
    const doc = applied(updates.slice(0, updates.length >> 1), c.gc)
    Y.applyUpdate(doc, results[next++])
    sameDoc(doc, applied(updates, c.gc), c.roots, `${c.name}: half-way document plus our diff`)
  }
  console.log(`# ${same} of ${results.length - fixtures.cases.length} merges and diffs are yjs's bytes`)
})

test('(c) 3 clients, 1,000 random edits, updates exchanged partly and out of order: our merge is their document', () => {
  const rnd = prng(20260601)
  const roots = { text: 'text', map: 'map', array: 'array' }
  const docs = [1, 2, 3].map((id) => {
    const doc = new Y.Doc()
    doc.clientID = id
    doc.inbox = []
    doc.on('update', (u, origin) => {
      if (origin === 'remote') return
      all.push(u)
      for (const other of docs) if (other !== doc) other.inbox.push(u)
    })
    return doc
  })
  const all = []
  const words = ['a', 'bc', 'déf', '😀', '👩‍👩‍👧', 'ω', ' ', 'xyz ']
  for (let i = 0; i < 1000; i++) {
    const doc = rnd.pick(docs)
    const t = doc.getText('text')
    const m = doc.getMap('map')
    const a = doc.getArray('array')
    const r = rnd.next()
    if (r < 0.35 || t.length === 0) t.insert(rnd.int(t.length + 1), rnd.pick(words), rnd.next() < 0.1 ? { bold: true } : undefined)
    else if (r < 0.5) t.delete(rnd.int(t.length), 1 + rnd.int(3))
    else if (r < 0.65) m.set(rnd.pick(['k1', 'k2', 'k3', 'k4']), rnd.pick([rnd.int(1000), 'v' + i, { i }, [i, null]]))
    else if (r < 0.72) m.delete(rnd.pick(['k1', 'k2', 'k3', 'k4']))
    else if (r < 0.9 || a.length === 0) a.insert(rnd.int(a.length + 1), [i, 'item' + i].slice(0, 1 + rnd.int(2)))
    else a.delete(rnd.int(a.length), 1)
    if (rnd.next() < 0.3) { // deliver part of one inbox, in random order
      const to = rnd.pick(docs)
      rnd.shuffle(to.inbox)
      const n = rnd.int(to.inbox.length + 1)
      for (const u of to.inbox.splice(0, n)) Y.applyUpdate(to, u, 'remote')
    }
  }
  const partial = docs.map((d) => Y.encodeStateAsUpdate(d))
  const shuffled = rnd.shuffle([...all])
  const direct = applied(shuffled)
  // Our merge of everything, of merges of random groups, and of random halves.
  const groups = []
  for (let i = 0, n = 0; i < shuffled.length; i += n) {
    n = 1 + rnd.int(60)
    groups.push(shuffled.slice(i, i + n))
  }
  const halves = [0, 1, 2].map(() => shuffled.filter(() => rnd.next() < 0.5))
  const [everything, ...rest] = ours([merge(shuffled), ...groups.map(merge), ...halves.map(merge)])
  const groupMerges = rest.slice(0, groups.length)
  const halfMerges = rest.slice(groups.length)
  sameDoc(applied([everything]), direct, roots, 'our merge of all updates')
  const [ofGroups] = ours([merge(rnd.shuffle(groupMerges))])
  sameDoc(applied([ofGroups]), direct, roots, 'our merge of merged groups')
  for (const [i, h] of halves.entries()) {
    sameDoc(applied([halfMerges[i]]), applied([Y.mergeUpdates(h)]), roots, `our merge of random part ${i}`)
  }
  // Each partly synced client, plus our diff against its state, has everything.
  const diffs = ours(partial.map((p) => diff(everything, Y.encodeStateVectorFromUpdate(p))))
  for (const [i, p] of partial.entries()) {
    const doc = applied([p])
    Y.applyUpdate(doc, diffs[i])
    sameDoc(doc, direct, roots, `client ${i + 1} plus our diff`)
  }
  for (const d of docs) for (const u of d.inbox) Y.applyUpdate(d, u, 'remote')
  for (const d of docs) assert.deepEqual(content(d, roots), content(direct, roots), 'the clients, once synced')
})
