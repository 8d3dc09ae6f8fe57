package party

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

type roomKey struct{ party, id string }

// Room is one room of a party: the connections that share a room id, and the
// Server that drives them. A Room is created by the Host on the first request
// for its id; its methods are safe to call from any goroutine.
type Room struct {
	host    *Host
	key     roomKey
	factory func(*Room) Server

	// turn serializes every handler call of the room.
	turn turn
	// waitingFor is the room whose turn this room's current handler waits
	// for in a Call (guarded by Host.callMu), to detect cycles.
	waitingFor *Room
	server     Server
	handlers   handlers
	started    bool

	// life guards the room's lifecycle: who uses it and whether it is dropped.
	life      sync.Mutex
	refs      int // requests and connections using the room
	conns     int // connections reserved or joined
	dead      bool
	idleTimer *time.Timer
	// The room's one alarm (see SetAlarm); a set alarm holds a reference.
	alarmAt    time.Time
	alarmTimer *time.Timer
	alarmGen   uint64       // numbers alarms, so a replaced one that fires anyway is ignored
	store      Storage      // the handle from the StorageProvider
	storeView  *roomStorage // what Storage returns
	alarmMu    sync.Mutex   // orders alarm changes in Storage and in the timer

	// set holds the joined connections; snap is a copy for iteration,
	// rebuilt after a change when somebody iterates.
	setMu sync.RWMutex
	set   map[string]*Connection
	snap  atomic.Pointer[[]*Connection]
}

// handlers are the optional interfaces of a room's Server, asserted once.
type handlers struct {
	start   OnStartHandler
	connect OnConnectHandler
	message OnMessageHandler
	close   OnCloseHandler
	error   OnErrorHandler
	request OnRequestHandler
	tagger  ConnectionTagger
}

func discover(s Server) handlers {
	var hs handlers
	hs.start, _ = s.(OnStartHandler)
	hs.connect, _ = s.(OnConnectHandler)
	hs.message, _ = s.(OnMessageHandler)
	hs.close, _ = s.(OnCloseHandler)
	hs.error, _ = s.(OnErrorHandler)
	hs.request, _ = s.(OnRequestHandler)
	hs.tagger, _ = s.(ConnectionTagger)
	return hs
}

// ID returns the room id as the client sent it in the URL path, still
// percent-encoded (as PartyKit's room.id).
func (r *Room) ID() string { return r.key.id }

// Party returns the name of the room's party ("main" for the default one).
func (r *Room) Party() string { return r.key.party }

// Storage returns the room's key-value storage (PartyKit's room.storage),
// from the Host's StorageProvider. It is opened before OnStart runs (a room
// whose storage cannot be opened fails to start) and closed when the room is
// dropped; its data outlives the room. Before the room has started, Storage
// returns nil. Safe to call from any goroutine.
//
// The returned Storage's SetAlarm and DeleteAlarm are the room's (they arm
// and disarm its timer, like [Room.SetAlarm]); its Close returns an error,
// since the room owns the handle.
func (r *Room) Storage() Storage {
	r.life.Lock()
	defer r.life.Unlock()
	if r.store == nil {
		return nil
	}
	return r.storeView
}

// roomStorage is the view of a room's Storage handed to its Server.
type roomStorage struct {
	Storage
	room *Room
}

func (s *roomStorage) SetAlarm(t time.Time) error {
	if t.IsZero() {
		return s.room.DeleteAlarm()
	}
	return s.room.SetAlarm(t)
}

func (s *roomStorage) DeleteAlarm() error { return s.room.DeleteAlarm() }

func (s *roomStorage) Close() error {
	return errors.New("party: a room's Storage is closed by the Host when it drops the room")
}

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

// add puts c in the set. It returns the connection it replaces, if any.
func (r *Room) add(c *Connection) (replaced *Connection) {
	r.setMu.Lock()
	defer r.setMu.Unlock()
	replaced = r.set[c.id]
	r.set[c.id] = c
	r.snap.Store(nil)
	return replaced
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

// acquire returns the live room for key, creating it if needed, with one more
// reference taken; conn reserves a connection slot too. It never returns a
// dropped room.
func (h *Host) acquire(key roomKey, conn bool) (*Room, error) {
	factory, ok := h.parties[key.party]
	if !ok {
		return nil, &HTTPError{http.StatusNotFound, fmt.Sprintf("party %q not found", key.party)}
	}
	for {
		v, ok := h.rooms.Load(key)
		if !ok {
			// Reserve the room's place before building it, so that
			// concurrent requests for new rooms cannot pass MaxRooms.
			if n := h.nrooms.Add(1); h.MaxRooms > 0 && n > int64(h.MaxRooms) {
				h.nrooms.Add(-1)
				return nil, &HTTPError{http.StatusServiceUnavailable, fmt.Sprintf("too many rooms (Host.MaxRooms is %d)", h.MaxRooms)}
			}
			nr := &Room{host: h, key: key, factory: factory, turn: make(turn, 1), set: make(map[string]*Connection)}
			var loaded bool
			v, loaded = h.rooms.LoadOrStore(key, nr)
			if loaded {
				h.nrooms.Add(-1) // another request built it first
			}
		}
		r := v.(*Room)
		r.life.Lock()
		if r.dead {
			r.life.Unlock()
			continue // it was just dropped and removed from the map: make a new one
		}
		if conn && h.MaxConnectionsPerRoom > 0 && r.conns >= h.MaxConnectionsPerRoom {
			r.life.Unlock()
			return nil, &HTTPError{http.StatusServiceUnavailable, fmt.Sprintf("room is full (Host.MaxConnectionsPerRoom is %d)", h.MaxConnectionsPerRoom)}
		}
		r.refs++
		if conn {
			r.conns++
		}
		if r.idleTimer != nil {
			r.idleTimer.Stop()
			r.idleTimer = nil
		}
		r.life.Unlock()
		return r, nil
	}
}

// release gives back a reference taken by acquire. The last one out starts
// the idle timer that drops the room.
func (r *Room) release(conn bool) {
	r.life.Lock()
	defer r.life.Unlock()
	if conn {
		r.conns--
	}
	r.releaseLocked()
}

func (r *Room) releaseLocked() {
	r.refs--
	if r.refs > 0 || r.dead {
		return
	}
	idle := r.host.idleTimeout()
	if idle < 0 {
		r.dropLocked()
		return
	}
	var t *time.Timer
	t = time.AfterFunc(idle, func() {
		r.life.Lock()
		defer r.life.Unlock()
		if r.idleTimer == t && r.refs == 0 {
			r.dropLocked()
		}
	})
	r.idleTimer = t
}

func (r *Room) drop() {
	r.life.Lock()
	defer r.life.Unlock()
	r.dropLocked()
}

func (r *Room) dropLocked() {
	if r.dead {
		return
	}
	r.dead = true
	if r.alarmTimer != nil {
		r.alarmTimer.Stop()
		r.alarmTimer = nil
	}
	if r.store != nil {
		if err := r.store.Close(); err != nil {
			r.host.logger().Error("party: closing a room's storage", "party", r.key.party, "room", r.key.id, "err", err)
		}
	}
	if r.idleTimer != nil {
		r.idleTimer.Stop()
		r.idleTimer = nil
	}
	if r.host.rooms.CompareAndDelete(r.key, r) {
		r.host.nrooms.Add(-1)
	}
}

func (r *Room) isDead() bool {
	r.life.Lock()
	defer r.life.Unlock()
	return r.dead
}

// turn is a mutex whose Lock can give up when a context ends.
type turn chan struct{}

func (t turn) Lock()   { t <- struct{}{} }
func (t turn) Unlock() { <-t }

func (t turn) LockContext(ctx context.Context) error {
	select {
	case t <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lock takes the room's turn and makes sure its Server is built and started.
// On error the turn is released.
func (r *Room) lock() error { return r.lockContext(context.Background()) }

func (r *Room) lockContext(ctx context.Context) error {
	if err := r.turn.LockContext(ctx); err != nil {
		return err
	}
	if r.started {
		return nil
	}
	err := r.start()
	if err != nil {
		r.turn.Unlock()
	}
	return err
}

func (r *Room) unlock() { r.turn.Unlock() }

func (r *Room) start() (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.logPanic("OnStart", nil, p)
			err = fmt.Errorf("%w: OnStart: %v", ErrHandlerPanic, p)
		}
	}()
	if r.rawStorage() == nil {
		st, err := r.host.storage().Open(r.key.party, r.key.id)
		if err != nil {
			return fmt.Errorf("party: opening the room's storage: %w", err)
		}
		r.life.Lock()
		r.store, r.storeView = st, &roomStorage{Storage: st, room: r}
		r.life.Unlock()
		if at, err := st.GetAlarm(); err == nil && !at.IsZero() {
			r.alarmMu.Lock()
			r.scheduleAlarm(at) // set before the room was last dropped, or before a restart
			r.alarmMu.Unlock()
		}
	}
	if r.server == nil {
		s := r.factory(r)
		r.server, r.handlers = s, discover(s)
	}
	if r.handlers.start != nil {
		if err := r.handlers.start.OnStart(); err != nil {
			return err
		}
	}
	r.started = true
	return nil
}

// call runs a handler of the room (the caller holds the turn), recovering a
// panic: the panic is logged and returned as an error wrapping
// ErrHandlerPanic.
func (r *Room) call(name string, c *Connection, f func()) (err error) {
	returned := false
	defer func() {
		if p := recover(); p != nil {
			r.logPanic(name, c, p)
			err = fmt.Errorf("%w: %s: %v", ErrHandlerPanic, name, p)
		} else if !returned {
			// runtime.Goexit cannot be stopped: the goroutine is going,
			// with the room's turn. Say so, where someone will look.
			r.logGoexit(name, c)
		}
	}()
	f()
	returned = true
	return nil
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

// reportError calls OnError, if the Server has it. The caller holds the turn.
func (r *Room) reportError(c *Connection, err error) {
	if r.handlers.error == nil || err == nil {
		return
	}
	_ = r.call("OnError", c, func() { r.handlers.error.OnError(c, err) })
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
	if r.handlers.close != nil {
		if err := r.call("OnClose", c, func() { r.handlers.close.OnClose(c) }); err != nil {
			r.reportError(c, err)
		}
	}
}

// serveRequest answers a plain HTTP request to the room.
func (r *Room) serveRequest(w http.ResponseWriter, req *http.Request) {
	if err := r.lock(); err != nil {
		http.Error(w, "party: room failed to start: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer r.unlock()
	if r.handlers.request == nil {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "party: this room accepts only WebSocket connections (its Server has no OnRequest)", http.StatusUpgradeRequired)
		return
	}
	err := r.call("OnRequest", nil, func() { r.handlers.request.OnRequest(w, req) })
	if err != nil && errors.Is(err, ErrHandlerPanic) {
		// Best effort: if the handler wrote nothing yet, this becomes the response.
		http.Error(w, "party: internal error", http.StatusInternalServerError)
	}
}
