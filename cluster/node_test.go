package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

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
	return startNodesWith(t, ns, count, ttl, func(string) func(*party.Room) party.Server { return factory })
}

// startNodesWith is startNodes with a factory per node, given its name.
func startNodesWith(t testing.TB, ns *server.Server, count int, ttl time.Duration, factory func(node string) func(*party.Room) party.Server) []*testNode {
	t.Helper()
	return startNodesConn(t, count, ttl, factory, func() *nats.Conn {
		nc, _ := connect(t, ns)
		return nc
	})
}

// startNodesOn starts nodes connected to the NATS server at url over TCP,
// reconnecting forever when it goes away.
func startNodesOn(t testing.TB, url string, count int, ttl time.Duration, factory func(node string) func(*party.Room) party.Server) []*testNode {
	t.Helper()
	return startNodesConn(t, count, ttl, factory, func() *nats.Conn {
		nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectJitter(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	})
}

func startNodesConn(t testing.TB, count int, ttl time.Duration, factory func(node string) func(*party.Room) party.Server, conn func() *nats.Conn) []*testNode {
	t.Helper()
	return startNodesConfig(t, count, Config{TTL: ttl}, factory, conn)
}

// startNodesConfig starts nodes with cfg (its Node, Owners.Bucket and Store
// names set here).
func startNodesConfig(t testing.TB, count int, cfg Config, factory func(node string) func(*party.Room) party.Server, conn func() *nats.Conn) []*testNode {
	t.Helper()
	nodes := make([]*testNode, count)
	for i := range nodes {
		nc := conn()
		name := "n" + string(rune('1'+i))
		h := party.Handler(factory(name))
		h.IdleTimeout = 200 * time.Millisecond
		c := cfg
		c.Node = name
		c.Owners.Bucket = "owners"
		c.Store = StoreConfig{Stream: "STORE", Subject: "store", AlarmBucket: "alarms"}
		n, err := Join(testCtx(t, 10*time.Second), h, nc, c)
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

// shutdownNodes shuts the nodes down gracefully now (their cleanup does it
// again, which does nothing).
func shutdownNodes(t testing.TB, nodes []*testNode) {
	t.Helper()
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n.node.Shutdown(ctx)
		cancel()
		if err != nil {
			buf := make([]byte, 1<<20)
			t.Errorf("Shutdown of %s: %v\n%s", n.node.name, err, buf[:runtime.Stack(buf, true)])
		}
	}
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

// expectClose reads until the connection closes, which it must with code.
func (c *client) expectClose(code party.StatusCode) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := c.conn.Read(ctx)
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != websocket.StatusCode(code) {
			c.t.Fatalf("closed with %v (%v), want %d", got, err, code)
		}
		_ = data
		return
	}
}

// ownerOf returns the name of the node that owns room of the default party.
func ownerOf(t testing.TB, n *testNode, room string) string {
	t.Helper()
	own, err := n.node.owners.Owner(testCtx(t, 5*time.Second), "main", room)
	if err != nil {
		t.Fatal(err)
	}
	return own.Node
}

// expectNone fails the test if a message arrives within d.
func (c *client) expectNone(d time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if _, data, err := c.conn.Read(ctx); err == nil {
		c.t.Fatalf("got %q, want nothing", data)
	}
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

// countingServer counts, per room, the Servers built and the connections
// they saw join.
type countingServer struct {
	room   *party.Room
	joined *sync.Map // room id -> *atomic.Int64
}

func (s *countingServer) OnConnect(c *party.Connection, _ *http.Request) {
	v, _ := s.joined.LoadOrStore(s.room.ID(), new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	c.Send(party.Text("in"))
}

// TestOneServerPerRoom joins 1,000 rooms concurrently from three nodes, one
// client per node and room: each room's Server is built exactly once in the
// cluster, and that one instance sees all three connections.
func TestOneServerPerRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("3,000 connections")
	}
	const rooms = 1000
	ns := startServer(t, "")
	var built, joined sync.Map
	nodes := startNodes(t, ns, 3, 5*time.Second, func(r *party.Room) party.Server {
		v, _ := built.LoadOrStore(r.ID(), new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		return &countingServer{room: r, joined: &joined}
	})
	for _, n := range nodes {
		n.host.IdleTimeout = time.Minute // no room is dropped and built again meanwhile
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	errs := make(chan error, rooms*3)
	for i := range rooms * 3 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			node := nodes[i%3]
			room := fmt.Sprintf("r%d", i/3)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			u := "ws" + strings.TrimPrefix(node.srv.URL, "http") + "/parties/main/" + room + "?_pk=c" + strconv.Itoa(i)
			conn, resp, err := websocket.Dial(ctx, u, nil)
			if err != nil {
				var body []byte
				if resp != nil {
					body, _ = io.ReadAll(resp.Body)
				}
				errs <- fmt.Errorf("%s on node %d: %w: %s", room, i%3, err, body)
				return
			}
			t.Cleanup(func() { conn.CloseNow() })
			if _, data, err := conn.Read(ctx); err != nil || string(data) != "in" {
				errs <- fmt.Errorf("%s on node %d: read %q, %v", room, i%3, data, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range rooms {
		room := fmt.Sprintf("r%d", i)
		b, _ := built.Load(room)
		j, _ := joined.Load(room)
		if b == nil || b.(*atomic.Int64).Load() != 1 {
			t.Fatalf("room %s: %v Servers built, want 1", room, b)
		}
		if j == nil || j.(*atomic.Int64).Load() != 3 {
			t.Fatalf("room %s: its Server saw %v connections join, want 3", room, j)
		}
	}
}

// TestJoinWithoutDeadline: Join works with a context that has no deadline.
func TestJoinWithoutDeadline(t *testing.T) {
	ns := startServer(t, "")
	nc, _ := connect(t, ns)
	n, err := Join(context.Background(), party.Handler(guide.New), nc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
