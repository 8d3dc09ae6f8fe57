package party

import (
	"iter"
	"slices"
)

// Broadcast sends msg to every connection in the room except those whose id
// is listed in without, as PartyKit's room.broadcast(msg, without). It is
// safe to call from any goroutine, including code outside every handler, and
// never blocks: each recipient gets msg through its own queue (see
// [Connection.Send]; a recipient whose queue overflows is closed, the others
// are not affected). The bytes of msg are shared by all recipients and must
// not change afterwards.
//
// Members held by other nodes (see [Host.JoinRemote]) get msg through their
// node's Fanout: one Fanout.Broadcast per node, with without, whatever the
// number of its members. On a node where the room does not run (a relay
// room, see [Placement]), Broadcast reaches the room where it runs, so every
// member on every node gets msg.
func (r *Room) Broadcast(msg Message, without ...string) {
	if r.relayed.Load() {
		// The room runs on another node: it broadcasts there, to every node.
		r.relay.Broadcast(msg, without)
		return
	}
	var fanArr [4]Fanout
	fanouts := fanArr[:0]
	for _, c := range r.snapshot() {
		if c.remote != nil {
			if f := c.remote.fanout; !slices.Contains(fanouts, f) {
				fanouts = append(fanouts, f)
			}
			continue
		}
		if len(without) > 0 && slices.Contains(without, c.id) {
			continue
		}
		c.Send(msg) // a closed or overflowing recipient is its own business
	}
	for _, f := range fanouts {
		f.Broadcast(msg, without)
	}
}

// GetConnections yields the room's open connections; given tags, only those
// that carry every one of them (with one tag, PartyKit's
// room.getConnections(tag)). It iterates over a snapshot taken when the
// iteration starts, so closing connections, or connections joining and
// leaving, during the loop is safe. Safe to call from any goroutine.
func (r *Room) GetConnections(tags ...string) iter.Seq[*Connection] {
	return func(yield func(*Connection) bool) {
		for _, c := range r.snapshot() {
			if c.isClosing() || !hasTags(c, tags) {
				continue
			}
			if !yield(c) {
				return
			}
		}
	}
}

func hasTags(c *Connection, tags []string) bool {
	for _, t := range tags {
		if !slices.Contains(c.tags, t) {
			return false
		}
	}
	return true
}
