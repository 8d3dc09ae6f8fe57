package cluster

import (
	"testing"
	"time"

	"party/examples/guide"
)

// TestLostRelayTellsTheOwner drops a relay room on the node that holds a
// client (as when it hears the room's owner leave, or an owner does not
// answer a join in time). The dropped room runs no OnClose, so the relay
// itself tells the owner that its members left: the owner's room sees the
// client leave, instead of keeping it as a member until the holding node is
// gone (and an owner that is shutting down waiting for it until its
// Shutdown's context ends).
func TestLostRelayTellsTheOwner(t *testing.T) {
	ns := startServer(t, "")
	nodes := startNodes(t, ns, 2, 2*time.Second, guide.New)
	a := dial(t, nodes[0], "lobby", "a")
	a.expect("Welcome, a")
	b := dial(t, nodes[1], "lobby", "b")
	b.expect("Welcome, b")
	a.expect("Heads up! b joined the party!")

	holder := nodes[1].node
	holder.mu.Lock()
	r := holder.relays[roomRef{"main", "lobby"}]
	holder.mu.Unlock()
	if r == nil {
		t.Fatal("no relay for the room on the node holding b")
	}
	r.lose()
	a.expect("So sad! b left the party!")
}
