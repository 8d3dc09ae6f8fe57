package cluster

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"party"
	"party/examples/guide"
)

// sniff subscribes to node's subject and returns the messages sent to it.
func sniff(t *testing.T, nc *nats.Conn, node *testNode) <-chan envelope {
	t.Helper()
	out := make(chan envelope, 256)
	sub, err := nc.Subscribe(node.node.subject, func(m *nats.Msg) {
		if e, err := decode(m.Data); err == nil {
			select {
			case out <- e:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBadNodeMessages sends nodes what a confused or stale node could: each
// has its defined outcome, and the room goes on working.
func TestBadNodeMessages(t *testing.T) {
	ns := startServer(t, "")
	nodes := startNodes(t, ns, 3, 2*time.Second, guide.New)
	a := dial(t, nodes[0], "x", "a") // n1 owns x
	a.expect("Welcome, a")
	b := dial(t, nodes[1], "x", "b") // n2 relays to n1
	b.expect("Welcome, b")
	a.expect("Heads up! b joined the party!")
	own, err := nodes[0].node.owners.Owner(testCtx(t, 5*time.Second), "main", "x")
	if err != nil || own.Node != "n1" {
		t.Fatalf("owner %+v, %v; want n1", own, err)
	}
	spy, _ := connect(t, ns)
	toN2 := sniff(t, spy, nodes[1])
	publish := func(to *testNode, e envelope) {
		t.Helper()
		if err := spy.Publish(to.node.subject, e.encode()); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("message for an unknown connection", func(t *testing.T) {
		// n1 gets a client message from n2 for a connection it does not
		// know: it tells n2 to close that connection with 1012.
		publish(nodes[0], envelope{kind: kindText, token: own.Token, party: "main", room: "x", from: "n2", seq: 999, payload: []byte("ghost")})
		deadline := time.After(5 * time.Second)
		for {
			select {
			case e := <-toN2:
				if e.kind != kindClose || e.seq != 999 {
					continue
				}
				code, _, err := readCloseStatus(e.payload)
				if err != nil || code != int(party.StatusServiceRestart) {
					t.Fatalf("close for the unknown connection: %d, %v; want 1012", code, err)
				}
				return
			case <-deadline:
				t.Fatal("n1 did not answer the message for an unknown connection")
			}
		}
	})
	t.Run("congestion reports and credit queries that make no sense", func(t *testing.T) {
		// Congestion of connections n1 does not know, and malformed
		// reports (a count past the payload, a count short of it): dropped;
		// the room is not held back.
		for _, payload := range [][]byte{{1, 0xe7, 0x07}, {200, 1}, {1, 1, 2}, {0xff}} {
			publish(nodes[0], envelope{kind: kindCongested, token: own.Token, party: "main", room: "x", from: "n2", payload: payload})
		}
		b.send("not held")
		a.expect("not held")
		if n := congestedAt(nodes[0], "x"); n != 0 {
			t.Fatalf("n1 holds %d members congested", n)
		}
		// A credit query for a connection n1 does not know: closed with 1012.
		publish(nodes[0], envelope{kind: kindCreditQuery, token: own.Token, party: "main", room: "x", from: "n2", seq: 998})
		deadline := time.After(5 * time.Second)
		for {
			select {
			case e := <-toN2:
				if e.kind != kindClose || e.seq != 998 {
					continue
				}
				if code, _, err := readCloseStatus(e.payload); err != nil || code != int(party.StatusServiceRestart) {
					t.Fatalf("close for the unknown connection: %d, %v; want 1012", code, err)
				}
				return
			case <-deadline:
				t.Fatal("n1 did not answer the credit query for an unknown connection")
			}
		}
	})
	t.Run("forwarded request that closes a cycle", func(t *testing.T) {
		// A request forwarded to n1 for x, naming x among the rooms
		// waiting for it: answered 508 Loop Detected, x's OnRequest not run.
		raw := "GET /parties/main/x HTTP/1.1\r\nHost: n2\r\nParty-Call-Chain: main/y main/x\r\n\r\n"
		e := envelope{kind: kindFetch, token: own.Token, party: "main", room: "x", from: "n2", payload: []byte(raw)}
		reply, err := spy.Request(nodes[0].node.subject, e.encode(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(reply.Data), "HTTP/1.1 508 ") {
			t.Fatalf("answer %q, want 508 Loop Detected", reply.Data[:min(60, len(reply.Data))])
		}
	})
	t.Run("message from a node that no longer owns the room", func(t *testing.T) {
		for _, e := range []envelope{
			{kind: kindBroadcastText, token: own.Token - 1, party: "main", room: "x", from: "n1", payload: broadcastPayload(nil, nil)},
			{kind: kindBroadcastText, token: own.Token, party: "main", room: "x", from: "n3", payload: broadcastPayload(nil, nil)},
		} {
			e.payload = append(e.payload, "stale"...)
			publish(nodes[1], e)
		}
		publish(nodes[1], envelope{kind: 0xff, party: "main", room: "x", from: "n1"})    // unknown kind
		publish(nodes[1], envelope{kind: kindSendText, token: own.Token, party: "main"}) // truncated: no room
		spy.Publish(nodes[1].node.subject, []byte{byte(kindJoin), 0xff})                 // malformed varint
		// The room still works, and b never saw "stale".
		a.send("after")
		b.expect("after")
	})
	t.Run("join with a stale token", func(t *testing.T) {
		toN3 := sniff(t, spy, nodes[2])
		publish(nodes[0], envelope{kind: kindJoin, token: own.Token - 1, party: "main", room: "x", from: "n3", seq: 7,
			payload: []byte(`{"id":"z","method":"GET","url":"/parties/main/x","host":"h"}`)})
		deadline := time.After(5 * time.Second)
		for {
			select {
			case e := <-toN3:
				if e.kind != kindRefused || e.seq != 7 {
					continue
				}
				if status, _, _ := readCloseStatus(e.payload); status != http.StatusServiceUnavailable {
					t.Fatalf("refusal status %d, want 503", status)
				}
				return
			case <-deadline:
				t.Fatal("n1 did not refuse the stale join")
			}
		}
	})
	b.send("still here")
	a.expect("still here")
}

// TestNATSGoesAwayAndComesBack: the NATS server stops and starts again on
// the same port and store. Meanwhile the nodes' rooms are lost (their
// clients closed with 1012); once it is back, the rooms run again with
// their storage, and nothing leaks (TestMain checks).
func TestNATSGoesAwayAndComesBack(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for leases to be lost")
	}
	dir := t.TempDir()
	ns := startListeningServer(t, dir, -1) // server.RANDOM_PORT
	port := ns.Addr().(*net.TCPAddr).Port
	log := &handlerLog{}
	nodes := startNodesOn(t, ns.ClientURL(), 2, 2*time.Second, func(node string) func(*party.Room) party.Server {
		return func(r *party.Room) party.Server { return &counterServer{room: r, node: node, log: log} }
	})
	a := dial(t, nodes[0], "x", "a")
	b := dial(t, nodes[1], "x", "b")
	for i, cl := range []*client{a, b, a} {
		cl.send("inc")
		cl.expect("ack " + strconv.Itoa(i+1))
	}

	start := time.Now()
	ns.Shutdown()
	ns.WaitForShutdown()
	for _, cl := range []*client{a, b} {
		cl.expectClose(party.StatusServiceRestart)
	}
	t.Logf("clients closed %v after NATS went away", time.Since(start))

	start = time.Now()
	ns = startListeningServer(t, dir, port)
	t.Logf("NATS back in %v", time.Since(start))
	waitFor(t, 10*time.Second, "the nodes to reconnect and hear each other", func() bool {
		return nodes[0].node.nc.IsConnected() && nodes[1].node.nc.IsConnected() &&
			nodes[0].node.alive("n2") && nodes[1].node.alive("n1")
	})
	t.Logf("nodes reconnected %v after NATS came back", time.Since(start))
	b = dial(t, nodes[1], "x", "b")
	b.send("inc")
	b.expect("ack 4")
	t.Logf("room back %v after NATS came back", time.Since(start))
	a = dial(t, nodes[0], "x", "a")
	a.send("inc")
	a.expect("ack 5")
	a.conn.CloseNow()
	b.conn.CloseNow()
	shutdownNodes(t, nodes) // while NATS runs: its cleanup comes before theirs
}
