package cluster

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"

	"party"
	"party/examples/guide"
)

// testNode is one node of a test cluster: a Host joined to NATS, served by
// an httptest server.
type testNode struct {
	node *Node
	host *party.Host
	srv  *httptest.Server
}

// startNodes starts count nodes on ns, each with its own NATS connection
// and Host (built by factory), shut down at the end of the test.
func startNodes(t testing.TB, ns *server.Server, count int, ttl time.Duration, factory func(*party.Room) party.Server) []*testNode {
	t.Helper()
	nodes := make([]*testNode, count)
	for i := range nodes {
		nc, _ := connect(t, ns)
		h := party.Handler(factory)
		h.IdleTimeout = 200 * time.Millisecond
		n, err := Join(testCtx(t, 10*time.Second), h, nc, Config{
			Node: "n" + string(rune('1'+i)), TTL: ttl,
			Owners: OwnersConfig{Bucket: "owners"},
			Store:  StoreConfig{Stream: "STORE", Subject: "store", AlarmBucket: "alarms"},
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		tn := &testNode{node: n, host: h, srv: srv}
		nodes[i] = tn
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n.Shutdown(ctx)
			srv.Close()
		})
	}
	// Every node has heard every other before the test goes on.
	waitFor(t, 5*time.Second, "heartbeats", func() bool {
		for _, a := range nodes {
			for _, b := range nodes {
				if !a.node.alive(b.node.name) {
					return false
				}
			}
		}
		return true
	})
	return nodes
}

// client is a WebSocket client of a test.
type client struct {
	t    testing.TB
	conn *websocket.Conn
}

// dial opens room of the default party on node as connection id.
func dial(t testing.TB, node *testNode, room, id string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(node.srv.URL, "http") + "/parties/main/" + room + "?_pk=" + id
	conn, resp, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s (status %d): %v", u, status, err)
	}
	conn.SetReadLimit(-1)
	c := &client{t: t, conn: conn}
	t.Cleanup(func() { conn.CloseNow() })
	return c
}

func (c *client) send(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// read returns the next text message, failing the test after 5 s.
func (c *client) read() string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, data, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return string(data)
}

func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.read(); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

// TestGuideChatAcrossNodes runs the guide's chat, unchanged, with its
// clients on three nodes: welcome, join notices, broadcast except the
// sender, leave notices.
func TestGuideChatAcrossNodes(t *testing.T) {
	ns := startServer(t, "")
	nodes := startNodes(t, ns, 3, 2*time.Second, guide.New)
	a := dial(t, nodes[0], "lobby", "a")
	a.expect("Welcome, a")
	b := dial(t, nodes[1], "lobby", "b")
	b.expect("Welcome, b")
	a.expect("Heads up! b joined the party!")
	c := dial(t, nodes[2], "lobby", "c")
	c.expect("Welcome, c")
	a.expect("Heads up! c joined the party!")
	b.expect("Heads up! c joined the party!")

	for i, from := range []*client{a, b, c} {
		msg := "hello from " + string(rune('a'+i))
		from.send(msg)
		for j, to := range []*client{a, b, c} {
			if i != j {
				to.expect(msg)
			}
		}
	}
	b.conn.Close(websocket.StatusNormalClosure, "bye")
	a.expect("So sad! b left the party!")
	c.expect("So sad! b left the party!")
}
