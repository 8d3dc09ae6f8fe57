// Package cluster is the first slice of running party's rooms on many nodes
// over NATS: the ownership of rooms by leases in a JetStream key-value
// bucket ([Owners], [Lease]). NATS is the engine: there is no consensus or
// discovery protocol of our own.
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
package cluster
