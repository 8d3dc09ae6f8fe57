package party

import (
	"context"
	"fmt"
)

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
	return h.inTurn(ctx, nil, roomKey{party, id}, func(r *Room) error { return r.runCall(f) })
}

// Call is [Host.Call] for use inside a handler of r: the calling handler
// holds r's turn while it waits for the target's. Calling r itself runs f at
// once, in the current turn. If waiting would close a cycle (the target, or a
// room it waits for, waits for r), Call returns ErrDeadlock without waiting.
// Do not call it from outside r's handlers: use Host.Call there.
func (r *Room) Call(ctx context.Context, party, id string, f func(Server) error) error {
	return r.host.inTurn(ctx, r, roomKey{party, id}, func(t *Room) error { return t.runCall(f) })
}

// runCall runs a Call's f with the room's Server; the caller holds the turn.
func (r *Room) runCall(f func(Server) error) error {
	if r.relay != nil {
		return fmt.Errorf("%w: Call reaches only rooms that run here (Fetch reaches any)", ErrElsewhere)
	}
	var err error
	if perr := r.runHandler(handlerCall, nil, func() { err = f(r.server) }); perr != nil {
		return perr
	}
	return err
}

// inTurn runs f in the turn of the room key, started if needed. from is the
// room whose handler asks, or nil outside handlers: a room asking for itself
// already holds its turn, and a wait that would close a cycle of rooms
// waiting for each other fails with ErrDeadlock.
func (h *Host) inTurn(ctx context.Context, from *Room, key roomKey, f func(*Room) error) error {
	if h.closing.Load() {
		return ErrShutdown
	}
	if err := checkID("room id", key.id); err != nil {
		return err
	}
	if from != nil && from.key == key {
		return f(from)
	}
	target, err := h.acquire(key, false)
	if err != nil {
		return err
	}
	defer target.release(false)
	if from != nil {
		if err := h.waitFor(from, target); err != nil {
			return err
		}
		defer h.waitFor(from, nil)
	}
	if err := target.lockContext(ctx); err != nil {
		return err
	}
	defer target.unlock()
	return f(target)
}

// waitFor records that from's handler waits for target's turn (nil: no
// longer waits), unless target already waits, directly or through other
// rooms, for from: then it returns ErrDeadlock.
func (h *Host) waitFor(from, target *Room) error {
	h.callMu.Lock()
	defer h.callMu.Unlock()
	for r := target; r != nil; r = r.waitingFor {
		if r == from {
			return fmt.Errorf("%w (%s/%s calling %s/%s)", ErrDeadlock, from.key.party, from.key.id, target.key.party, target.key.id)
		}
	}
	from.waitingFor = target
	return nil
}
