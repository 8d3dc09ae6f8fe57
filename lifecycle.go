package party

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// A room's life: created by the first request for its id (acquire), built
// and started in its first turn (lock), kept while something holds a
// reference (a request, a connection, a set alarm), and dropped once idle for
// Host.IdleTimeout (release, drop).

// acquire returns the live room for key, creating it if needed, with one more
// reference taken; conn reserves a connection slot too. It never returns a
// dropped room.
func (h *Host) acquire(key roomKey, conn bool) (*Room, error) {
	f, ok := h.parties[key.party]
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
			nr := &Room{host: h, key: key, factory: f, created: time.Now(), turn: make(turn, 1), set: make(map[string]*Connection)}
			if h.Placer != nil {
				nr.done = make(chan struct{})
			}
			var loaded bool
			v, loaded = h.rooms.LoadOrStore(key, nr)
			if loaded {
				h.nrooms.Add(-1) // another request built it first
			} else {
				f.stats.rooms.Add(1)
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
		r.factory.stats.rooms.Add(-1)
	}
	if r.done != nil {
		close(r.done)
	}
	if f := r.releasePlacement; f != nil {
		r.releasePlacement = nil
		go f()
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
	err := r.start(ctx)
	if err != nil {
		r.turn.Unlock()
	}
	return err
}

func (r *Room) unlock() { r.turn.Unlock() }

// start places the room (with a Host.Placer), opens its storage and
// schedules its stored alarm (unless it is a relay room), builds its Server
// and finds its handlers (once), and runs OnStart. The caller holds
// the turn. A panic in the factory or OnStart is returned as an error
// wrapping ErrHandlerPanic, and counted as OnStart's.
func (r *Room) start(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.factory.stats.panics[handlerOnStart].Add(1)
			r.logPanic(handlerOnStart.String(), nil, p)
			err = fmt.Errorf("%w: %s: %v", ErrHandlerPanic, handlerOnStart, p)
		}
	}()
	if err := r.place(ctx); err != nil {
		return err
	}
	if r.relay != nil {
		r.server, r.handlers = r.relay, discover(r.relay)
	} else if err := r.openStorage(); err != nil {
		return err
	}
	r.watchPlacement()
	if r.server == nil {
		s := r.factory.build(r)
		r.factory.checked.Do(func() { reportMismatches(r.host.logger(), r.key.party, s) })
		r.server, r.handlers = s, discover(s)
	}
	if on := r.handlers.start; on != nil {
		var err error
		if perr := r.runHandler(handlerOnStart, nil, func() { err = on.OnStart() }); perr != nil {
			return perr
		}
		if err != nil {
			return err
		}
	}
	r.started = true
	return nil
}
