package party

import (
	"strconv"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Host's counters, taken by [Host.Stats]: what an
// operator watches (rooms, connections, traffic, why connections closed,
// refusals, handler panics and durations), per party. The counters start
// at zero when the Host is created (or a party registered) and only the two
// gauges, Rooms and Connections, ever go down.
//
// Each figure is read atomically, but not all of them at the same instant:
// a snapshot taken under load may see a message counted in MessagesReceived
// and not yet in BytesReceived, or a connection opened and not yet counted
// in Connections. Once the Host is quiet, a snapshot is exact.
type Stats struct {
	// Parties holds every party registered on the Host (DefaultParty
	// included), by name, whether or not it has seen any traffic.
	Parties map[string]PartyStats

	// UpgradesRefused counts, by HTTP status, the WebSocket upgrades refused
	// whose URL names no registered party: a path with no room or an unknown
	// party (404), and, under an unknown party, a malformed room id (400) or
	// any upgrade during Shutdown (503). It holds only statuses seen at least
	// once.
	UpgradesRefused map[int]uint64
}

// PartyStats are the counters of one party, summed over its rooms. Every
// counter but the two gauges only grows. Nil maps are empty.
type PartyStats struct {
	// Rooms is the number of the party's rooms in memory now: created by a
	// request, a Call or an alarm, and not yet dropped (an idle room counts
	// until Host.IdleTimeout drops it).
	Rooms int64

	// Connections is the number of the party's WebSockets open now: upgraded
	// (the 101 sent) and not yet ended. A connection that is closing counts
	// until its socket is gone and its OnClose has run.
	Connections int64

	// ConnectionsOpened counts the WebSocket upgrades that succeeded (the
	// 101 sent), and ConnectionsClosed the connections that ended, by the
	// first reason each closed for; every reason is present, zero included.
	// Once the Host is quiet, ConnectionsOpened is Connections plus the sum
	// of ConnectionsClosed.
	ConnectionsOpened uint64
	ConnectionsClosed map[CloseReason]uint64

	// MessagesReceived counts the messages read in full from clients, and
	// BytesReceived their payload bytes (not the frames' headers). A message
	// that passes Host.ReadLimit is not read in full and not counted; a text
	// message that is not valid UTF-8 is counted, and then closes its
	// connection. Messages that arrive on a closing connection are counted
	// and dropped.
	MessagesReceived uint64
	BytesReceived    uint64

	// MessagesSent counts the messages written to sockets (handed to the
	// kernel), and BytesSent their payload bytes; pings, pongs and close
	// frames are not messages. A message accepted by Send is counted once
	// it is written, with each recipient of a Broadcast counting once; a
	// write that fails counts none of its batch, and messages dropped from
	// the queue of a connection that closes are not counted.
	MessagesSent uint64
	BytesSent    uint64

	// SendsRefused counts the calls to [Connection.Send] (one per recipient
	// of a Broadcast) that returned ErrConnectionClosed or ErrSendQueueFull.
	SendsRefused uint64

	// UpgradesRefused counts, by HTTP status, the WebSocket upgrades to the
	// party refused with a plain HTTP response: 400 (a malformed room id,
	// connection id or handshake), 401 or another status (BeforeConnect),
	// 403 (an origin not in Host.OriginPatterns), 405 (not a GET), 426 (a
	// WebSocket version other than 13), 503 (during Shutdown, or over
	// MaxRooms or MaxConnectionsPerRoom). A status outside
	// 400–599, which only an [HTTPError] from a hook can carry, is counted
	// under the key 0. It holds only statuses seen at least once. Plain HTTP
	// requests refused are not counted, nor is the rare handshake that
	// coder/websocket's Accept refuses after these checks have passed.
	UpgradesRefused map[int]uint64

	// HandlerPanics counts the panics recovered from handlers, by handler
	// name: "OnStart" (a panic in the party's factory counts here too),
	// "OnConnect", "OnMessage", "OnClose", "OnError", "OnRequest",
	// "OnAlarm", "ConnectionTags", and "Call" for the functions given to
	// Call. Every name is present, zero included.
	HandlerPanics map[string]uint64

	// HandlerDurations holds, by the same handler names, how long handler
	// calls took, panics included (OnStart: the method, not the factory). It
	// holds only handlers called at least once. Timing costs each handler
	// call two reads of the monotonic clock and two atomic adds: 90 ns on
	// the 2-core machine of bench/runs.
	HandlerDurations map[string]Histogram
}

// Histogram counts durations in fixed buckets, as a Prometheus histogram.
// The zero value has observed nothing.
type Histogram struct {
	// Count is the number of durations observed, and Sum their total.
	Count uint64
	Sum   time.Duration

	// Buckets are cumulative, by increasing upper bound: 10µs, 100µs, 1ms,
	// 10ms, 100ms, 1s and 10s. Each counts the durations at or under its
	// bound; Count is the implicit last bucket, with no bound.
	Buckets []Bucket
}

// Bucket is one bucket of a [Histogram].
type Bucket struct {
	UpperBound time.Duration // inclusive
	Count      uint64        // durations at or under UpperBound
}

// CloseReason says why a connection closed, for
// [PartyStats.ConnectionsClosed]: the first of these that happened to it.
// The zero value is not a reason.
type CloseReason uint8

// The reasons a connection closes, with the close code it gets.
const (
	ClosedByClient      CloseReason = iota + 1 // the client's close frame came first, whatever its code
	ClosedByServer                             // the application called Connection.Close
	ClosedReplaced                             // a newer connection with the same id joined (StatusReplaced)
	ClosedSlow                                 // its send queue overflowed, or stayed over its high-water mark for SlowClientTimeout: a client that reads too slowly or not at all (1008)
	ClosedTooBig                               // a message over Host.ReadLimit (1009)
	ClosedInvalidUTF8                          // a text message that is not valid UTF-8 (1007)
	ClosedKeepalive                            // no pong within Host.PingTimeout (1006)
	ClosedWriteTimeout                         // a write took longer than Host.WriteTimeout (1006)
	ClosedBroken                               // the socket broke, or a write failed, without a close frame (1006)
	ClosedShutdown                             // Host.Shutdown (1012)
	ClosedInternalError                        // OnStart failed, or ConnectionTags or OnConnect panicked (1011)
	ClosedMoved                                // its room moved to another node (Placement.Lost, 1012)

	numCloseReasons = iota + 1 // the size of an array indexed by CloseReason
)

// String returns the reason's name in snake case ("client", "too_big"...),
// as the metrics label it, or "CloseReason(n)" for a value that is not a
// reason.
func (r CloseReason) String() string {
	names := [numCloseReasons]string{"", "client", "server", "replaced", "slow", "too_big", "invalid_utf8",
		"keepalive", "write_timeout", "broken", "shutdown", "internal_error", "moved"}
	if r == 0 || r >= numCloseReasons {
		return "CloseReason(" + strconv.Itoa(int(r)) + ")"
	}
	return names[r]
}

// Stats returns a snapshot of the Host's counters. It is safe to call from
// any goroutine, at any time (also during and after Shutdown), and takes no
// lock the Host serves with: it loads atomic counters and allocates the
// snapshot's maps. Counting costs the serving paths two atomic adds per
// message received, two per batch of messages written to a socket, and the
// handler timing described in [PartyStats].
func (h *Host) Stats() Stats {
	s := Stats{Parties: make(map[string]PartyStats, len(h.parties)), UpgradesRefused: h.unrouted.snapshot()}
	for name, f := range h.parties {
		s.Parties[name] = f.stats.snapshot()
	}
	return s
}

// counters are one party's counters, kept in its roomFactory, so that
// counting takes no lookup. Atomics take no lock: they sit outside the lock
// order. The groups written by readers and by writers are on cache lines of
// their own.
type counters struct {
	rooms       atomic.Int64
	connections atomic.Int64
	opened      atomic.Uint64
	_           [64]byte
	msgsIn      atomic.Uint64
	bytesIn     atomic.Uint64
	_           [64]byte
	msgsOut     atomic.Uint64
	bytesOut    atomic.Uint64
	_           [64]byte
	refusedSend atomic.Uint64
	closed      [numCloseReasons]atomic.Uint64
	panics      [numHandlers]atomic.Uint64
	durations   [numHandlers]histogram
	refused     refusals
}

// received counts one message of n payload bytes read from a client.
func (s *counters) received(n int) {
	s.msgsIn.Add(1)
	s.bytesIn.Add(uint64(n))
}

// sent counts a batch of msgs messages of n payload bytes in all, written.
func (s *counters) sent(msgs, n int) {
	s.msgsOut.Add(uint64(msgs))
	s.bytesOut.Add(uint64(n))
}

// connectionEnded counts a connection that was open, gone for reason why.
func (s *counters) connectionEnded(why CloseReason) {
	s.connections.Add(-1)
	s.closed[why].Add(1)
}

func (s *counters) snapshot() PartyStats {
	ps := PartyStats{
		Rooms:             s.rooms.Load(),
		Connections:       s.connections.Load(),
		ConnectionsOpened: s.opened.Load(),
		ConnectionsClosed: make(map[CloseReason]uint64, numCloseReasons-1),
		MessagesReceived:  s.msgsIn.Load(),
		BytesReceived:     s.bytesIn.Load(),
		MessagesSent:      s.msgsOut.Load(),
		BytesSent:         s.bytesOut.Load(),
		SendsRefused:      s.refusedSend.Load(),
		UpgradesRefused:   s.refused.snapshot(),
		HandlerPanics:     make(map[string]uint64, numHandlers),
		HandlerDurations:  make(map[string]Histogram),
	}
	for r := ClosedByClient; r < numCloseReasons; r++ {
		ps.ConnectionsClosed[r] = s.closed[r].Load()
	}
	for id := range numHandlers {
		ps.HandlerPanics[id.String()] = s.panics[id].Load()
		if hist := s.durations[id].snapshot(); hist.Count > 0 {
			ps.HandlerDurations[id.String()] = hist
		}
	}
	return ps
}

// refusals counts refused upgrades by HTTP status: slot status-399 for
// 400–599, slot 0 for any other status.
type refusals [201]atomic.Uint64

func (f *refusals) add(status int) {
	i := status - 399
	if i < 1 || i >= len(f) {
		i = 0
	}
	f[i].Add(1)
}

func (f *refusals) snapshot() map[int]uint64 {
	m := make(map[int]uint64)
	for i := range f {
		n := f[i].Load()
		if n == 0 {
			continue
		}
		status := 0
		if i > 0 {
			status = i + 399
		}
		m[status] = n
	}
	return m
}

// Handler durations are counted in buckets whose upper bounds grow tenfold
// from firstBound; the last bucket has no bound.
const (
	firstBound  = 10 * time.Microsecond
	boundedBkts = 7 // 10µs ... 10s
)

// histogram counts the durations of one handler of one party.
type histogram struct {
	buckets [boundedBkts + 1]atomic.Uint64 // not cumulative; the last is +Inf
	sum     atomic.Int64                   // nanoseconds
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for bound := firstBound; i < boundedBkts && d > bound; bound *= 10 {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

func (h *histogram) snapshot() Histogram {
	var s Histogram
	s.Buckets = make([]Bucket, boundedBkts)
	bound := firstBound
	for i := range boundedBkts {
		s.Count += h.buckets[i].Load()
		s.Buckets[i] = Bucket{UpperBound: bound, Count: s.Count}
		bound *= 10
	}
	s.Count += h.buckets[boundedBkts].Load()
	s.Sum = time.Duration(h.sum.Load())
	return s
}
