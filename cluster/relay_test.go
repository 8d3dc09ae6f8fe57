package cluster

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
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

// slowGreeter takes its time in OnConnect, then greets; it echoes every
// message.
type slowGreeter struct{ room *party.Room }

func (s *slowGreeter) OnConnect(c *party.Connection, _ *http.Request) {
	time.Sleep(300 * time.Millisecond)
	c.Send(party.Text("welcome"))
}

func (s *slowGreeter) OnMessage(msg party.Message, c *party.Connection) {
	c.Send(party.Text("echo " + msg.String()))
}

// TestMessageDuringOwnersOnConnect: a client held by another node than the
// room's owner sends at once when its socket opens, which is when the owner
// said joined, before its OnConnect ran (as y-websocket's provider sends its
// sync step 1). The owner hands that message to the room after OnConnect,
// rather than dropping it because the join had not returned yet.
func TestMessageDuringOwnersOnConnect(t *testing.T) {
	ns := startServer(t, "")
	nodes := startNodes(t, ns, 2, 2*time.Second, func(r *party.Room) party.Server { return &slowGreeter{room: r} })
	a := dial(t, nodes[0], "slow", "a") // n1 runs the room
	a.expect("welcome")
	b := dial(t, nodes[1], "slow", "b")
	b.send("first")
	b.send("second")
	b.expect("welcome")
	b.expect("echo first")
	b.expect("echo second")
}

// gatedGreeter's OnConnect of connection "b" signals entered and waits for
// release; every OnClose is broadcast as "left ID".
type gatedGreeter struct {
	room             *party.Room
	entered, release chan struct{}
}

func (s *gatedGreeter) OnConnect(c *party.Connection, _ *http.Request) {
	if c.ID() == "b" {
		s.entered <- struct{}{}
		<-s.release
	}
}

func (s *gatedGreeter) OnClose(c *party.Connection) {
	s.room.Broadcast(party.Text("left " + c.ID()))
}

// TestHolderGoneDuringJoin: the node holding a client is declared gone
// while the room's owner is still joining that client (its OnConnect
// runs). The owner neither crashes nor keeps the client: once OnConnect
// returns, the client leaves the room.
func TestHolderGoneDuringJoin(t *testing.T) {
	ns := startServer(t, "")
	entered, release := make(chan struct{}), make(chan struct{})
	released := false
	defer func() { // (a failing test must not leave OnConnect, and so the cleanup's Shutdown, waiting)
		if !released {
			close(release)
		}
	}()
	nodes := startNodes(t, ns, 2, 2*time.Second, func(r *party.Room) party.Server {
		return &gatedGreeter{room: r, entered: entered, release: release}
	})
	a := dial(t, nodes[0], "gated", "a") // n1 runs the room
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		u := "ws" + strings.TrimPrefix(nodes[1].srv.URL, "http") + "/parties/main/gated?_pk=b"
		if conn, _, err := websocket.Dial(ctx, u, nil); err == nil {
			conn.CloseNow()
		}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("b's OnConnect did not run on the owner")
	}
	nodes[0].node.nodeGone("n2", "declared gone by the test")
	close(release)
	released = true
	a.expect("left b")
}
