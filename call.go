package party

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
)

// ErrDeadlock is returned by [Room.Call] and [Room.Fetch] when waiting for
// the target room would close a cycle of rooms waiting for each other (room
// A's handler calls B while B's handler calls A). The call that would close
// the cycle fails at once; the others proceed.
var ErrDeadlock = errors.New("party: call would deadlock: the rooms are waiting for each other")

// Call runs f in the turn of room id of the named party, one at a time with
// that room's handlers, and returns f's error: the way to read or change
// another room's state, as PartyKit's room.context.parties. The room is
// created, and its OnStart run, if needed. f receives the room's Server (type
// assert it to yours). Call waits for the room's turn until ctx ends. A panic
// in f is recovered and returned as an error wrapping ErrHandlerPanic.
//
// Host.Call is for code outside every handler (a background job, an HTTP
// handler of your own). Inside a handler, use [Room.Call] on the handler's own
// room, so that cycles between rooms are detected.
func (h *Host) Call(ctx context.Context, party, id string, f func(Server) error) error {
	return h.call(ctx, nil, roomKey{party, id}, f)
}

// Call is [Host.Call] for use inside a handler of r: the calling handler
// holds r's turn while it waits for the target's. Calling r itself runs f at
// once, in the current turn. If waiting would close a cycle (the target, or a
// room it waits for, waits for r), Call returns ErrDeadlock without waiting.
// Do not call it from outside r's handlers: use Host.Call there.
func (r *Room) Call(ctx context.Context, party, id string, f func(Server) error) error {
	return r.host.call(ctx, r, roomKey{party, id}, f)
}

// Fetch sends req to the OnRequest of room id of the named party, in that
// room's turn, without going through the network, and returns the response
// (as PartyKit's room.context.parties[party].get(id).fetch). A room without
// OnRequest answers 426. The room is created if needed. Use it outside
// handlers; inside, use [Room.Fetch].
func (h *Host) Fetch(party, id string, req *http.Request) (*http.Response, error) {
	return h.fetch(nil, roomKey{party, id}, req)
}

// Fetch is [Host.Fetch] for use inside a handler of r, with the cycle
// detection of [Room.Call].
func (r *Room) Fetch(party, id string, req *http.Request) (*http.Response, error) {
	return r.host.fetch(r, roomKey{party, id}, req)
}

func (h *Host) fetch(from *Room, key roomKey, req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	err := h.call(req.Context(), from, key, func(s Server) error {
		target, _ := s.(OnRequestHandler)
		if target == nil {
			rec.Header().Set("Upgrade", "websocket")
			http.Error(rec, "party: this room accepts only WebSocket connections (its Server has no OnRequest)", http.StatusUpgradeRequired)
			return nil
		}
		target.OnRequest(rec, req)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

func (h *Host) call(ctx context.Context, from *Room, key roomKey, f func(Server) error) error {
	if h.closing.Load() {
		return ErrShutdown
	}
	if err := checkID("room id", key.id); err != nil {
		return err
	}
	if from != nil && from.key == key {
		return from.runCall(f) // the caller holds this room's turn
	}
	target, err := h.acquire(key, false)
	if err != nil {
		return err
	}
	defer target.release(false)
	if from != nil {
		h.callMu.Lock()
		for r := target; r != nil; r = r.waitingFor {
			if r == from {
				h.callMu.Unlock()
				return fmt.Errorf("%w (%s/%s calling %s/%s)", ErrDeadlock, from.key.party, from.key.id, key.party, key.id)
			}
		}
		from.waitingFor = target
		h.callMu.Unlock()
		defer func() {
			h.callMu.Lock()
			from.waitingFor = nil
			h.callMu.Unlock()
		}()
	}
	if err := target.lockContext(ctx); err != nil {
		return err
	}
	defer target.unlock()
	return target.runCall(f)
}

// runCall runs f with the room's Server; the caller holds the turn.
func (r *Room) runCall(f func(Server) error) error {
	var err error
	if perr := r.call("Call", nil, func() { err = f(r.server) }); perr != nil {
		return perr
	}
	return err
}
