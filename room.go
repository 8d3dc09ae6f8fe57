package party

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"party/storage"
)

type roomKey struct{ party, id string }

// Room is one room of a party: the connections that share a room id, and the
// Server that drives them. A Room is created by the Host on the first request
// for its id; its methods are safe to call from any goroutine.
type Room struct {
	host     *Host
	key      roomKey
	factory  *roomFactory
	created  time.Time     // for the inspector
	received atomic.Uint64 // messages read from the room's connections, for the inspector

	// turn serializes every handler call of the room.
	turn turn
	// flow holds the room's read loops back while a member is congested
	// (flow.go).
	flow flow
	// waitingFor is the room whose turn this room's current handler waits
	// for in a Call (guarded by Host.callMu), to detect cycles.
	waitingFor *Room
	// callChain is, while the room serves a Fetch, the rooms waiting for
	// it (fetch.go), guarded by turn.
	callChain string
	server    Server
	handlers  handlers
	started   bool

	// Placement (placement.go), with a Host.Placer: placed once asked,
	// relay set if the room runs on another node, lost once this node must
	// stop running it. done is closed when the room is dropped.
	placed           bool
	relay            Relay
	lost             atomic.Bool
	relayed          atomic.Bool     // relay is set (for Broadcast, from any goroutine)
	lostCh           <-chan struct{} // Placement.Lost
	releasePlacement func()          // guarded by life
	done             chan struct{}
	watchingLost     bool // lostCh is watched (guarded by turn)

	// life guards the room's lifecycle: who uses it and whether it is dropped.
	life      sync.Mutex
	refs      int // requests and connections using the room
	conns     int // connections reserved or joined
	dead      bool
	idleTimer *time.Timer
	// The room's one alarm (see SetAlarm); a set alarm holds a reference.
	alarmAt    time.Time
	alarmTimer *time.Timer
	alarmGen   uint64          // numbers alarms, so a replaced one that fires anyway is ignored
	store      storage.Storage // the handle from the Host's Storage; nil until the room starts
	storeView  storage.Storage // what Storage returns: store, with Close refused
	alarmMu    sync.Mutex      // orders alarm changes in the AlarmStore and in the timer

	// set holds the joined connections; snap is a copy for iteration,
	// rebuilt after a change when somebody iterates.
	setMu sync.RWMutex
	set   map[string]*Connection
	snap  atomic.Pointer[[]*Connection]
}

// ID returns the room id as the client sent it in the URL path, still
// percent-encoded (as PartyKit's room.id).
func (r *Room) ID() string { return r.key.id }

// Party returns the name of the room's party ("main" for the default one).
func (r *Room) Party() string { return r.key.party }

// GetConnection returns the open connection with the given id, or nil.
func (r *Room) GetConnection(id string) *Connection {
	r.setMu.RLock()
	c := r.set[id]
	r.setMu.RUnlock()
	if c == nil || c.isClosing() {
		return nil
	}
	return c
}

// ConnectionCount returns the number of connections in the room, counting
// those that are closing but have not left yet.
func (r *Room) ConnectionCount() int {
	r.setMu.RLock()
	defer r.setMu.RUnlock()
	return len(r.set)
}

// snapshot returns the joined connections. The slice is shared: callers must
// not modify it.
func (r *Room) snapshot() []*Connection {
	if s := r.snap.Load(); s != nil {
		return *s
	}
	r.setMu.Lock()
	defer r.setMu.Unlock()
	if s := r.snap.Load(); s != nil {
		return *s
	}
	s := make([]*Connection, 0, len(r.set))
	for _, c := range r.set {
		s = append(s, c)
	}
	r.snap.Store(&s)
	return s
}

// add puts c in the set, replacing a connection with the same id.
func (r *Room) add(c *Connection) {
	r.setMu.Lock()
	defer r.setMu.Unlock()
	r.set[c.id] = c
	r.snap.Store(nil)
}

// remove takes c out of the set, unless a newer connection took its id.
func (r *Room) remove(c *Connection) {
	r.setMu.Lock()
	defer r.setMu.Unlock()
	if r.set[c.id] == c {
		delete(r.set, c.id)
		r.snap.Store(nil)
	}
}

// join makes c a member of the room: tags, replacement of an older
// connection with the same id, then OnConnect. The caller holds the turn. It
// reports false if c failed before joining (ConnectionTags panicked), in which
// case c is closing with 1011 and gets no OnClose.
func (r *Room) join(c *Connection, req *http.Request) bool {
	if t := r.handlers.tagger; t != nil {
		var tags []string
		if err := r.runHandler(handlerConnectionTags, c, func() { tags = t.ConnectionTags(c, req) }); err != nil {
			c.closeAfterQueue(StatusInternalError, err.Error(), err, ClosedInternalError)
			return false
		}
		for _, tag := range tags {
			if tag != "" && !slices.Contains(c.tags, tag) {
				c.tags = append(c.tags, tag)
			}
		}
	}
	// An older connection with the same id leaves before c joins, as if it
	// had closed before c arrived: its OnClose (the guide's "left" notice)
	// does not reach c ahead of c's welcome. A reconnecting client then sees
	// the same thing whether or not the server noticed its old socket die
	// first.
	r.setMu.RLock()
	old := r.set[c.id]
	r.setMu.RUnlock()
	if old != nil {
		old.closeAfterQueue(StatusReplaced, "replaced by a newer connection with the same id", nil, ClosedReplaced)
		r.leave(old)
	}
	r.add(c)
	if c.remote != nil {
		c.remote.link.Joined()
	}
	if r.host.closing.Load() {
		c.closeAfterQueue(StatusServiceRestart, "server shutting down", nil, ClosedShutdown)
	}
	if r.lost.Load() {
		// Lost while c was on its way in (in ConnectionTags, or while its
		// room started): lose's snapshot may have missed it.
		c.closeAfterQueue(StatusServiceRestart, "room moved", nil, ClosedMoved)
	}
	if on := r.handlers.connect; on != nil {
		if err := r.runHandler(handlerOnConnect, c, func() { on.OnConnect(c, req) }); err != nil {
			c.closeAfterQueue(StatusInternalError, err.Error(), err, ClosedInternalError)
		}
	}
	return true
}

// leave takes c out of the room and runs its OnClose, once. The caller holds
// the turn.
func (r *Room) leave(c *Connection) {
	if c.left {
		return
	}
	c.left = true
	r.remove(c)
	if err := c.failure(); err != nil {
		r.reportError(c, err)
	}
	if on := r.handlers.close; on != nil {
		if err := r.runHandler(handlerOnClose, c, func() { on.OnClose(c) }); err != nil {
			r.reportError(c, err)
		}
	}
}

// serveRequest answers a plain HTTP request to the room, from the network or
// from Fetch. The caller holds the turn.
func (r *Room) serveRequest(w http.ResponseWriter, req *http.Request) {
	on := r.handlers.request
	if on == nil {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "party: this room accepts only WebSocket connections (its Server has no OnRequest)", http.StatusUpgradeRequired)
		return
	}
	err := r.runHandler(handlerOnRequest, nil, func() { on.OnRequest(w, req) })
	if errors.Is(err, ErrHandlerPanic) {
		// Best effort: if the handler wrote nothing yet, this becomes the response.
		http.Error(w, "party: internal error", http.StatusInternalServerError)
	}
}

// runHandler runs a handler of the room (the caller holds the turn),
// recovering a panic: the panic is logged, counted and returned as an error
// wrapping ErrHandlerPanic. The call is timed for the party's stats.
func (r *Room) runHandler(id handlerID, c *Connection, f func()) (err error) {
	if r.lost.Load() {
		return ErrRoomGone // its node may no longer run it: no handler runs again
	}
	returned := false
	start := time.Now()
	defer func() {
		stats := &r.factory.stats
		stats.durations[id].observe(time.Since(start))
		if p := recover(); p != nil {
			stats.panics[id].Add(1)
			r.logPanic(id.String(), c, p)
			err = fmt.Errorf("%w: %s: %v", ErrHandlerPanic, id, p)
		} else if !returned {
			// runtime.Goexit cannot be stopped: the goroutine is going,
			// with the room's turn. Say so, where someone will look.
			r.logGoexit(id.String(), c)
		}
	}()
	f()
	returned = true
	return nil
}

// reportError calls OnError, if the Server has it. The caller holds the turn.
func (r *Room) reportError(c *Connection, err error) {
	if on := r.handlers.error; on != nil && err != nil {
		_ = r.runHandler(handlerOnError, c, func() { on.OnError(c, err) })
	}
}

func (r *Room) logGoexit(name string, c *Connection) {
	r.logHandler("party: handler called runtime.Goexit (t.FailNow or t.Fatal in a test?): its room stops handling anything", name, c)
}

func (r *Room) logPanic(name string, c *Connection, p any) {
	r.logHandler("party: handler panicked", name, c, "panic", fmt.Sprint(p))
}

// logHandler logs msg at Error level about handler name of the room, with
// the stack, the connection (if any) and extra attributes.
func (r *Room) logHandler(msg, name string, c *Connection, extra ...any) {
	args := append([]any{"party", r.key.party, "room", r.key.id, "handler", name}, extra...)
	args = append(args, "stack", string(debug.Stack()))
	if c != nil {
		args = append(args, "connection", c.id)
	}
	r.host.logger().Error(msg, args...)
}
