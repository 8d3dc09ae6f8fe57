package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"party"
)

// slowEcho is a room that takes a millisecond per message and broadcasts
// each to everyone but its sender; it answers HTTP requests with its node's
// name and the request's path and body, and counts alarms.
type slowEcho struct {
	room   *party.Room
	node   string
	alarms chan string
}

func (s *slowEcho) OnMessage(msg party.Message, c *party.Connection) {
	if m := msg.String(); strings.HasPrefix(m, "alarm ") {
		d, _ := time.ParseDuration(strings.TrimPrefix(m, "alarm "))
		if err := s.room.SetAlarm(time.Now().Add(d)); err != nil {
			c.Send(party.Text("alarm refused: " + err.Error()))
			return
		}
		c.Send(party.Text("alarm set"))
		return
	}
	time.Sleep(time.Millisecond)
	s.room.Broadcast(msg, c.ID())
}

func (s *slowEcho) OnRequest(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Node", s.node)
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
}

func (s *slowEcho) OnAlarm() {
	if s.alarms != nil {
		s.alarms <- s.node
	}
}

func slowEchoNodes(t *testing.T, count int, ttl time.Duration, alarms chan string) []*testNode {
	ns := startServer(t, "")
	return startNodesWith(t, ns, count, ttl, func(node string) func(*party.Room) party.Server {
		return func(r *party.Room) party.Server { return &slowEcho{room: r, node: node, alarms: alarms} }
	})
}

// TestOrderAndCreditAcrossNodes: a client held by one node sends 2,000
// messages back to back to a room that runs on another and handles one a
// millisecond, far more than the relay's window of 256 in flight: the sender
// is slowed (credit), never closed, and a client on a third node gets every
// message once, in order.
func TestOrderAndCreditAcrossNodes(t *testing.T) {
	nodes := slowEchoNodes(t, 3, 2*time.Second, nil)
	owner := dial(t, nodes[0], "x", "owner")
	_ = owner
	reader := dial(t, nodes[2], "x", "reader")
	sender := dial(t, nodes[1], "x", "sender")
	sendNumbered(t, sender, reader, 2000)
}

// sendNumbered has sender send "0" to "n-1" back to back, and checks that
// reader gets each once, in order.
func sendNumbered(t *testing.T, sender, reader *client, n int) {
	t.Helper()
	go func() {
		for i := range n {
			if err := sender.conn.Write(context.Background(), 1, []byte(strconv.Itoa(i))); err != nil {
				return
			}
		}
	}()
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, data, err := reader.conn.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(data) != strconv.Itoa(i) {
			t.Fatalf("message %d: got %q", i, data)
		}
	}
}

// TestFetchReachesTheOwner: an HTTP request to a room on a node that does
// not run it is answered by the room's OnRequest on its owner.
func TestFetchReachesTheOwner(t *testing.T) {
	nodes := slowEchoNodes(t, 2, 2*time.Second, nil)
	dial(t, nodes[0], "x", "a") // n1 runs x
	for _, n := range nodes {
		resp, err := http.Post(n.srv.URL+"/parties/main/x/sub", "text/plain", strings.NewReader("hi"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "POST /parties/main/x/sub hi" || resp.Header.Get("X-Node") != "n1" {
			t.Fatalf("via %s: %d %q from %q; want 200 from n1", n.node.name, resp.StatusCode, body, resp.Header.Get("X-Node"))
		}
	}
}

// TestGracefulHandover: the owner of a room shuts down; its room's clients,
// on every node, are closed with 1012 and rejoin at once on a survivor,
// which claims the room without waiting for the TTL (a long one here); the
// alarm the room had set fires there.
func TestGracefulHandover(t *testing.T) {
	alarms := make(chan string, 4)
	nodes := slowEchoNodes(t, 3, time.Minute, alarms)
	a := dial(t, nodes[0], "x", "a") // n1 runs x
	b := dial(t, nodes[1], "x", "b")
	a.send("alarm 2s")
	a.expect("alarm set")

	var wg sync.WaitGroup
	for _, cl := range []*client{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.expectClose(party.StatusServiceRestart)
		}()
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nodes[0].node.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	b = dial(t, nodes[1], "x", "b")
	a = dial(t, nodes[2], "x", "a")
	a.send("back")
	b.expect("back")
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the room ran again %v after its owner's Shutdown; the TTL is a minute: want no wait for it", took)
	}
	select {
	case node := <-alarms:
		if node == "n1" {
			t.Fatal("the alarm fired on the node that shut down")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the room's alarm did not fire on its new owner")
	}
}

// TestBackgroundBroadcast: a background job's broadcast reaches the room's
// members on every node, wherever it runs: Host.Room's Broadcast on the
// owner and on a node that relays the room, and Node.Broadcast on a node
// that has no room at all; without is applied everywhere.
func TestBackgroundBroadcast(t *testing.T) {
	nodes := slowEchoNodes(t, 3, 2*time.Second, nil)
	a := dial(t, nodes[0], "x", "a") // n1 runs x
	b := dial(t, nodes[1], "x", "b") // n2 relays it
	if nodes[2].host.Room("main", "x") != nil {
		t.Fatal("n3 has a room x")
	}
	nodes[0].host.Room("main", "x").Broadcast(party.Text("from the owner"))
	nodes[1].host.Room("main", "x").Broadcast(party.Text("from the relay"), "a")
	if err := nodes[2].node.Broadcast(context.Background(), "main", "x", party.Binary([]byte("from n3")), "b"); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].node.Broadcast(context.Background(), "main", "nowhere", party.Text("lost")); err != nil {
		t.Fatalf("Broadcast to a room that runs nowhere: %v", err)
	}
	a.expect("from the owner")
	b.expect("from the owner")
	b.expect("from the relay")
	a.expect("from n3")
	b.send("done") // the room is in order: b's message comes after the broadcasts
	a.expect("done")
	b.expectNone(200 * time.Millisecond) // not "from n3": b was excluded
}

// TestCreditLostOrLate: a client held by n2 sends 1,000 messages back to
// back into a room on n1, whose reader must get them all, in order, the
// sender never closed:
//   - "lost": n1 loses its first 4 credits (as NATS may lose messages), a
//     whole window: n2's relay asks n1 for its count after a second
//     without credit, and goes on;
//   - "late": the room's handler holds the first message for 3 s, far
//     longer than JoinTimeout: the sender waits, as it would on one node.
func TestCreditLostOrLate(t *testing.T) {
	for _, tc := range []struct {
		name        string
		dropCredits int64
		hold        time.Duration
	}{
		{"lost", 4, 0},
		{"late", 0, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := startServer(t, "")
			gate := make(chan struct{})
			if tc.hold == 0 {
				close(gate)
			} else {
				time.AfterFunc(tc.hold, func() { close(gate) })
			}
			nodes := startNodesConfig(t, 2, Config{TTL: 2 * time.Second, JoinTimeout: 500 * time.Millisecond},
				func(string) func(*party.Room) party.Server {
					return func(r *party.Room) party.Server { return &gatedChat{room: r, gate: gate} }
				}, func() *nats.Conn {
					nc, _ := connect(t, ns)
					return nc
				})
			nodes[0].node.dropCredits.Store(tc.dropCredits)
			reader := dial(t, nodes[0], "x", "reader") // n1 runs x
			sender := dial(t, nodes[1], "x", "sender")
			sendNumbered(t, sender, reader, 1000)
			if left := nodes[0].node.dropCredits.Load(); left > 0 {
				t.Errorf("%d of the credits to lose were never sent", left)
			}
			reader.send("still there?") // the sender was never closed
			sender.expect("still there?")
		})
	}
}

// gatedChat broadcasts each message to the others once gate is closed.
type gatedChat struct {
	room *party.Room
	gate chan struct{}
}

func (s *gatedChat) OnMessage(m party.Message, c *party.Connection) {
	<-s.gate
	s.room.Broadcast(m, c.ID())
}

// TestFetchCycleAcrossNodes: room a runs on n1 and b on n2; a's handler
// fetches b, whose handler fetches a. The cycle is found at once: b's Fetch
// of a returns ErrDeadlock (the request from a named a as waiting),
// instead of both waiting for JoinTimeout (502).
func TestFetchCycleAcrossNodes(t *testing.T) {
	ns := startServer(t, "")
	nodes := startNodes(t, ns, 2, 2*time.Second, func(r *party.Room) party.Server { return cycler{r} })
	for _, c := range []struct {
		n    *testNode
		room string
	}{{nodes[0], "a"}, {nodes[1], "b"}} {
		if body, status := httpGet(t, c.n.srv.URL+"/parties/main/"+c.room); status != http.StatusOK || body != c.room+" here" {
			t.Fatalf("GET %s on %s: %d %q", c.room, c.n.node.name, status, body)
		}
	}
	if own := ownerOf(t, nodes[0], "b"); own != "n2" {
		t.Fatalf("b is owned by %s, want n2", own)
	}
	started := time.Now()
	body, status := httpGet(t, nodes[0].srv.URL+"/parties/main/a/call")
	if want := "a got 200 (b: party: call would deadlock"; status != http.StatusOK || !strings.HasPrefix(body, want) {
		t.Errorf("a's call: %d %q, want 200 %q...", status, body, want)
	}
	if took := time.Since(started); took > time.Second {
		t.Errorf("the cycle was found after %v, not at once", took)
	}
}

// cycler answers /call by fetching the other room (a and b fetch each
// other) and saying what it got; other paths with "ROOM here".
type cycler struct{ room *party.Room }

func (c cycler) OnRequest(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/call") {
		io.WriteString(w, c.room.ID()+" here")
		return
	}
	next := map[string]string{"a": "b", "b": "a"}[c.room.ID()]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://rooms.test/parties/main/"+next+"/call", nil)
	resp, err := c.room.Fetch("main", next, req)
	if err != nil {
		fmt.Fprintf(w, "%s: %v", c.room.ID(), err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Fprintf(w, "%s got %d (%s)", c.room.ID(), resp.StatusCode, body)
}

func httpGet(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body), resp.StatusCode
}
