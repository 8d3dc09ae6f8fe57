// Package cluster runs party's rooms on many nodes over NATS: each room is
// owned by one node at a time through a lease in a JetStream key-value
// bucket ([Owners], [Lease]), any node serves any client by relaying to the
// owner ([Join], [Node]), and a [Store], a storage.Provider and
// storage.AlarmStore on JetStream whose writes are fenced by the owner's
// lease, makes a room's storage and alarm follow it to whichever node owns
// it next. NATS is the engine: there is no consensus
// or discovery protocol of our own. It is a module of its own (party/cluster)
// so that the core keeps its two dependencies.
//
// # What is guaranteed
//
//   - At most one live owner per room. Of any number of concurrent claims,
//     on any nodes, exactly one succeeds; a lease is valid (Lease.Valid) only
//     until it could have expired, given the assumptions below, so a node
//     stops acting as owner before another node can claim the room.
//   - Fencing. Every claim has a token greater than all earlier ones. Once a
//     newer owner has opened a room's storage, every write of an older owner
//     fails with ErrFenced and changes nothing, whatever the clocks did; the
//     same holds for the room's alarm once the newer owner has written it.
//   - Storage as storage.FileStore documents it: each Put, Delete, Write (a
//     whole Batch) or DeleteAll is applied all or nothing, visible to every
//     handle of the room on the node as soon as it returns, and durable once
//     it returns nil, as far as the stream is: with Replicas 1 the data is on
//     one NATS server's disk (it survives the death of any party node and a
//     restart of that server, not the loss of its disk); with 3, on a
//     cluster of NATS servers, every acknowledged write survives the loss of
//     any one server. Replication is JetStream's job.
//   - The window during a move: between the old owner's last valid instant
//     and the new owner's claim, nobody owns the room (for a lease that was
//     not released: up to Margin plus the server's lateness in expiring it;
//     for a release: none). Writes of the old owner made before the new
//     owner's Open are kept; the new owner's Open reads them all.
//
// Not guaranteed: reads are served from the node's memory and are not
// fenced (a stale owner reads what it last saw; check Lease.Valid); a value
// is also limited by the NATS server's max_payload (1 MiB by default; set it
// to 17 MiB or more for storage.MaxValueLen), since a write is one message.
//
// # Leases
//
// A room's lease is the key EncodeName(party)+"."+EncodeName(room) of a
// bucket with History 1 and a bucket TTL. [Owners.Claim] creates the key if
// absent (JetStream's expected-last-subject-sequence 0), so that of any
// number of concurrent claims exactly one succeeds; the others learn the
// holder's node name (*[HeldError]) to relay to it. The winner's revision
// (the stream sequence of the claim) is the lease's fencing token: every
// later claim of any room has a greater one.
//
// The lease is renewed every TTL/3 with Update(key, value, lastRevision); an
// update restarts the message's age, so the server removes the key TTL after
// the last renewal it stored. (A per-key TTL is not used: Update drops it.)
//
// # Stop before expiry
//
// Let s be the local monotonic time at which the last successful renewal (or
// the claim) was sent. The server stored it no earlier than s, and removes it
// no earlier than TTL after storing it, measured by its own clock; only then
// can another node's create succeed. This node declares the lease lost at
// s + TTL - Margin on its own monotonic clock (Lease.Lost closes, Lease.Valid
// turns false). With ρ a bound on the rate difference of the two clocks, the
// lease stops here before anyone else can hold it as long as
// Margin > ρ·TTL + the time the room needs to stop; the default Margin,
// TTL/4, allows a rate error of 10 % with 15 % of the TTL left to stop. The
// assumptions: the server's clock does not jump forward (NTP slews it), the
// server never expires a message early (it may expire it late, which only
// delays the next owner), the bucket is not deleted and recreated (which
// would restart revisions, and with them the fencing tokens), and this
// process is not paused between checking Valid and acting on it — the one gap
// that fencing, not timing, must close. Lost is closed by a timer, which can
// fire late under load; Valid reads the clock, and cannot.
//
// A renewal whose answer is lost may have landed; the next one then fails on
// the revision, and the lease reads the key: if it still holds this claim
// (its nonce), the lease adopts its revision and keeps the older send time.
//
// [Lease.Release] closes Lost first, then deletes the key only if it still
// holds the lease's last revision, so that a stale owner cannot delete a newer
// claim; the room can be claimed at once instead of after the TTL.
//
// # Storage
//
// [Store] keeps every room in one stream (StoreConfig.Stream), each room on
// its own subject, Subject.<party>.<room>. A room's state is the replay of
// its subject's records, in order: a write record (the operations of one
// Put, Delete or Batch, encoded in one message, so a batch is all or nothing
// because a message is), a snapshot (the whole state, published with a
// subject rollup, which makes the server drop every earlier record at once),
// or a fence (a new owner's token and nothing else). Open replays the
// subject into an in-memory index, which serves reads; a write returns once
// the server has stored its record, and is then applied to the index.
// Streams, not a key-value bucket with a key per storage key, because a
// JetStream message is the unit the server applies atomically: a batch over
// many keys would need the server's batch publishing and a key encoding for
// storage keys (any bytes, up to 2 KiB), while one subject per room keeps the
// room's history, its atomicity and its fencing in one place.
//
// Write reads a batch's operations with storage.Batch.Ops and records its
// net effect (each key once, its last operation; see batchOps): O(operations)
// a batch.
//
// # Fencing: why it cannot race
//
// Every record is published with JetStream's expected last subject sequence:
// the sequence of the last record of the room's subject that the writer knows
// of. The server checks it and appends the record in one step under the
// stream's lock (the check KV's own Create and Update rely on), so
// of two writers with the same expectation at most one succeeds, and a writer
// whose knowledge is behind fails. A new owner, with token T greater than any
// token on the subject, replays the subject to its last record N and appends
// a fence with token T expecting N (retrying the replay if a record landed
// in between). From then on every successful append must expect the fence's
// sequence or a later one, which only a writer that has read the fence can
// know; the old owner has not (it keeps N or earlier), so each of its writes
// fails, and it reads the subject's last record to say why: a token above its
// own, ErrFenced. An owner that opens a room whose subject holds a token
// above its own fails at Open. A message id (a nonce of the load and the
// expected sequence) makes a publish retried by the client a duplicate the
// server acknowledges rather than a conflict; a write whose outcome is
// unknown (a timeout) makes the next call replay the subject first.
//
// With StoreConfig.Token set to Owners.Token, each write also checks that
// this node's lease is still valid and has the token the room was opened
// with: a node stops writing at its lease's deadline, with no round trip,
// before any other node can claim the room. Fencing covers what timing
// cannot: a process paused between that check and the publish.
//
// Alarms are kept in a key-value bucket (StoreConfig.AlarmBucket), a key per
// room, so that any node lists them all (Alarms) and the next owner of a room
// finds its alarm. Each SetAlarm is a compare-and-set on the key's revision
// that records the writer's token, and refuses if the stored token is newer;
// a cleared alarm stays as a value without a time (a few bytes a room), so
// that it keeps fencing.
//
// # Nodes
//
// [Join] makes a party.Host one node of a cluster: it sets the Host's
// Placer (the node) and Storage (a Store fenced by the node's leases). The
// application's Server code does not change: the guide's chat runs on a
// cluster as written.
//
// Placement. A room's first turn on a node asks the node where it runs
// (Node.Place): the node claims it (Owners.Claim) and runs it, or learns
// the holder. If the holder is alive (heard within 3 heartbeats; a node
// publishes one on Prefix.alive every min(TTL/10, 1 s)), the room on this
// node is a relay to it; if the holder is gone, its lease expires within
// the TTL and Place claims again every 50 ms until then.
//
// Relaying: any node serves any client. The node a client reached keeps
// its socket, and everything party does for sockets there (keepalive, send
// queues, back-pressure, limits) still applies. Each node subscribes once,
// to Prefix.node.<name>; a message between nodes names the room, the
// owner's token and the connection (the holding node's name and a sequence
// number it gave the connection, so that a client reconnecting with the
// same id is never confused with its old socket). Before a client's upgrade
// is answered, its node asks the owner to join it (Relay.Admit): the owner
// runs party.Host.JoinRemote (OnConnect sees the client's URL, headers and
// remote address, not values BeforeConnect put in the request's context:
// put those in a header), answers "joined" before OnConnect runs, and only then
// does the client's socket open: open means joined, across nodes. A
// client's messages go to the owner in the order read, on one NATS
// connection (NATS keeps a publisher's order), and the owner hands them to
// the room one at a time in that order. At most 256 messages of one
// connection are in flight: the holding node then waits for the owner's
// credit before reading on, so a flood is slowed at its TCP socket rather
// than queued on the owner. Credit is a running count of the connection's
// messages handled, so a lost credit is made up for by the next; a node
// that has waited a second for one asks the owner for its count. A sender
// waits as long as the owner's room holds it back (a slow handler, a slow
// reader), as it would on one node; it is not closed for it.
//
// Fan-out at the edge. The owner's Broadcast sends one NATS message per
// node that holds members of the room, with the exclusion list; that node
// writes to its own sockets. What the owner sends a member (Send, Close)
// goes to its node, in the order the room did it.
//
// Failover. A node killed without warning stops renewing: its rooms have no
// owner once their leases expire, within the TTL (DefaultLeaseTTL, 5 s; the
// Config.TTL option). The other nodes find it gone after 3 missed
// heartbeats and close the clients they held in its rooms with 1012
// (StatusServiceRestart, reason "room moved"): clients are not re-homed
// under their sockets, they reconnect (partysocket and party's Go client do,
// with the same id) to any node, where the room is placed anew; the
// connection waits in its upgrade until the dead node's lease expires and a
// node claims the room, whose Store.Open fences the dead node's storage.
// What the client sees: a close with 1012, then a reconnect that opens once
// the room runs again, within TTL plus a heartbeat's detection after the
// kill. Nothing written to storage before the kill is lost (a write returns
// once JetStream has stored it).
//
// A node that cannot renew (cut off from NATS, or paused) drops its rooms
// when its lease's validity ends (Lease.Lost, at TTL - Margin after the last
// renewal), before the lease can expire: their connections are closed with
// 1012 and no handler of theirs runs again. A handler already running at
// that moment runs to its end (Go cannot stop it); its storage writes are
// refused (the Store checks the lease before each write, and the next
// owner's fence refuses them after).
//
// Handover. Node.Shutdown tells the other nodes it is leaving (they stop
// relaying to it at once), shuts its Host down (its clients, and the clients
// of its rooms held elsewhere, get 1012 and reconnect), and releases its
// leases, so that the rooms are claimed at once elsewhere, without waiting
// for the TTL.
//
// Alarms follow the room: they are kept in the Store's alarm bucket; a node
// that claims a room schedules its alarm when the room starts, and at Join
// and whenever a node is gone, each node starts the rooms with an alarm that
// no node owns.
//
// Cross-room calls. HTTP requests to a room (PartySocket.fetch,
// party.Host.Fetch, party.Room.Fetch) reach its owner from any node: the
// relay forwards them (bodies up to 1 MiB) and answers 502 if the owner
// does not answer within JoinTimeout. A background job broadcasts to a room
// cluster-wide with party.Host.Room(party, room).Broadcast on a node that
// runs or relays the room (a relay room forwards it to the owner, which
// sends it to every node), or with Node.Broadcast on any node.
// party.Host.Call and party.Room.Call run a Go function in the room's turn,
// which cannot travel: on a node that does not run the room they return an
// error wrapping party.ErrElsewhere. A cycle of Fetches between rooms on
// different nodes (A's handler fetches B, whose handler fetches A) is found
// at once: a Fetch from a handler carries the rooms waiting for it (the
// Party-Call-Chain header), so the Fetch that would close the cycle returns
// party.ErrDeadlock; a forwarded request naming its own room among them is
// answered 508 Loop Detected. A relay forwards requests without its room's turn, so the
// clients it holds are not held up while the owner answers.
//
// # Bad input between nodes
//
//   - A message for a connection the owner does not know (it left, or its
//     node was declared gone and came back): the owner tells the holding
//     node to close it with 1012, and the client reconnects.
//   - A message from a node that no longer owns the room (its token is
//     older than the relay's), or from another node than the owner: dropped
//     and logged at Warn. A newer token, or the owner's "gone", makes the
//     relay room drop (its clients get 1012 and reconnect).
//   - A join for a room the node does not own (any more) is refused: the
//     client's upgrade gets 503, or, if the relay room was lost meanwhile,
//     the room is placed anew and the client joins there.
//   - Malformed messages and unknown kinds: dropped and logged at Warn.
//   - NATS going away: leases cannot be renewed, so every node drops its
//     rooms (clients get 1012) and nodes find each other gone; upgrades fail
//     until NATS is back (1011, the placement's error). NATS coming back:
//     the nodes reconnect (nats.go does, with its reconnect options) and
//     rooms are placed again on the next connection.
//
// # Limits
//
// A client's message crosses between nodes as one NATS message: Join lowers
// a default Host.ReadLimit to the server's max_payload less 4 KiB.
//
// Back-pressure crosses nodes both ways. When the owner's room holds its
// readers back (a member over its high-water mark; see
// party.Host.SendQueueMessages), it stops handling relayed messages too, its
// credit stops, and the nodes holding the senders stop reading them: a flood
// is slowed at the flooder's socket, wherever it is. A member held by
// another node counts too: while a socket over its high-water mark is held
// by a relay, its node tells the owner which of its clients are congested,
// at once and every 250 ms while any is, and the owner holds its room back
// as for a member of its own (party.Remote.Congested); a report that stops
// coming is taken as clear after a second, since NATS may lose the one that
// clears. The slow reader's own node judges it (its Host's
// SlowClientTimeout) and closes it, and the room goes on at the others'
// pace, as on one node.
//
// Reads from a Store are not fenced (see above).
package cluster
