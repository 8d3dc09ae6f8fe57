package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lease is this node's claim on one room, renewed in the background every
// TTL/3 until it is released or lost. Its methods are safe for concurrent
// use.
//
// A Lease is valid from its claim until [Lease.Deadline], which each
// successful renewal moves to the renewal's send time + TTL - Margin (the
// local monotonic clock). If no renewal succeeds by then, the lease is
// declared lost: [Lease.Lost] is closed and [Lease.Valid] turns false, before
// the server can remove the key and let another node claim the room (see the
// package documentation for the arithmetic). Once lost, a Lease never becomes
// valid again: the node claims the room anew, with a new token.
type Lease struct {
	o                *Owners
	party, room, key string
	nonce            string
	token            uint64
	value            []byte // what each renewal writes
	lost, done       chan struct{}
	ctx              context.Context // canceled by Release: stops the loop
	cancel           context.CancelFunc
	mu               sync.Mutex
	rev              uint64    // the lease's revision in the bucket
	sent             time.Time // send time of the write that made rev (or earlier)
	err              error     // why the lease was lost
	released         bool
}

// Party returns the party of the leased room.
func (l *Lease) Party() string { return l.party }

// Room returns the id of the leased room.
func (l *Lease) Room() string { return l.room }

// Token returns the lease's fencing token: the bucket revision of the claim,
// greater than that of every earlier claim of any room. Writes to a [Store]
// carry it, and are refused once a newer lease's owner has opened the room.
func (l *Lease) Token() uint64 { return l.token }

// Lost returns a channel closed when the lease stops being valid: declared
// lost (see Lease) or released. The room must then stop acting as owner.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err returns nil while the lease is valid, and afterwards an error wrapping
// ErrLeaseLost that says why it ended.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil && !time.Now().Before(l.deadlineLocked()) {
		return fmt.Errorf("%w: %s not renewed by its deadline", ErrLeaseLost, l.key)
	}
	return l.err
}

// Valid reports whether the lease may be used now: not lost, not released,
// and the local monotonic clock before its Deadline. Unlike Lost, which a
// timer closes, it cannot be late: check it right before acting as owner.
func (l *Lease) Valid() bool { return l.Err() == nil }

// Deadline returns the instant (with its monotonic reading) until which the
// lease is valid unless renewed again.
func (l *Lease) Deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadlineLocked()
}

func (l *Lease) deadlineLocked() time.Time { return l.sent.Add(l.o.ttl - l.o.margin) }

func (l *Lease) revision() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rev
}

// run renews the lease until it is released or lost.
func (l *Lease) run() {
	defer l.o.wg.Done()
	defer close(l.done)
	t := time.NewTimer(l.o.every)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		next, err := l.renew()
		if l.ctx.Err() != nil {
			return // released meanwhile: Release settles the end
		}
		if err != nil {
			l.lose(err)
			return
		}
		t.Reset(next)
	}
}

// renew makes one renewal attempt and returns when to make the next one, or
// the error that ends the lease.
func (l *Lease) renew() (time.Duration, error) {
	l.mu.Lock()
	rev, sent, deadline := l.rev, l.sent, l.deadlineLocked()
	l.mu.Unlock()
	now := time.Now()
	if !now.Before(deadline) {
		return 0, fmt.Errorf("%w: %s not renewed by its deadline", ErrLeaseLost, l.key)
	}
	ctx, cancel := context.WithDeadline(l.ctx, deadline)
	defer cancel()
	var err error
	var newRev uint64
	if l.o.dropRenewals.Load() {
		err = errors.New("renewal dropped (test)")
	} else {
		newRev, err = l.o.kv.Update(ctx, l.key, l.value, rev)
	}
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// Ours no more, or an earlier renewal that timed out did land.
		newRev, err = l.adopt(ctx)
		now = sent // that renewal's send time is unknown: keep the last one
	}
	if err != nil {
		if errors.Is(err, ErrLeaseLost) {
			return 0, err
		}
		// A transient failure: retry soon, until the deadline.
		return min(l.o.every/4, time.Until(deadline)), nil
	}
	l.mu.Lock()
	l.rev, l.sent = newRev, now
	l.mu.Unlock()
	return l.o.every, nil
}

// adopt reads the lease's key after a revision mismatch: if it still holds
// this claim (a renewal whose answer was lost did land), it returns its
// revision; otherwise an error wrapping ErrLeaseLost.
func (l *Lease) adopt(ctx context.Context) (uint64, error) {
	own, nonce, err := l.o.read(ctx, l.key)
	switch {
	case errors.Is(err, ErrNoOwner):
		return 0, fmt.Errorf("%w: %s expired or was deleted", ErrLeaseLost, l.key)
	case err != nil:
		return 0, err
	case nonce != l.nonce || own.Token != l.token:
		return 0, fmt.Errorf("%w: %s claimed by node %s (token %d)", ErrLeaseLost, l.key, own.Node, own.Token)
	}
	return own.Revision, nil
}

// lose ends the lease with err, once.
func (l *Lease) lose(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
		close(l.lost)
	}
	l.mu.Unlock()
	l.o.forget(l)
}

// Release ends the lease: it stops acting at once (Lost is closed before
// anything is sent), then deletes the room's key only if it still holds this
// lease's revision, so that a stale lease cannot delete a newer claim. The
// room can then be claimed at once, rather than after the TTL.
//
// It returns nil if the key was deleted, and an error wrapping ErrLeaseLost
// if the key no longer held this lease (it had expired, or been claimed
// anew); a second Release returns that too.
func (l *Lease) Release(ctx context.Context) error {
	l.cancel()
	<-l.done
	l.mu.Lock()
	again := l.released
	l.released = true
	l.mu.Unlock()
	if again {
		return fmt.Errorf("%w: %s already released", ErrLeaseLost, l.key)
	}
	l.lose(fmt.Errorf("%w: %s released", ErrLeaseLost, l.key))
	err := l.o.kv.Delete(ctx, l.key, jetstream.LastRevision(l.revision()))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// A renewal canceled by Release may have landed: delete that one.
		var rev uint64
		if rev, err = l.adopt(ctx); err == nil {
			err = l.o.kv.Delete(ctx, l.key, jetstream.LastRevision(rev))
		}
	}
	if err != nil && !errors.Is(err, ErrLeaseLost) {
		return fmt.Errorf("cluster: release %s: %w", l.key, err)
	}
	return err
}
