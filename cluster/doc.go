// Package cluster is the first slice of running party's rooms on many nodes
// over NATS: each room owned by one node at a time through a lease in a
// JetStream key-value bucket ([Owners], [Lease]), and a [Store], a
// storage.Provider and storage.AlarmStore on JetStream whose writes are
// fenced by the owner's lease, so that a room's storage and alarm follow it
// to whichever node owns it next. NATS is the engine: there is no consensus
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
// # Not built yet
//
// The core's seam (a Host that asks a cluster where a room lives), relaying
// client frames to the owner, broadcast fan-out across nodes, failover of
// connections, graceful handover of a running room, an example and
// benchmarks. A design for them follows.
//
// # Next steps
//
// The seam. The core needs one hook: before it builds a room, ask a Placer
// (an optional field of the Host) whether this node may run it. The cluster's
// Placer calls Owners.Claim: on success the Host builds the room with a Store
// opened under the lease's token and watches Lease.Lost, dropping the room
// (closing its connections with 1012, so that clients reconnect) when it
// fires; on ErrHeld the Host hands the connection to a relay instead of a
// room. The Store's Token function is Owners.Token, so writes stop with the
// lease.
//
// Relaying. Each node subscribes to party.node.<node> (a queue of one). A
// non-owner node keeps the client's WebSocket and forwards its frames as NATS
// messages to the owner's subject, with a connection id (partysocket's _pk),
// the frame kind and bytes; the owner runs a virtual Connection whose Send
// publishes back to the relaying node's subject, in order per connection (one
// subject per pair of nodes keeps NATS's per-publisher ordering). Join,
// leave and close are messages too. A relayed connection whose owner's lease
// is lost (a KV watch on the owners bucket tells) is closed with 1012: the
// client reconnects and lands on the new owner or a relay to it.
//
// Fan-out. A broadcast to a room with relayed members is one NATS message per
// node that has members (not one per member), carrying the exclusion list;
// each node delivers it to its local sockets.
//
// Failover and handover. A node that dies stops renewing; its leases expire
// within the TTL and the next connection for each room claims it elsewhere,
// whose Open fences the dead node's storage. A graceful shutdown drains each
// room (OnClose for its connections), then Lease.Release, so that the next
// owner claims at once. Alarms: the owner's Host calls ResumeAlarms for the
// rooms it claims; a node that lists an alarm due for a room nobody owns
// claims the room to run it.
package cluster
