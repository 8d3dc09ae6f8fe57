package cluster

import (
	"errors"
	"fmt"
)

// The errors of the package, returned wrapped (test them with errors.Is).
var (
	// ErrHeld is wrapped by the *[HeldError] that Claim returns when
	// another live lease holds the room.
	ErrHeld = errors.New("cluster: room held by another lease")
	// ErrLeaseLost means a lease is no longer this node's to use: its
	// renewal failed for longer than the safety margin allows, another claim
	// replaced it, or it was released. Whatever the room did under it must
	// stop.
	ErrLeaseLost = errors.New("cluster: lease lost")
	// ErrNoOwner is returned by Owners.Owner for a room that no live lease
	// holds, and by Owners.Token for a room this node holds no live lease
	// on.
	ErrNoOwner = errors.New("cluster: room has no owner")
	// ErrFenced is returned by a write whose fencing token is older than
	// the room's newest: a newer owner has claimed the room and fenced the
	// store, and the write changed nothing.
	ErrFenced = errors.New("cluster: write fenced by a newer owner")
	// ErrNameTooLong is returned for a room whose encoded key is over
	// MaxKeyLen.
	ErrNameTooLong = errors.New("cluster: room name too long")
	// ErrClosed is returned by the methods of a closed Owners.
	ErrClosed = errors.New("cluster: closed")
)

// HeldError is the error of a Claim on a room that a live lease already
// holds: it names the holder, so that the caller can relay to it.
type HeldError struct {
	// Owner is the lease that holds the room, as read just after the
	// refused claim.
	Owner Owner
}

// Error names the holder and its token.
func (e *HeldError) Error() string {
	return fmt.Sprintf("cluster: room held by node %q (token %d)", e.Owner.Node, e.Owner.Token)
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }
