// The real y-websocket provider (WebsocketProvider 3.x, with y-protocols and
// yjs 13.6) against our Go room Server, yjs.NewServer, served by
// yjs/internal/cmd/yjsserver:
//   - two documents converge after concurrent edits of a text, a map and an array;
//   - an offline client's edits merge when it reconnects;
//   - the awareness state of a client that closed disappears for the others;
//   - a read-only client cannot change the document;
//   - a server killed (SIGKILL) and restarted on its FileStore serves the document as it was;
//   - 1,000 random edits from 3 clients converge to what yjs makes of the same edits in one process.
// With PARTY_INTEROP_NODES=N (npm run test:yjs:cluster sets 3), the same tests
// run against N nodes of a cluster (interopcluster -app yjs; interop/README.md
// says what a restart means there): each test's providers, and the reads of
// the server's document, go round-robin over the nodes. One more test runs
// there only:
//   - the room's node leaves the cluster: every client gets 1012, the room runs
//     on another node with the document it stored, and the clients there converge.
// Every wait has a deadline and names what it waited for.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WS from 'ws'
import { firstNodeLeaves, interopNodes, startYjsServer, withTimeout } from '../lib/harness.mjs'
import { prng, content } from './lib.mjs'

const roots = { text: 'text', map: 'map', array: 'array' }
const readOnlyToken = 'let-me-read'

const dataDirs = []
process.on('exit', () => dataDirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

// startServer runs yjsserver on a fresh FileStore directory, or a cluster
// (PARTY_INTEROP_NODES) with that directory as JetStream's store.
const startServer = async (args = []) => {
  const data = mkdtempSync(join(tmpdir(), 'yjs-server-'))
  dataDirs.push(data)
  return startYjsServer(['-data', data, '-readonly-token', readOnlyToken, ...args])
}

// Providers collects the providers a test opens, to destroy them at its end.
// Each provider goes to the server's next node in turn (p.serverHost): on a
// cluster of three, the first to node 1, the second to node 2, the third to
// node 3, the fourth to node 1 again. With one server, all go to it.
class Providers {
  constructor (server) {
    this.server = server
    this.all = []
    this.opened = 0
  }

  open (room, { doc = new Y.Doc(), params = {} } = {}) {
    const host = this.server.hosts[this.opened++ % this.server.hosts.length]
    const p = new WebsocketProvider(`ws://${host}/parties/main`, room, doc, {
      WebSocketPolyfill: WS, disableBc: true, maxBackoffTime: 200, params
    })
    p.serverHost = host
    this.all.push(p)
    return p
  }

  destroyAll () {
    for (const p of this.all) {
      p.destroy()
      p.doc.destroy() // and its Awareness's timer
    }
    this.all = []
  }
}

// until polls cond (which may be async) every 10 ms until it holds, failing
// after ms with what.
const until = (cond, what, ms = 10_000) => {
  let stop = false
  return withTimeout(new Promise((resolve, reject) => {
    const look = async () => {
      if (stop) return
      if (await cond()) resolve()
      else setTimeout(() => look().catch(reject), 10)
    }
    look().catch(reject)
  }), ms, what).finally(() => { stop = true })
}

const synced = (p, what = 'the provider to sync') => until(() => p.synced, what)

const sameContent = (a, b) => JSON.stringify(content(a, roots)) === JSON.stringify(content(b, roots))
const sameState = (a, b) => Buffer.from(Y.encodeStateVector(a)).equals(Buffer.from(Y.encodeStateVector(b))) && sameContent(a, b)

// serverDoc returns the room's document as the Go server holds it (GET
// /doc/{room}), asking the next of hosts in turn (on a cluster, a node that
// does not run the room asks the one that does).
const serverDoc = async (server, room, hosts = server.hosts) => {
  const host = hosts[serverDoc.reads++ % hosts.length]
  const res = await fetch(`http://${host}/doc/${room}`)
  assert.equal(res.status, 200, `GET /doc/${room}: ${res.status}`)
  const doc = new Y.Doc()
  Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()))
  return doc
}
serverDoc.reads = 0

// converged waits until every document has the same state and content, and
// the server's document too (read from hosts: all of the server's by default).
const converged = async (server, room, docs, what, hosts) => {
  await until(() => docs.every((d) => sameState(d, docs[0])), `${what}: the clients to converge`, 20_000)
  const held = await serverDoc(server, room, hosts)
  assert.deepEqual(content(held, roots), content(docs[0], roots), `${what}: the server's document`)
}

test('two documents converge after concurrent edits of text, map and array', async (t) => {
  const server = await startServer()
  t.after(() => server.stop())
  const ps = new Providers(server)
  t.after(() => ps.destroyAll())
  const a = ps.open('concurrent')
  const b = ps.open('concurrent')
  await synced(a)
  await synced(b)
  // Both edit before either hears of the other's edits.
  a.doc.getText('text').insert(0, 'hello from a')
  a.doc.getMap('map').set('who', 'a')
  a.doc.getArray('array').push([1, 2, 3])
  b.doc.getText('text').insert(0, 'hi from b ')
  b.doc.getMap('map').set('who', 'b')
  b.doc.getMap('map').set('b', true)
  b.doc.getArray('array').insert(0, ['b0'])
  await converged(server, 'concurrent', [a.doc, b.doc], 'concurrent edits')
  assert.match(a.doc.getText('text').toString(), /hello from a/)
  assert.match(a.doc.getText('text').toString(), /hi from b/)
  assert.equal(a.doc.getArray('array').length, 4)
})

test("an offline client's edits merge when it reconnects", async (t) => {
  const server = await startServer()
  t.after(() => server.stop())
  const ps = new Providers(server)
  t.after(() => ps.destroyAll())
  const a = ps.open('offline')
  const b = ps.open('offline')
  await synced(a)
  await synced(b)
  a.doc.getText('text').insert(0, 'shared ')
  await until(() => sameState(a.doc, b.doc), 'the first edit to reach b')

  a.disconnect()
  await until(() => !a.wsconnected, 'a to disconnect')
  a.doc.getText('text').insert(0, 'offline ')
  a.doc.getMap('map').set('offline', 1)
  b.doc.getText('text').insert(7, 'online ')
  b.doc.getArray('array').push(['online'])
  await until(async () => sameContent(b.doc, await serverDoc(server, 'offline')), "b's edits to reach the server")
  assert.equal(sameContent(a.doc, b.doc), false, 'a, offline, must not have b\'s edits yet')

  a.connect()
  await synced(a, 'a to sync again')
  await converged(server, 'offline', [a.doc, b.doc], 'after the reconnect')
  assert.equal(a.doc.getMap('map').get('offline'), 1)
  assert.deepEqual(a.doc.getArray('array').toArray(), ['online'])
})

test('the awareness state of a client that closed disappears for the others', async (t) => {
  const server = await startServer()
  t.after(() => server.stop())
  const ps = new Providers(server)
  t.after(() => ps.destroyAll())
  const [a, b, c] = [ps.open('aware'), ps.open('aware'), ps.open('aware')]
  await Promise.all([a, b, c].map((p) => synced(p)))
  a.awareness.setLocalStateField('user', 'alice')
  b.awareness.setLocalStateField('user', 'bob')
  const aID = a.doc.clientID
  await until(() => [b, c].every((p) => p.awareness.getStates().get(aID)?.user === 'alice'), "alice's state to reach b and c")
  await until(() => c.awareness.getStates().get(b.doc.clientID)?.user === 'bob', "bob's state to reach c")

  // A client joining later gets the states on connect.
  const d = ps.open('aware')
  await until(() => d.awareness.getStates().get(aID)?.user === 'alice', 'a late client to get the states')

  // a vanishes without a word (a killed tab): its socket is cut, with no
  // null state of its own (y-websocket's disconnect() would send one).
  a.shouldConnect = false
  a.ws.terminate()
  // Far sooner than the 30 s after which y-protocols times a state out: the
  // server's null state for a's connection did it.
  await until(() => [b, c, d].every((p) => !p.awareness.getStates().has(aID)), "alice's state to disappear", 5_000)
  assert.equal(c.awareness.getStates().get(b.doc.clientID)?.user, 'bob', "bob's state stays")
})

test('a read-only client cannot change the document', async (t) => {
  const server = await startServer()
  t.after(() => server.stop())
  const ps = new Providers(server)
  t.after(() => ps.destroyAll())
  const w = ps.open('readonly')
  await synced(w)
  w.doc.getText('text').insert(0, 'written')
  await until(async () => (await serverDoc(server, 'readonly')).getText('text').toString() === 'written', 'the write to reach the server')

  const warnings = []
  const warn = console.warn
  console.warn = (...args) => warnings.push(args.join(' '))
  t.after(() => { console.warn = warn })
  const ro = ps.open('readonly', { params: { token: readOnlyToken } })
  await synced(ro, 'the read-only client to sync')
  assert.equal(ro.doc.getText('text').toString(), 'written', 'the read-only client reads the document')
  ro.doc.getText('text').insert(0, 'vandal ')
  ro.doc.getMap('map').set('vandal', true)
  await until(() => warnings.some((w) => w.includes('Permission denied') && w.includes('read-only')), 'the permission-denied message')

  // A later write of w reaches everyone; the read-only edits reach nobody.
  w.doc.getText('text').insert(7, '!')
  await until(() => ro.doc.getText('text').toString().includes('written!'), "w's next write to reach the read-only client")
  assert.equal(w.doc.getText('text').toString(), 'written!')
  assert.equal(w.doc.getMap('map').has('vandal'), false)
  const held = await serverDoc(server, 'readonly')
  assert.equal(held.getText('text').toString(), 'written!')
  assert.equal(held.getMap('map').has('vandal'), false)
})

test('a server killed and restarted on its FileStore serves the document as it was', async (t) => {
  const server = await startServer()
  t.after(() => server.stop())
  const ps = new Providers(server)
  t.after(() => ps.destroyAll())
  const a = ps.open('restart')
  const b = ps.open('restart')
  await synced(a)
  await synced(b)
  a.doc.getText('text').insert(0, 'kept across a crash')
  a.doc.getMap('map').set('n', 42)
  b.doc.getArray('array').push(['from b'])
  await until(() => sameState(a.doc, b.doc), 'the edits to reach both clients')
  const before = content(a.doc, roots)

  // Each client has seen the other's edits: the server stored them before sending them.
  await server.stop('SIGKILL')
  ps.destroyAll()
  await server.start()
  const c = ps.open('restart')
  await synced(c, 'a fresh client to sync with the restarted server')
  assert.deepEqual(content(c.doc, roots), before)
  assert.deepEqual(content(await serverDoc(server, 'restart'), roots), before)
})

test("the room's node leaves the cluster: the room runs on another node with what it stored", {
  skip: interopNodes < 3 && 'on a cluster of three only (npm run test:yjs:cluster)'
}, async (t) => {
  const server = await startServer()
  t.after(() => server.stop())
  const ps = new Providers(server)
  t.after(() => ps.destroyAll())
  const a = ps.open('handover') // on node 1, which claims the room: a reaches it first
  await synced(a)
  const b = ps.open('handover') // node 2
  const c = ps.open('handover') // node 3
  await Promise.all([b, c].map((p) => synced(p)))
  a.doc.getText('text').insert(0, 'written through node 1')
  b.doc.getMap('map').set('b', 'through node 2')
  c.doc.getArray('array').push(['through node 3'])
  await converged(server, 'handover', [a.doc, b.doc, c.doc], 'before the move')
  const before = content(a.doc, roots)

  // Each client stays offline once closed, until the test reconnects it.
  const closed = [a, b, c].map((p) => new Promise((resolve) => p.once('connection-close', (event) => {
    p.shouldConnect = false
    resolve(event?.code)
  })))
  await firstNodeLeaves(server)
  assert.deepEqual(await withTimeout(Promise.all(closed), 5_000, 'a, b and c to be closed'), [1012, 1012, 1012],
    'the close codes of a (node 1), b (node 2) and c (node 3)')
  // No client is connected: the room that node 2 or 3 runs now holds what node 1 stored.
  const left = [b.serverHost, c.serverHost]
  assert.deepEqual(content(await serverDoc(server, 'handover', left), roots), before, 'the document after the move')

  b.doc.getMap('map').set('b', 'offline during the move')
  b.connect()
  c.connect()
  await Promise.all([b, c].map((p) => synced(p, `the client on ${p.serverHost} to sync again`)))
  c.doc.getArray('array').push(['after the move'])
  await converged(server, 'handover', [b.doc, c.doc], 'after the move', left)
  assert.equal(c.doc.getText('text').toString(), 'written through node 1')
  assert.equal(c.doc.getMap('map').get('b'), 'offline during the move')
  assert.deepEqual(b.doc.getArray('array').toArray(), ['through node 3', 'after the move'])
})

test('1,000 random edits from 3 clients converge to what yjs makes of them in one process', async (t) => {
  const server = await startServer(['-max-log-updates', '100'])
  t.after(() => server.stop())
  const ps = new Providers(server)
  t.after(() => ps.destroyAll())
  const clients = [0, 1, 2].map(() => ps.open('random'))
  await Promise.all(clients.map((p) => synced(p)))
  const local = [] // every client's own updates, as yjs reports them
  for (const p of clients) {
    p.doc.on('update', (u, origin) => { if (origin !== p) local.push(u) })
  }
  const rand = prng(20260101)
  for (let i = 0; i < 1000; i++) {
    const p = rand.pick(clients)
    edit(p.doc, rand)
    if (rand.int(25) === 0) await new Promise((resolve) => setTimeout(resolve, rand.int(5)))
    if (rand.int(200) === 0) { // now and then a client goes offline for a while
      p.disconnect()
      setTimeout(() => p.connect(), 20 + rand.int(50))
    }
  }
  await until(() => clients.every((p) => p.wsconnected), 'every client to be connected again')
  const docs = clients.map((p) => p.doc)
  await converged(server, 'random', docs, '1,000 random edits')
  const reference = new Y.Doc()
  for (const u of local) Y.applyUpdate(reference, u)
  assert.deepEqual(content(docs[0], roots), content(reference, roots), 'the clients against yjs in one process')
  assert.deepEqual(Y.encodeStateVector(docs[0]), Y.encodeStateVector(reference))
})

// edit makes one random change to doc's text, map or array.
function edit (doc, rand) {
  const text = doc.getText('text')
  const map = doc.getMap('map')
  const array = doc.getArray('array')
  switch (rand.int(6)) {
    case 0:
    case 1:
      text.insert(rand.int(text.length + 1), rand.pick(['a', 'bc', 'déf', '🙂', ' ']))
      break
    case 2:
      if (text.length > 0) {
        const at = rand.int(text.length)
        text.delete(at, Math.min(1 + rand.int(3), text.length - at))
      }
      break
    case 3:
      map.set(rand.pick(['x', 'y', 'z', 'w']), rand.pick([1, 'two', { three: 3 }, [4], null, true]))
      break
    case 4:
      if (map.size > 0 && rand.int(2) === 0) map.delete(rand.pick([...map.keys()]))
      else array.insert(rand.int(array.length + 1), [rand.int(1000)])
      break
    default:
      if (array.length > 0) array.delete(rand.int(array.length))
      else array.push(['first'])
  }
}
