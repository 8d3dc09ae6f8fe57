// Package party brings PartyKit's programming model to any Go web application:
// rooms of WebSocket connections, each room driven by one stateful server
// object that you write as a plain Go struct.
//
// Mount a [Host] in the mux you already have and write a type with the
// handler methods you need:
//
//	type Chat struct{ room *party.Room }
//
//	func (s *Chat) OnConnect(c *party.Connection, r *http.Request) {
//		c.Send(party.Text("Welcome, " + c.ID()))
//		s.room.Broadcast(party.Text("Heads up! "+c.ID()+" joined the party!"), c.ID())
//	}
//	func (s *Chat) OnMessage(msg party.Message, sender *party.Connection) { s.room.Broadcast(msg, sender.ID()) }
//	func (s *Chat) OnClose(c *party.Connection) { s.room.Broadcast(party.Text("So sad! " + c.ID() + " left the party!")) }
//
//	h := party.Handler(func(r *party.Room) party.Server { return &Chat{room: r} })
//	mux.Handle("/party/", h)   // the PartyKit guide's URLs: /party/{room}
//	mux.Handle("/parties/", h) // partysocket's default URLs: /parties/main/{room}
//
// The npm partysocket client connects unchanged: new PartySocket({host, room})
// opens /parties/main/{room}?_pk={id}.
//
// # Handlers
//
// Each handler is an optional interface ([OnConnectHandler],
// [OnMessageHandler]...), found once when a room is built. A method with a
// handler's name and another signature implements nothing: it is logged
// when the party builds its first room, and a compile-time check catches it
// before that:
//
//	var _ party.OnMessageHandler = (*Chat)(nil)
//
// # Rooms
//
// A room is created by the first request for its id: the factory builds its
// [Server], then OnStart runs (once; if it fails, the next request retries).
// When its last connection has left and no request is in flight, the room is
// dropped after [Host.IdleTimeout]; the next request for the same id builds a
// fresh one.
//
// # Concurrency
//
// All handler calls of one room (OnStart, OnConnect, OnMessage, OnClose,
// OnError, OnRequest, OnAlarm, ConnectionTags, and the functions given to
// Call) run one at a time, never concurrently, so a Server needs no locks
// for its own fields. Different rooms run in parallel. A connection's OnConnect returns before its first OnMessage, and
// the messages of one sender are handled in the order they were sent.
// [Room.Broadcast], [Room.GetConnections], [Connection.Send] and
// [Connection.Close] are safe to call from any goroutine, inside or outside
// handlers, and never block on the network.
//
// # Metrics
//
// [Host.Stats] returns what an operator watches, per party: rooms,
// connections, messages and bytes in and out, sends refused, connections
// closed by [CloseReason], upgrades refused by HTTP status, handler panics
// and handler durations. The module party/metrics serves them to Prometheus.
package party

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"party/storage"
)

// DefaultParty is the name of the party built by the factory given to
// [Handler]. partysocket connects to it at /parties/main/{room}, and the
// PartyKit guide's /party/{room} URLs reach it too.
const DefaultParty = "main"

// Defaults for the [Host] fields whose zero value means "use the default".
const (
	DefaultIdleTimeout       = 10 * time.Second
	DefaultReadLimit         = 1 << 20 // 1 MiB, as PartyKit
	DefaultSendQueueMessages = 1024
	DefaultSendQueueBytes    = 4 << 20 // 4 MiB
	DefaultWriteTimeout      = 10 * time.Second
	DefaultPingInterval      = 30 * time.Second
	DefaultPingTimeout       = 10 * time.Second
	DefaultSlowClientTimeout = 5 * time.Second
	DefaultPrefix            = "parties"
)

// maxIDLength is the longest room or connection id accepted, in bytes as sent.
const maxIDLength = 256

// Lock order. A goroutine holding one of these may take the ones listed
// after it, never one listed before:
//
//  1. Room.turn, a room's handler turn: held by every handler call, and while
//     a connection joins. A handler's Room.Call waits for another room's turn
//     while holding its own: the cycle check under Host.callMu
//     (Room.waitingFor) refuses the wait that would close a cycle.
//  2. Room.alarmMu: orders a room's alarm changes in its AlarmStore and in
//     its timer.
//  3. Room.life: the room's references, its idle and alarm timers, whether
//     it is dropped (dropping closes its Storage, whose locks are its own).
//  4. Host.mu, Host.callMu, Room.setMu and Connection.mu are leaves: none is
//     held while taking another lock of the package, but for Room.flow.mu,
//     taken under Connection.mu (a member's queue crossing its high-water
//     mark), which takes nothing. (Connection.mu is held
//     around peeks at the socket's file descriptor, which take no lock.)
//
// The counters of Host.Stats (stats.go) are atomics: they take no lock and
// may be touched under any of these.

// Host serves the rooms of one or more parties over HTTP. Create it with
// [Handler], set its fields before it serves its first request, and mount it
// in any mux or router. The zero value of every field means its default.
// Fields must not be changed once the Host is serving.
type Host struct {
	// IdleTimeout is how long a room stays in memory after its last
	// connection left and its last request ended. Zero means
	// DefaultIdleTimeout (10s); a negative value drops the room at once.
	IdleTimeout time.Duration

	// ReadLimit is the largest incoming message, in bytes. A larger message
	// closes its connection with 1009 (StatusMessageTooBig). Zero means
	// DefaultReadLimit (1 MiB).
	ReadLimit int64

	// SendQueueMessages and SendQueueBytes bound each connection's outbound
	// queue (messages accepted by Send or Broadcast and not yet written to
	// the socket). A connection whose queue would pass either bound is
	// closed with 1008 (StatusPolicyViolation, reason "send queue full").
	// Zero means DefaultSendQueueMessages (1024) and DefaultSendQueueBytes
	// (4 MiB).
	//
	// A quarter of each is a connection's high-water mark. While a member
	// of a room has more queued than that, the room reads no message from
	// any member: TCP slows every sender to the pace of the room's readers,
	// so a flood from one client fills nobody's queue, and readers that keep
	// reading are never closed for it. Messages sent from outside the room's
	// handlers are not held back. See SlowClientTimeout for readers that
	// cannot keep up.
	SendQueueMessages int
	SendQueueBytes    int

	// SlowClientTimeout is how long a connection may stay over its
	// high-water mark (see SendQueueMessages) before it is closed with 1008,
	// reason "slow consumer": a client that reads slower than its room's
	// traffic, or not at all, while its room waits for it. The room then
	// goes on at the pace of the others. Zero means DefaultSlowClientTimeout
	// (5s).
	SlowClientTimeout time.Duration

	// RateLimit bounds the messages and bytes each connection may send (see
	// [RateLimit]); a connection over it is slowed, never closed. The zero
	// value, the default, means no limit: back-pressure already keeps a
	// flood from emptying a room, and any default rate would throttle
	// legitimate apps (cursor positions at 60 Hz, game state).
	RateLimit RateLimit

	// WriteTimeout bounds one write to a socket; a write that takes longer
	// drops the connection. Zero means DefaultWriteTimeout (10s).
	WriteTimeout time.Duration

	// PingInterval is how long a connection may stay silent (not a byte
	// from the client) before the server pings it; PingTimeout is how long
	// the pong may take. A connection that neither answers nor sends
	// anything meanwhile is dropped (its OnClose sees 1006), so a dead peer
	// is found within 2×PingInterval+PingTimeout. Zero means
	// DefaultPingInterval (30s) and DefaultPingTimeout (10s); a negative
	// PingInterval turns keepalive off.
	PingInterval time.Duration
	PingTimeout  time.Duration

	// OriginPatterns lists the origins allowed to open WebSockets across
	// origins, matched with path.Match against the Origin's host (or against
	// "scheme://host" when the pattern contains "://"). Requests from the
	// same host, and requests without an Origin header (non-browser clients),
	// are always allowed. Other browser requests get 403.
	OriginPatterns []string

	// Subprotocols lists the WebSocket subprotocols the server accepts; the
	// first one the client offers (partysocket's protocols option) that is in
	// the list is chosen.
	Subprotocols []string

	// Prefix is the first path segment of partysocket's URLs,
	// /{Prefix}/{party}/{room}. Zero means "parties", partysocket's default.
	// /party/{room} always reaches the default party.
	Prefix string

	// BeforeConnect, if set, runs before a WebSocket upgrade, outside the
	// room: it sees the party name, the room id and the request. Returning an
	// error refuses the upgrade: an *HTTPError with its status and message,
	// any other error with 401 and the error's text (as PartyKit's
	// onBeforeConnect). Returning a non-nil request replaces r for the rest
	// of the connection (use r.WithContext to hand values such as the
	// authenticated user to OnConnect). It may run concurrently with anything.
	//
	// With a Placer (party/cluster), BeforeConnect runs on the node the
	// client reached, and OnConnect may run on another: that one sees the
	// request's method, URL, headers and remote address, not its context.
	// Hand OnConnect what it needs in a header the hook sets (replacing
	// whatever the client sent under that name).
	BeforeConnect func(r *http.Request, party, room string) (*http.Request, error)

	// BeforeRequest is BeforeConnect for plain HTTP requests to a room.
	BeforeRequest func(r *http.Request, party, room string) (*http.Request, error)

	// MaxRooms caps the number of rooms in memory, and MaxConnectionsPerRoom
	// the connections of one room. A request over a cap gets 503 with a body
	// naming the cap. Zero means no limit.
	MaxRooms              int
	MaxConnectionsPerRoom int

	// Logger receives handler panics and dropped connections. Nil means
	// slog.Default().
	Logger *slog.Logger

	// Storage gives each room its key-value storage ([Room.Storage]) and,
	// if it is also a [storage.AlarmStore], keeps the rooms' alarms;
	// otherwise alarms are kept in memory. Nil means a [storage.MemoryStore]
	// of the Host's own: data and alarms survive a room being dropped and
	// built again, not a restart. Use a [storage.FileStore] for storage and
	// alarms that survive restarts (and call ResumeAlarms).
	Storage storage.Provider

	// Placer, if set, decides which node runs each room, for a Host that is
	// one node of several (the party/cluster module sets it); see [Placer].
	// Nil means this Host runs every room itself.
	Placer Placer

	storesOnce sync.Once            // chooses provider and alarmStore (see stores)
	provider   storage.Provider     // Storage, or memStore
	alarmStore storage.AlarmStore   // Storage if it is one, or memStore
	memStore   *storage.MemoryStore // keeps what Storage does not
	parties    map[string]*roomFactory
	unrouted   refusals // upgrades refused for no registered party (see Stats)
	rooms      sync.Map // roomKey -> *Room
	nrooms     atomic.Int64

	stopping   context.Context // canceled by Shutdown: ends the waits of Placer.Place
	stopPlaces context.CancelFunc

	callMu  sync.Mutex // guards Room.waitingFor
	mu      sync.Mutex // guards closing transitions and active
	closing atomic.Bool
	active  sync.WaitGroup // requests and connections in flight
	sweeper *sweeper
}

// Handler returns a Host whose default party ("main") builds each room's
// Server with factory. Register more parties with [Host.Party].
func Handler(factory func(*Room) Server) *Host {
	if factory == nil {
		panic("party: Handler called with a nil factory")
	}
	stopping, stop := context.WithCancel(context.Background())
	return &Host{parties: map[string]*roomFactory{DefaultParty: {build: factory}}, stopping: stopping, stopPlaces: stop}
}

// roomFactory builds the rooms of one party.
type roomFactory struct {
	build   func(*Room) Server
	checked sync.Once // reportMismatches ran on the first Server built
	stats   counters
}

// Party registers a named party, reached at /{Prefix}/{name}/{room}. It must
// be called before the Host serves its first request. Registering a name
// twice replaces the first factory.
func (h *Host) Party(name string, factory func(*Room) Server) {
	if name == "" || factory == nil {
		panic("party: Party needs a name and a factory")
	}
	h.parties[name] = &roomFactory{build: factory}
}

// Room returns the live room id of the named party, or nil if it is not in
// memory. The room may be dropped at any time after its last connection
// leaves; broadcasting into a dropped room reaches nobody.
func (h *Host) Room(party, id string) *Room {
	v, ok := h.rooms.Load(roomKey{party, id})
	if !ok {
		return nil
	}
	r := v.(*Room)
	if r.isDead() {
		return nil
	}
	return r
}

// Shutdown stops the Host: new requests get 503, every open connection is
// closed with 1012 (StatusServiceRestart, so partysocket reconnects, to the
// next instance if there is one) after the messages already queued for it,
// each connection's OnClose runs once, and rooms are dropped. It returns when
// nothing of the Host is left running, or with ctx's error when ctx ends
// first (remaining connections are then dropped without a close handshake).
// Call it after http.Server.Shutdown, which neither waits for nor closes
// hijacked connections: srv.Shutdown(ctx); h.Shutdown(ctx). It can be wired to
// http.Server.RegisterOnShutdown too, but srv.Shutdown does not wait for
// that, so the process must wait for h.Shutdown to return before it exits.
func (h *Host) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing.Store(true)
	h.mu.Unlock()
	h.stopPlaces()

	h.eachConnection(func(c *Connection) {
		c.closeAfterQueue(StatusServiceRestart, "server shutting down", nil, ClosedShutdown)
	})

	done := make(chan struct{})
	go func() { h.active.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		h.eachConnection(func(c *Connection) {
			if c.remote != nil { // its node did not answer: it leaves now
				c.remote.Leave(StatusServiceRestart, "server shutting down")
				return
			}
			c.abort(StatusServiceRestart, "server shutting down", nil, ClosedShutdown)
			// No close handshake: its close frame would wait behind a
			// write stuck on a client that does not read.
			c.sock.Close()
		})
		<-done
	}
	h.stopSweeper()
	h.rooms.Range(func(k, v any) bool {
		v.(*Room).drop()
		return true
	})
	return err
}

func (h *Host) eachConnection(f func(*Connection)) {
	h.rooms.Range(func(_, v any) bool {
		for _, c := range v.(*Room).snapshot() {
			f(c)
		}
		return true
	})
}

// enter registers a request in flight; it fails once Shutdown has begun.
func (h *Host) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing.Load() {
		return false
	}
	h.active.Add(1)
	return true
}

func (h *Host) leave() { h.active.Done() }

func (h *Host) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

func (h *Host) idleTimeout() time.Duration  { return orDefault(h.IdleTimeout, DefaultIdleTimeout) }
func (h *Host) writeTimeout() time.Duration { return orDefault(h.WriteTimeout, DefaultWriteTimeout) }
func (h *Host) pingInterval() time.Duration { return orDefault(h.PingInterval, DefaultPingInterval) }
func (h *Host) pingTimeout() time.Duration  { return orDefault(h.PingTimeout, DefaultPingTimeout) }
func (h *Host) slowClientTimeout() time.Duration {
	return orDefault(h.SlowClientTimeout, DefaultSlowClientTimeout)
}
func (h *Host) readLimit() int64 { return orDefault(h.ReadLimit, DefaultReadLimit) }
func (h *Host) sendQueueMessages() int {
	return orDefault(h.SendQueueMessages, DefaultSendQueueMessages)
}
func (h *Host) sendQueueBytes() int { return orDefault(h.SendQueueBytes, DefaultSendQueueBytes) }
func (h *Host) prefix() string      { return orDefault(h.Prefix, DefaultPrefix) }
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
