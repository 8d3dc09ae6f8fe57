package party_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
	"party/storage"
)

// The placement seam (placement.go), driven by in-process fakes of the
// other nodes: a Placer, the Links and Fanouts of connections held
// elsewhere, and a Relay for rooms that run elsewhere.

// ---- fakes ------------------------------------------------------------------

// fakePlacer places rooms as place says (here, if place is nil), counting
// the calls for each room; call is 1 for a room's first.
type fakePlacer struct {
	place func(room string, call int) (party.Placement, error)
	wait  func(ctx context.Context) error // if set, Place first waits with it

	mu    sync.Mutex
	calls map[string]int
}

func (p *fakePlacer) Place(ctx context.Context, _, room string) (party.Placement, error) {
	if p.wait != nil {
		if err := p.wait(ctx); err != nil {
			return party.Placement{}, err
		}
	}
	p.mu.Lock()
	if p.calls == nil {
		p.calls = map[string]int{}
	}
	p.calls[room]++
	n := p.calls[room]
	p.mu.Unlock()
	if p.place == nil {
		return party.Placement{}, nil
	}
	return p.place(room, n)
}

func (p *fakePlacer) count(room string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[room]
}

// fakeNode is another node as the room's node sees it: the Links of the
// connections it holds, and its Fanout. What the room does to them is
// written to log, in order, beside what the room's handlers write there.
type fakeNode struct {
	name   string
	log    *events
	closed chan string // the id of each Link closed
}

func newFakeNode(name string, log *events) *fakeNode {
	return &fakeNode{name: name, log: log, closed: make(chan string, 100)}
}

func (n *fakeNode) Broadcast(msg party.Message, without []string) {
	n.log.add(fmt.Sprintf("%s broadcast %s without %v", n.name, msg.Bytes(), without))
}

func (n *fakeNode) link(id string) *fakeLink { return &fakeLink{node: n, id: id, fanout: n} }

// fakeLink is the Link of connection id, held by node.
type fakeLink struct {
	node   *fakeNode
	id     string
	fanout party.Fanout
}

func (l *fakeLink) Joined() { l.node.log.add(l.id + " joined") }

func (l *fakeLink) Send(msg party.Message) error {
	l.node.log.add(fmt.Sprintf("%s sent %s", l.id, msg.Bytes()))
	return nil
}

func (l *fakeLink) Close(code party.StatusCode, reason string) {
	l.node.log.add(fmt.Sprintf("%s closed %d %s", l.id, code, reason))
	l.node.closed <- l.id
}

func (l *fakeLink) Fanout() party.Fanout { return l.fanout }

// fakeRelay is the Server of a room that runs on another node. Admit
// answers by the connection's id: "wait" waits for gate, "deny", "down" and
// "busy" refuse, any other id is admitted.
type fakeRelay struct {
	log       *events
	gate      chan struct{}
	admitting chan string // each Admit's id, as it starts
	messages  chan string // "ID TEXT" of each message
	closes    chan string // the id of each connection that closed
}

func newFakeRelay(log *events) *fakeRelay {
	return &fakeRelay{log: log, gate: make(chan struct{}), admitting: make(chan string, 100),
		messages: make(chan string, 100), closes: make(chan string, 100)}
}

func (f *fakeRelay) Admit(id string, r *http.Request) error {
	f.log.add("admit " + id + " " + r.URL.Path)
	f.admitting <- id
	switch id {
	case "wait":
		<-f.gate
	case "deny":
		return &party.HTTPError{Status: http.StatusForbidden, Message: "not on the list"}
	case "down":
		return errors.New("node b is unreachable")
	case "busy":
		return fmt.Errorf("admitting: %w", &party.HTTPError{Status: http.StatusTooManyRequests, Message: "slow down"})
	}
	return nil
}

func (f *fakeRelay) Abandon(id string) { f.log.add("abandon " + id) }

// Congested logs "congested ID true|false"; it is called under the
// connection's lock, and neither blocks nor calls it.
func (f *fakeRelay) Congested(c *party.Connection, congested bool) {
	f.log.add(fmt.Sprintf("congested %s %v", c.ID(), congested))
}

func (f *fakeRelay) Broadcast(msg party.Message, without []string) {
	f.log.add(fmt.Sprintf("relay broadcast %s without %v", msg.Bytes(), without))
}

func (f *fakeRelay) OnMessage(m party.Message, c *party.Connection) {
	f.log.add(fmt.Sprintf("relay message %s %s", c.ID(), m.Bytes()))
	f.messages <- c.ID() + " " + string(m.Bytes())
}

func (f *fakeRelay) OnClose(c *party.Connection) {
	f.log.add("relay close " + c.ID())
	f.closes <- c.ID()
}

var (
	_ party.Placer           = (*fakePlacer)(nil)
	_ party.Link             = (*fakeLink)(nil)
	_ party.Fanout           = (*fakeNode)(nil)
	_ party.Relay            = (*fakeRelay)(nil)
	_ party.OnMessageHandler = (*fakeRelay)(nil)
	_ party.OnCloseHandler   = (*fakeRelay)(nil)
)

// countingStorage is a storage.Provider that counts, for each room, the
// handles opened and closed. open, if set, runs at the start of each Open.
type countingStorage struct {
	inner *storage.MemoryStore
	open  func(room string)

	mu            sync.Mutex
	opens, closes map[string]int
}

func newCountingStorage() *countingStorage {
	return &countingStorage{inner: storage.NewMemoryStore(), opens: map[string]int{}, closes: map[string]int{}}
}

func (s *countingStorage) Open(partyName, room string) (storage.Storage, error) {
	if s.open != nil {
		s.open(room)
	}
	st, err := s.inner.Open(partyName, room)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.opens[room]++
	s.mu.Unlock()
	return &countedHandle{Storage: st, s: s, room: room}, nil
}

// counts returns how many handles of room were opened and closed.
func (s *countingStorage) counts(room string) (opens, closes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens[room], s.closes[room]
}

type countedHandle struct {
	storage.Storage
	s    *countingStorage
	room string
}

func (h *countedHandle) Close() error {
	h.s.mu.Lock()
	h.s.closes[h.room]++
	h.s.mu.Unlock()
	return h.Storage.Close()
}

// loggedProbe returns a probe that writes each handler call to log:
// "connect ID", "message ID TEXT", "close ID CODE REASON", "error ID ERR".
// OnConnect also sends "welcome ID". Tests replace the handlers they need.
func loggedProbe(r *party.Room, log *events) *probe {
	return &probe{
		room: r,
		connect: func(c *party.Connection, _ *http.Request) {
			log.add("connect " + c.ID())
			c.Send(party.Text("welcome " + c.ID()))
		},
		message: func(m party.Message, c *party.Connection) {
			log.add(fmt.Sprintf("message %s %s", c.ID(), m.Bytes()))
		},
		close: func(c *party.Connection) {
			code, reason := c.CloseStatus()
			log.add(fmt.Sprintf("close %s %d %s", c.ID(), code, reason))
		},
		error: func(c *party.Connection, err error) { log.add(fmt.Sprintf("error %s %v", c.ID(), err)) },
	}
}

// tagger is a probe that tags connections with tags.
type tagger struct {
	*probe
	tags func(c *party.Connection, r *http.Request) []string
}

func (s tagger) ConnectionTags(c *party.Connection, r *http.Request) []string { return s.tags(c, r) }

// dialPlaced dials url and closes the client's socket when the test ends,
// before its server shuts down, so that Shutdown never waits for a client
// that does not read.
func dialPlaced(t *testing.T, url string) *client {
	t.Helper()
	c := dial(t, url)
	t.Cleanup(func() { c.conn.CloseNow() })
	return c
}

// remoteRequest is the upgrade request of a connection held by node b.
func remoteRequest(target string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("X-User", "ada")
	req.RemoteAddr = "198.51.100.7:5000"
	return req
}

// checkLeaks fails t unless every goroutine and descriptor started from
// now on is gone once the test's cleanups (its servers' Shutdown) have run.
func checkLeaks(t *testing.T) {
	leaks := startLeakCheck(t)
	t.Cleanup(func() { leaks.check(t) }) // cleanups run last first: this one after serve's
}

// closedStats returns the party's connections closed for why, and the
// connections open now.
func closedStats(h *party.Host, why party.CloseReason) (closed uint64, open int64) {
	ps := h.Stats().Parties[party.DefaultParty]
	return ps.ConnectionsClosed[why], ps.Connections
}

func shutdown(t *testing.T, h *party.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// ---- JoinRemote -------------------------------------------------------------

// A connection held by another node joins with its request, hears from the
// room through its Link, counts as a member, and closes once.
func TestJoinRemote(t *testing.T) {
	checkLeaks(t)
	log := &events{}
	closes := make(chan string, 10)
	var seen *http.Request // r1's request as OnConnect saw it, on JoinRemote's goroutine
	var seenURI string
	h := party.Handler(func(r *party.Room) party.Server {
		p := loggedProbe(r, log)
		connect := p.connect
		p.connect = func(c *party.Connection, req *http.Request) {
			if c.ID() == "r1" {
				seen, seenURI = req, c.URI()
			}
			connect(c, req)
		}
		p.close = func(c *party.Connection) {
			code, reason := c.CloseStatus()
			log.add(fmt.Sprintf("close %s %d %s", c.ID(), code, reason))
			closes <- c.ID()
		}
		return p
	})
	placer := &fakePlacer{}
	h.Placer = placer
	h.MaxConnectionsPerRoom = 2
	ws, _ := serve(t, h)
	ctx := context.Background()
	node := newFakeNode("b", log)

	rc, err := h.JoinRemote(ctx, party.DefaultParty, "lobby", "r1", remoteRequest("http://node-b.test/party/lobby?_pk=r1&from=b"), node.link("r1"))
	if err != nil {
		t.Fatalf("JoinRemote: %v", err)
	}
	if rc.ID() != "r1" {
		t.Errorf("Remote.ID() = %q, want r1", rc.ID())
	}
	// Joined before OnConnect, and OnConnect's Send through the Link, all
	// before JoinRemote returns.
	if got, want := log.list(), []string{"r1 joined", "connect r1", "r1 sent welcome r1"}; !slices.Equal(got, want) {
		t.Fatalf("after JoinRemote the log is\n%q\nwant\n%q", got, want)
	}
	if seen == nil {
		t.Fatal("OnConnect got no request")
	}
	for what, got := range map[string][2]string{
		"URL":        {seen.URL.String(), "http://node-b.test/party/lobby?_pk=r1&from=b"},
		"X-User":     {seen.Header.Get("X-User"), "ada"},
		"RemoteAddr": {seen.RemoteAddr, "198.51.100.7:5000"},
		"URI()":      {seenURI, "http://node-b.test/party/lobby?_pk=r1&from=b"},
	} {
		if got[0] != got[1] {
			t.Errorf("OnConnect saw %s %q, want %q", what, got[0], got[1])
		}
	}
	if n := placer.count("lobby"); n != 1 {
		t.Errorf("Place was called %d times for the room, want 1", n)
	}

	room := h.Room(party.DefaultParty, "lobby")
	if ids := connectionIDs(room); !slices.Equal(ids, []string{"r1"}) {
		t.Errorf("GetConnections yields %q, want [r1]", ids)
	}
	if room.GetConnection("r1") == nil {
		t.Error("GetConnection(r1) = nil")
	}

	// It counts toward MaxConnectionsPerRoom: with a local client the room
	// (of 2) is full, for sockets and for remote connections alike.
	l1 := dialPlaced(t, ws+"/party/lobby?_pk=l1")
	l1.expect("welcome l1")
	_, err = dialErr(ws+"/party/lobby?_pk=l2", nil)
	var de *dialError
	if !errors.As(err, &de) || de.status != http.StatusServiceUnavailable {
		t.Errorf("dialing a third connection: %v, want 503", err)
	}
	_, err = h.JoinRemote(ctx, party.DefaultParty, "lobby", "r2", remoteRequest("http://node-b.test/party/lobby?_pk=r2"), node.link("r2"))
	var he *party.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable {
		t.Errorf("JoinRemote of a third connection: %v, want a 503 HTTPError", err)
	}
	if log.has("r2 joined") {
		t.Error("a refused remote connection got Joined")
	}

	// Close goes to the Link, once.
	c := room.GetConnection("r1")
	c.Close(4001, "go away")
	c.Close(4002, "again")
	if id := receive(t, node.closed, "the Link's Close"); id != "r1" {
		t.Fatalf("Link.Close for %q, want r1", id)
	}
	if n := countPrefix(log.list(), "r1 closed"); n != 1 || !log.has("r1 closed 4001 go away") {
		t.Errorf("the Link was closed %d times (log %q), want once with 4001 go away", n, log.list())
	}
	if err := c.Send(party.Text("late")); !errors.Is(err, party.ErrConnectionClosed) {
		t.Errorf("Send after Close: %v, want ErrConnectionClosed", err)
	}
	if log.has("r1 sent late") {
		t.Error("Send after Close reached the Link")
	}
	if ids := connectionIDs(room); !slices.Equal(ids, []string{"l1"}) {
		t.Errorf("after r1's Close GetConnections yields %q, want [l1]", ids)
	}

	// Its node answers: OnClose runs with the status the server closed with,
	// and its place in the room is free again.
	rc.Leave(4001, "go away")
	if id := receive(t, closes, "r1's OnClose"); id != "r1" {
		t.Fatalf("OnClose of %q, want r1", id)
	}
	if !log.has("close r1 4001 go away") {
		t.Errorf("OnClose saw another status: %q", log.list())
	}
	rc.Leave(1000, "twice") // does nothing
	var rc2 *party.Remote
	eventually(t, "r1's place to be free", func() bool {
		rc2, err = h.JoinRemote(ctx, party.DefaultParty, "lobby", "r2", remoteRequest("http://node-b.test/party/lobby?_pk=r2"), node.link("r2"))
		return err == nil
	})
	rc2.Leave(party.StatusGoingAway, "")
	receive(t, closes, "r2's OnClose")
	l1.close()
	receive(t, closes, "l1's OnClose")
	if n := countPrefix(log.list(), "close r1"); n != 1 {
		t.Errorf("OnClose ran %d times for r1, want 1", n)
	}
	shutdown(t, h)
	if _, open := closedStats(h, party.ClosedByServer); open != 0 {
		t.Errorf("%d connections still counted open after Shutdown", open)
	}
}

func connectionIDs(r *party.Room) []string {
	var ids []string
	for c := range r.GetConnections() {
		ids = append(ids, c.ID())
	}
	slices.Sort(ids)
	return ids
}

func countPrefix(log []string, prefix string) int {
	n := 0
	for _, l := range log {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// Remote.Receive hands messages to OnMessage in order, each handled
// callback once; Leave closes the connection after the messages already
// given, and a message given after Leave is dropped, its callback called.
func TestRemoteReceive(t *testing.T) {
	checkLeaks(t)
	const n = 1000
	log := &events{}
	closes := make(chan string, 10)
	gate := make(chan struct{})
	order := map[string][]string{} // by connection: the texts OnMessage got, in the room's turn
	h := party.Handler(func(r *party.Room) party.Server {
		p := loggedProbe(r, log)
		p.message = func(m party.Message, c *party.Connection) {
			if string(m.Bytes()) == "gate" {
				<-gate
			}
			order[c.ID()] = append(order[c.ID()], string(m.Bytes()))
		}
		p.close = func(c *party.Connection) {
			code, reason := c.CloseStatus()
			log.add(fmt.Sprintf("close %s %d %s", c.ID(), code, reason))
			closes <- c.ID()
		}
		return p
	})
	serve(t, h)
	node := newFakeNode("b", log)
	join := func(id string) *party.Remote {
		t.Helper()
		rc, err := h.JoinRemote(context.Background(), party.DefaultParty, "talk", id, remoteRequest("http://node-b.test/party/talk?_pk="+id), node.link(id))
		if err != nil {
			t.Fatalf("JoinRemote(%s): %v", id, err)
		}
		return rc
	}
	// send gives rc the messages "0" to "n-1", and returns how many times
	// each one's handled callback ran, complete once done is closed.
	send := func(rc *party.Remote) (handled []atomic.Int32, done chan struct{}) {
		handled, done = make([]atomic.Int32, n), make(chan struct{})
		var left atomic.Int32
		left.Store(n)
		for i := range n {
			rc.Receive(party.Text(strconv.Itoa(i)), func() {
				handled[i].Add(1)
				if left.Add(-1) == 0 {
					close(done)
				}
			})
		}
		return handled, done
	}
	numbers := func(prefix ...string) []string {
		s := slices.Clone(prefix)
		for i := range n {
			s = append(s, strconv.Itoa(i))
		}
		return s
	}
	checkHandledOnce := func(handled []atomic.Int32) {
		t.Helper()
		for i := range handled {
			if got := handled[i].Load(); got != 1 {
				t.Fatalf("message %d: handled called %d times, want 1", i, got)
			}
		}
	}

	t.Run("in order", func(t *testing.T) {
		rc := join("r1")
		handled, done := send(rc)
		receive(t, done, "every message handled")
		checkHandledOnce(handled)
		if got := order["r1"]; !slices.Equal(got, numbers()) {
			t.Fatalf("OnMessage got %d messages, out of order or missing (first %q)", len(got), got[:min(10, len(got))])
		}
		rc.Leave(party.StatusGoingAway, "bye")
		if id := receive(t, closes, "r1's OnClose"); id != "r1" {
			t.Fatalf("OnClose of %q, want r1", id)
		}
		checkHandledOnce(handled)
	})

	t.Run("leave after the messages given", func(t *testing.T) {
		rc := join("r2")
		gateHandled := make(chan struct{})
		rc.Receive(party.Text("gate"), func() { close(gateHandled) }) // OnMessage waits for gate
		handled, done := send(rc)
		rc.Leave(4000, "tab closed") // with the n messages still queued
		late := make(chan struct{})
		rc.Receive(party.Text("late"), func() { close(late) })
		receive(t, late, "the handled callback of a message given after Leave")
		close(gate)
		receive(t, gateHandled, "the first message handled")
		receive(t, done, "every message handled")
		if id := receive(t, closes, "r2's OnClose"); id != "r2" {
			t.Fatalf("OnClose of %q, want r2", id)
		}
		checkHandledOnce(handled)
		if got := order["r2"]; !slices.Equal(got, numbers("gate")) {
			t.Fatalf("OnMessage got %d of the %d messages given before Leave (first %q, last %q)",
				len(got), n+1, got[:min(5, len(got))], got[max(0, len(got)-5):])
		}
		if got := log.list(); got[len(got)-1] != "close r2 4000 tab closed" {
			t.Errorf("the log ends with %q, want r2's OnClose with 4000 tab closed", got[len(got)-1])
		}
	})

	shutdown(t, h)
	if closed, _ := closedStats(h, party.ClosedByClient); closed != 2 {
		t.Errorf("ConnectionsClosed[client] = %d, want 2", closed)
	}
	if log.has("r1 closed") || log.has("r2 closed") {
		t.Errorf("the server closed a Link of a client that left: %q", log.list())
	}
}

// A remote connection whose node says it is congested holds its room back
// as a congested socket here does: no further message of any member is
// handled, the room's own sockets' nor other remote connections', until it
// is clear again, or until it leaves. Repeating Congested(true) counts
// once.
func TestRemoteCongested(t *testing.T) {
	checkLeaks(t)
	log := &events{}
	h := party.Handler(func(r *party.Room) party.Server { return loggedProbe(r, log) })
	ws, _ := serve(t, h)
	node := newFakeNode("b", log)
	join := func(id string) *party.Remote {
		t.Helper()
		rc, err := h.JoinRemote(context.Background(), party.DefaultParty, "held", id, remoteRequest("http://node-b.test/party/held?_pk="+id), node.link(id))
		if err != nil {
			t.Fatalf("JoinRemote(%s): %v", id, err)
		}
		return rc
	}
	local := dialPlaced(t, ws+"/party/held?_pk=local")
	local.expect("welcome local")
	slow, other := join("slow"), join("other")

	// heldBack checks that what local and other send now waits (but the
	// message local's read loop was already reading: a read loop waits
	// after a message, see flow.go), then that it is handled once release
	// has run.
	heldBack := func(round string, release func()) {
		t.Helper()
		local.send(round + "-1")
		eventually(t, round+": the message already being read", func() bool { return log.has("message local " + round + "-1") })
		local.send(round + "-2")
		other.Receive(party.Text(round), nil)
		time.Sleep(150 * time.Millisecond)
		for _, m := range []string{"message local " + round + "-2", "message other " + round} {
			if log.has(m) {
				t.Fatalf("%s: %q was handled while a member was congested", round, m)
			}
		}
		release()
		eventually(t, round+": the held messages to be handled", func() bool {
			return log.has("message local "+round+"-2") && log.has("message other "+round)
		})
	}

	slow.Congested(true)
	slow.Congested(true) // said again, as a node repeats it: still one member congested
	heldBack("clear", func() { slow.Congested(false) })

	slow.Congested(true)
	heldBack("leave", func() { slow.Leave(party.StatusGoingAway, "gone") })
	slow.Congested(true) // after Leave: nothing to hold back
	local.send("after")
	eventually(t, "a message after the congested member left", func() bool { return log.has("message local after") })

	other.Leave(party.StatusGoingAway, "")
	local.close()
	shutdown(t, h)
}

// A socket held by a relay room tells the Relay when it goes over its
// high-water mark and when it is back under it, and again (clear) when it
// closes congested.
func TestRelayCongested(t *testing.T) {
	checkLeaks(t)
	log := &events{}
	relay := newFakeRelay(log)
	h := party.Handler(func(r *party.Room) party.Server { return loggedProbe(r, log) })
	h.Placer = &fakePlacer{place: func(string, int) (party.Placement, error) { return party.Placement{Relay: relay}, nil }}
	h.SendQueueMessages = 64 // congested past 16 queued
	ws, _ := serve(t, h)
	c := dialPlaced(t, ws+"/party/away?_pk=reader")
	room := h.Room(party.DefaultParty, "away")
	if room == nil {
		t.Fatal("no relay room")
	}
	var held *party.Connection
	for conn := range room.GetConnections() {
		held = conn
	}

	// The client reads nothing: its socket's buffers fill, then its queue.
	big := party.Binary(make([]byte, 64<<10))
	congest := func() int {
		t.Helper()
		heard := countPrefix(log.list(), "congested reader true")
		for i := 1; i <= 4000; i++ {
			if err := held.Send(big); err != nil {
				t.Fatalf("Send %d: %v", i, err)
			}
			if countPrefix(log.list(), "congested reader true") > heard {
				return i
			}
			if i%16 == 0 {
				time.Sleep(time.Millisecond) // let the writer fill the socket
			}
		}
		t.Fatal("4000 messages of 64 KiB queued for a client that does not read, and the Relay never heard it congested")
		return 0
	}
	sent := congest()
	if log.has("congested reader false") {
		t.Fatal("cleared before the client read")
	}
	for range sent {
		c.read()
	}
	eventually(t, "the Relay to hear the reader clear", func() bool { return log.has("congested reader false") })

	// Congested again, then closed: clear again.
	before := len(log.list())
	congest()
	held.Close(party.StatusNormalClosure, "")
	eventually(t, "the Relay to hear the closing reader clear", func() bool {
		return slices.Contains(log.list()[before:], "congested reader false")
	})
	c.conn.CloseNow()
	shutdown(t, h)
}

// JoinRemote refuses what it cannot join, without a trace in the Host:
// Shutdown then returns at once (nothing counted in flight). No HTTP server:
// JoinRemote needs none.
func TestJoinRemoteRefused(t *testing.T) {
	checkLeaks(t)
	log := &events{}
	h := party.Handler(func(r *party.Room) party.Server {
		return tagger{probe: loggedProbe(r, log), tags: func(c *party.Connection, _ *http.Request) []string {
			if c.ID() == "bad" {
				panic("no tags for bad")
			}
			return nil
		}}
	})
	h.Logger = (&logBuffer{}).logger() // the panic's stack stays out of the test's output
	node := newFakeNode("b", log)
	noFanout := node.link("nofanout")
	noFanout.fanout = nil
	for _, tc := range []struct {
		name, id string
		link     party.Link
		check    func(err error) bool
	}{
		{"nil link", "x", nil, func(err error) bool { return err != nil }},
		{"empty id", "", node.link(""), func(err error) bool {
			var he *party.HTTPError
			return errors.As(err, &he) && he.Status == http.StatusBadRequest
		}},
		{"link without a Fanout", "nofanout", noFanout, func(err error) bool { return err != nil }},
		{"ConnectionTags panics", "bad", node.link("bad"), func(err error) bool { return errors.Is(err, party.ErrHandlerPanic) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("JoinRemote panicked: %v", p)
				}
			}()
			rc, err := h.JoinRemote(context.Background(), party.DefaultParty, "strict", tc.id, remoteRequest("http://node-b.test/party/strict"), tc.link)
			if rc != nil || !tc.check(err) {
				t.Errorf("JoinRemote = %v, %v: not the refusal expected", rc, err)
			}
		})
	}
	if log.has("bad joined") || log.has("connect bad") || log.has("close bad") {
		t.Errorf("a connection whose tags failed joined: %q", log.list())
	}
	if closed, open := closedStats(h, party.ClosedInternalError); closed != 1 || open != 0 {
		t.Errorf("stats: %d closed with internal_error and %d open, want 1 and 0", closed, open)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.Shutdown(ctx) }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Shutdown: %v, want nil: something is still counted in flight", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown hangs 4s past its deadline: the Host's count of work in flight is broken")
	}
	if _, err := h.JoinRemote(context.Background(), party.DefaultParty, "strict", "y", remoteRequest("http://node-b.test/party/strict"), node.link("y")); !errors.Is(err, party.ErrShutdown) {
		t.Errorf("JoinRemote after Shutdown: %v, want ErrShutdown", err)
	}
}

// ---- Broadcast --------------------------------------------------------------

// Room.Broadcast writes to local sockets itself and calls each other
// node's Fanout once, with without; it never sends to remote members one by
// one.
func TestBroadcastFanout(t *testing.T) {
	checkLeaks(t)
	log := &events{}
	h := party.Handler(func(r *party.Room) party.Server { return &probe{room: r} })
	h.Placer = &fakePlacer{}
	ws, _ := serve(t, h)
	local := map[string]*client{}
	for _, id := range []string{"l1", "l2", "l3"} {
		local[id] = dialPlaced(t, ws+"/party/hall?_pk="+id)
	}
	nodes := map[string]*fakeNode{"b": newFakeNode("b", log), "c": newFakeNode("c", log)}
	remote := map[string]*party.Remote{}
	for id, node := range map[string]*fakeNode{"b1": nodes["b"], "b2": nodes["b"], "c1": nodes["c"]} {
		rc, err := h.JoinRemote(context.Background(), party.DefaultParty, "hall", id, remoteRequest("http://node.test/party/hall?_pk="+id), node.link(id))
		if err != nil {
			t.Fatalf("JoinRemote(%s): %v", id, err)
		}
		remote[id] = rc
	}
	// A Call takes the room's turn: every join begun is done.
	if err := h.Call(context.Background(), party.DefaultParty, "hall", func(party.Server) error { return nil }); err != nil {
		t.Fatal(err)
	}
	room := h.Room(party.DefaultParty, "hall")
	if n := room.ConnectionCount(); n != 6 {
		t.Fatalf("%d connections in the room, want 6", n)
	}
	log.mu.Lock()
	log.log = nil // the joins
	log.mu.Unlock()

	cases := []struct {
		msg     string
		without []string
	}{
		{"to-all", nil},
		{"but-l2", []string{"l2"}},
		{"but-b1", []string{"b1"}},
		{"but-l1-and-c1", []string{"l1", "c1"}},
		{"but-everyone", []string{"l1", "l2", "l3", "b1", "b2", "c1"}},
		{"but-nobody-here", []string{"someone-else"}},
	}
	wantLocal := map[string][]string{}
	var wantNode []string
	for _, tc := range cases {
		room.Broadcast(party.Text(tc.msg), tc.without...)
		for id := range local {
			if !slices.Contains(tc.without, id) {
				wantLocal[id] = append(wantLocal[id], tc.msg)
			}
		}
		for _, n := range []string{"b", "c"} {
			wantNode = append(wantNode, fmt.Sprintf("%s broadcast %s without %v", n, tc.msg, tc.without))
		}
	}
	room.Broadcast(party.Text("end"))
	for id, c := range local {
		var got []string
		for s := c.readText(); s != "end"; s = c.readText() {
			got = append(got, s)
		}
		if !slices.Equal(got, wantLocal[id]) {
			t.Errorf("%s got %q, want %q", id, got, wantLocal[id])
		}
	}
	var gotNode []string
	for _, l := range log.list() {
		if !strings.Contains(l, " broadcast end ") {
			gotNode = append(gotNode, l)
		}
	}
	// Each Room.Broadcast calls each node's Fanout once; the order between
	// the two nodes of one Broadcast is not specified.
	slices.Sort(gotNode)
	slices.Sort(wantNode)
	if !slices.Equal(gotNode, wantNode) {
		t.Errorf("the nodes saw\n%q\nwant\n%q", gotNode, wantNode)
	}
	if n := countPrefix(log.list(), "b1 sent") + countPrefix(log.list(), "b2 sent") + countPrefix(log.list(), "c1 sent"); n != 0 {
		t.Errorf("Broadcast called Link.Send %d times: %q", n, log.list())
	}
	for _, rc := range remote {
		rc.Leave(party.StatusGoingAway, "")
	}
	for _, c := range local {
		c.close()
	}
	shutdown(t, h)
}

// ---- Relay rooms ------------------------------------------------------------

// A room placed elsewhere runs the Placement's Relay: Admit joins each
// client where the room runs before its socket opens, and the room opens no
// storage and builds no Server of its own.
func TestRelayRoom(t *testing.T) {
	checkLeaks(t)
	log := &events{}
	relay := newFakeRelay(log)
	var built sync.Map // room id -> true, for each Server the factory built
	h := party.Handler(func(r *party.Room) party.Server {
		built.Store(r.ID(), true)
		return loggedProbe(r, log)
	})
	placer := &fakePlacer{place: func(room string, _ int) (party.Placement, error) {
		if room == "away" {
			return party.Placement{Relay: relay}, nil
		}
		return party.Placement{}, nil
	}}
	store := newCountingStorage()
	h.Placer, h.Storage = placer, store
	ws, _ := serve(t, h)

	// Admit runs before the 101: the client's Dial waits for it.
	dialed := make(chan error, 1)
	var conn *websocket.Conn
	go func() {
		var err error
		conn, err = dialErr(ws+"/party/away?_pk=wait", nil)
		dialed <- err
	}()
	if id := receive(t, relay.admitting, "Admit"); id != "wait" {
		t.Fatalf("Admit(%q), want wait", id)
	}
	select {
	case err := <-dialed:
		t.Fatalf("Dial returned (err %v) before Admit did", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(relay.gate)
	if err := receive(t, dialed, "Dial"); err != nil {
		t.Fatalf("Dial once admitted: %v", err)
	}
	c := &client{t: t, conn: conn}
	t.Cleanup(func() { conn.CloseNow() })
	if !log.has("admit wait /party/away") {
		t.Errorf("Admit saw another request: %q", log.list())
	}

	// The relay's handlers get the client's messages and its close.
	c.send("hello")
	if m := receive(t, relay.messages, "the relay's OnMessage"); m != "wait hello" {
		t.Errorf("the relay's OnMessage got %q, want %q", m, "wait hello")
	}

	// Broadcast on the relay room (Host.Room's, from a background job)
	// goes to the room where it runs, not to the sockets held here: they
	// get it from there.
	h.Room("main", "away").Broadcast(party.Text("news"), "x")
	if !log.has("relay broadcast news without [x]") {
		t.Errorf("Broadcast on the relay room: got %q, want the relay's Broadcast", log.list())
	}
	c.silent(100 * time.Millisecond)

	// Admit's refusals.
	for _, tc := range []struct {
		id     string
		status int
		body   string
	}{
		{"deny", http.StatusForbidden, "not on the list"},
		{"busy", http.StatusTooManyRequests, "slow down"},
		{"down", http.StatusServiceUnavailable, "node b is unreachable"},
	} {
		t.Run("Admit refuses "+tc.id, func(t *testing.T) {
			_, err := dialErr(ws+"/party/away?_pk="+tc.id, nil)
			var de *dialError
			if !errors.As(err, &de) || de.status != tc.status || !strings.Contains(de.body, tc.body) {
				t.Fatalf("dial: %v, want %d with %q in the body", err, tc.status, tc.body)
			}
			if id := receive(t, relay.admitting, "Admit"); id != tc.id {
				t.Errorf("Admit(%q), want %q", id, tc.id)
			}
		})
	}
	if log.has("relay close deny") || log.has("relay close busy") || log.has("relay close down") {
		t.Errorf("a refused connection reached the relay's OnClose: %q", log.list())
	}
	if refused := h.Stats().Parties[party.DefaultParty].UpgradesRefused; refused[403] != 1 || refused[429] != 1 || refused[503] != 1 {
		t.Errorf("UpgradesRefused = %v, want one each of 403, 429, 503", refused)
	}

	// Call and JoinRemote reach only rooms that run here.
	called := false
	err := h.Call(context.Background(), party.DefaultParty, "away", func(party.Server) error { called = true; return nil })
	if !errors.Is(err, party.ErrElsewhere) || called {
		t.Errorf("Call on a relay room: %v (f called: %v), want ErrElsewhere", err, called)
	}
	node := newFakeNode("b", log)
	rc, err := h.JoinRemote(context.Background(), party.DefaultParty, "away", "r1", remoteRequest("http://node-b.test/party/away?_pk=r1"), node.link("r1"))
	if !errors.Is(err, party.ErrElsewhere) || rc != nil {
		t.Errorf("JoinRemote on a relay room: %v, %v, want ErrElsewhere", rc, err)
	}
	if log.has("r1 joined") {
		t.Error("JoinRemote on a relay room called Joined")
	}

	// A room here, beside it, opens its storage (the counter counts).
	here := dialPlaced(t, ws+"/party/here?_pk=h1")
	here.expect("welcome h1")
	if opens, _ := store.counts("here"); opens != 1 {
		t.Errorf("the room placed here opened %d storage handles, want 1", opens)
	}

	c.close()
	if id := receive(t, relay.closes, "the relay's OnClose"); id != "wait" {
		t.Errorf("the relay's OnClose for %q, want wait", id)
	}
	here.close()
	shutdown(t, h)
	if opens, _ := store.counts("away"); opens != 0 {
		t.Errorf("the relay room opened %d storage handles, want none", opens)
	}
	if _, ok := built.Load("away"); ok {
		t.Error("the party's factory built a Server for the relay room")
	}
	if n := placer.count("away"); n != 1 {
		t.Errorf("Place was called %d times for the relay room, want 1 (it stayed in memory)", n)
	}
}

// ---- Lost -------------------------------------------------------------------

// placement is one Placement a lostPlacer gave: its Lost, and what its
// Release saw.
type placement struct {
	lost            chan struct{}
	releases        atomic.Int32
	closesAtRelease atomic.Int32 // storage handles of the room closed when Release ran
}

// lostPlacer places every room here, each Placement with a Lost of its own
// and a Release that reports on released.
type lostPlacer struct {
	fakePlacer
	store    *countingStorage
	released chan *placement

	mu     sync.Mutex
	placed []*placement
}

func newLostPlacer(store *countingStorage) *lostPlacer {
	p := &lostPlacer{store: store, released: make(chan *placement, 10)}
	p.fakePlacer.place = func(room string, _ int) (party.Placement, error) {
		pl := &placement{lost: make(chan struct{})}
		p.mu.Lock()
		p.placed = append(p.placed, pl)
		p.mu.Unlock()
		return party.Placement{Lost: pl.lost, Release: func() {
			_, closes := store.counts(room)
			pl.closesAtRelease.Store(int32(closes))
			pl.releases.Add(1)
			p.released <- pl
		}}, nil
	}
	return p
}

func (p *lostPlacer) placement(i int) *placement {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.placed[i]
}

// Closing Lost drops the room at once: its sockets and remote connections
// are closed with 1012 "room moved", no handler of it runs again, Release
// runs once, after its storage is closed, and the next connection builds a
// new room, placed anew.
func TestPlacementLost(t *testing.T) {
	checkLeaks(t)
	log := &events{}
	store := newCountingStorage()
	placer := newLostPlacer(store)
	h := party.Handler(func(r *party.Room) party.Server { return loggedProbe(r, log) })
	h.Placer, h.Storage = placer, store
	ws, _ := serve(t, h)

	l1 := dialPlaced(t, ws+"/party/moving?_pk=l1")
	l1.expect("welcome l1")
	l2 := dialPlaced(t, ws+"/party/moving?_pk=l2")
	l2.expect("welcome l2")
	node := newFakeNode("b", log)
	rc, err := h.JoinRemote(context.Background(), party.DefaultParty, "moving", "r1", remoteRequest("http://node-b.test/party/moving?_pk=r1"), node.link("r1"))
	if err != nil {
		t.Fatalf("JoinRemote: %v", err)
	}
	first := placer.placement(0)
	before := log.list()

	close(first.lost)
	for _, c := range []*client{l1, l2} {
		if ce := c.closed(); ce.Code != websocket.StatusServiceRestart || ce.Reason != "room moved" {
			t.Errorf("a socket of the lost room closed with %v, want 1012 room moved", ce)
		}
	}
	if id := receive(t, node.closed, "the remote connection's Link closed"); id != "r1" {
		t.Errorf("Link.Close for %q, want r1", id)
	}
	if pl := receive(t, placer.released, "Release"); pl != first {
		t.Error("Release of another Placement")
	}
	if h.Room(party.DefaultParty, "moving") != nil {
		t.Error("the lost room is still in memory")
	}

	// Nothing of the lost room runs again: not r1's message, nor the
	// OnClose of anyone.
	handled := make(chan struct{})
	rc.Receive(party.Text("after"), func() { close(handled) })
	receive(t, handled, "the handled callback of a message to the lost room")
	rc.Leave(party.StatusServiceRestart, "room moved")
	eventually(t, "every connection of the lost room to end", func() bool {
		_, open := closedStats(h, party.ClosedMoved)
		return open == 0
	})
	if got, want := log.list(), append(slices.Clone(before), "r1 closed 1012 room moved"); !slices.Equal(got, want) {
		t.Errorf("after Lost the log is\n%q\nwant\n%q", got, want)
	}
	if moved, _ := closedStats(h, party.ClosedMoved); moved != 3 {
		t.Errorf("ConnectionsClosed[moved] = %d, want 3", moved)
	}
	if opens, closes := store.counts("moving"); opens != 1 || closes != 1 {
		t.Errorf("storage: %d handles opened, %d closed; want 1 and 1", opens, closes)
	}
	if n := first.closesAtRelease.Load(); n != 1 {
		t.Errorf("Release ran with %d storage handles closed, want 1 (after the room's)", n)
	}

	// The next connection builds a new room, placed anew.
	l3 := dialPlaced(t, ws+"/party/moving?_pk=l3")
	l3.expect("welcome l3")
	if n := placer.count("moving"); n != 2 {
		t.Errorf("Place was called %d times, want 2", n)
	}
	l3.send("still here")
	eventually(t, "the new room to handle a message", func() bool { return log.has("message l3 still here") })
	errc := make(chan error, 1)
	go func() { errc <- h.Shutdown(context.Background()) }()
	if ce := l3.closed(); ce.Code != websocket.StatusServiceRestart || ce.Reason != "server shutting down" {
		t.Errorf("at Shutdown the new room's socket closed with %v, want 1012 server shutting down", ce)
	}
	if err := receive(t, errc, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if pl := receive(t, placer.released, "the new room's Release"); pl != placer.placement(1) {
		t.Error("Shutdown released another Placement")
	}
	if n := first.releases.Load(); n != 1 {
		t.Errorf("the lost room's Release ran %d times, want 1", n)
	}
	if !log.has("close l3 1012 server shutting down") {
		t.Errorf("the new room's connection did not close at Shutdown: %q", log.list())
	}
}

// A connection that was joining when Lost closed (past the room's start,
// inside ConnectionTags, so not among the connections Lost closes) is
// closed like the others once it has joined.
func TestPlacementLostWhileJoining(t *testing.T) {
	checkLeaks(t)
	log := &events{}
	store := newCountingStorage()
	placer := newLostPlacer(store)
	tagging, proceed := make(chan struct{}), make(chan struct{})
	h := party.Handler(func(r *party.Room) party.Server {
		return tagger{probe: loggedProbe(r, log), tags: func(c *party.Connection, _ *http.Request) []string {
			if c.ID() == "late" {
				close(tagging)
				<-proceed
			}
			return nil
		}}
	})
	h.Placer, h.Storage = placer, store
	ws, _ := serve(t, h)
	l1 := dialPlaced(t, ws+"/party/moving?_pk=l1")
	l1.expect("welcome l1")
	late := dialPlaced(t, ws+"/party/moving?_pk=late") // open: its 101 comes before it joins
	receive(t, tagging, "ConnectionTags of the late connection")
	close(placer.placement(0).lost)
	if ce := l1.closed(); ce.Code != websocket.StatusServiceRestart || ce.Reason != "room moved" {
		t.Errorf("l1 closed with %v, want 1012 room moved", ce)
	}
	receive(t, placer.released, "Release")
	close(proceed)
	if ce := late.closed(); ce.Code != websocket.StatusServiceRestart || ce.Reason != "room moved" {
		t.Errorf("the connection joining when Lost closed got %v, want 1012 room moved", ce)
	}
	eventually(t, "both connections to end", func() bool {
		_, open := closedStats(h, party.ClosedMoved)
		return open == 0
	})
	if moved, _ := closedStats(h, party.ClosedMoved); moved != 2 {
		t.Errorf("ConnectionsClosed[moved] = %d, want 2", moved)
	}
	if got := log.list(); !slices.Equal(got, []string{"connect l1"}) {
		t.Errorf("handlers ran after Lost: %q", got)
	}
	shutdown(t, h)
}

// silentServer has no OnStart: nothing in its start stops at a lost room.
type silentServer struct{}

// Lost closing while the room's storage opens: the handle opened is closed
// with the room, before Release.
func TestPlacementLostWhileOpening(t *testing.T) {
	checkLeaks(t)
	store := newCountingStorage()
	opening, proceed := make(chan struct{}), make(chan struct{})
	store.open = func(string) {
		close(opening)
		<-proceed
	}
	placer := newLostPlacer(store)
	h := party.Handler(func(*party.Room) party.Server { return silentServer{} })
	h.Placer, h.Storage = placer, store
	ws, _ := serve(t, h)

	dialed := make(chan error, 1)
	var conn *websocket.Conn
	go func() {
		var err error
		conn, err = dialErr(ws+"/party/moving?_pk=s1", nil)
		dialed <- err
	}()
	receive(t, opening, "the room's storage to open")
	close(placer.placement(0).lost)
	// Let a Host that drops the room now show it (Release comes before the
	// handle exists); one that waits for the handle releases later.
	var released *placement
	select {
	case released = <-placer.released:
	case <-time.After(200 * time.Millisecond):
	}
	close(proceed)
	if err := receive(t, dialed, "Dial"); err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	c := &client{t: t, conn: conn}
	if ce := c.closed(); ce.Code != websocket.StatusServiceRestart || ce.Reason != "room moved" {
		t.Errorf("the connection closed with %v, want 1012 room moved", ce)
	}
	if released == nil {
		released = receive(t, placer.released, "Release")
	}
	if n := released.closesAtRelease.Load(); n != 1 {
		t.Errorf("Release ran with %d storage handles closed, want 1 (after the room's)", n)
	}
	eventually(t, "the storage handle to be closed", func() bool {
		opens, closes := store.counts("moving")
		return opens == 1 && closes == 1
	})
	shutdown(t, h)
}

// servingProbe is a loggedProbe that answers plain requests with "served".
type servingProbe struct{ *probe }

func (servingProbe) OnRequest(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "served") }

// A room whose Placement is lost while OnStart runs, and whose OnStart then
// fails (its storage refused a fenced write), is placed anew for the
// request that started it, up to 3 times: the client reaches the room where
// it runs now. Only a room lost 3 times over fails the request, as any
// failed start does (1011 with the error, or 500).
func TestPlacementLostWhileStarting(t *testing.T) {
	for _, tc := range []struct {
		name       string
		lostStarts int  // the first lostStarts starts are lost and fail
		upgrade    bool // a WebSocket client, or a plain GET
	}{
		{"socket, lost once", 1, true},
		{"socket, lost twice", 2, true},
		{"socket, lost every time", 3, true},
		{"request, lost once", 1, false},
		{"request, lost every time", 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			log := &events{}
			store := newCountingStorage()
			placer := newLostPlacer(store)
			var starts atomic.Int32
			h := party.Handler(func(r *party.Room) party.Server {
				p := loggedProbe(r, log)
				p.start = func() error {
					n := int(starts.Add(1))
					if n > tc.lostStarts {
						return nil
					}
					close(placer.placement(n - 1).lost)                      // the room moves while it starts...
					return fmt.Errorf("storage: write fenced (start %d)", n) // ...and its write is refused
				}
				return servingProbe{p}
			})
			h.Placer, h.Storage = placer, store
			ws, srv := serve(t, h)

			lostEveryTime := tc.lostStarts >= 3
			if tc.upgrade {
				c := dialPlaced(t, ws+"/party/moving?_pk=a")
				if lostEveryTime {
					if ce := c.closed(); ce.Code != websocket.StatusInternalError || !strings.Contains(ce.Reason, "write fenced (start 3)") {
						t.Errorf("closed with %v, want 1011 with the third start's error", ce)
					}
				} else {
					c.expect("welcome a")
					c.close()
				}
			} else {
				body, status := get(t, srv.URL+"/party/moving")
				if lostEveryTime {
					if status != http.StatusInternalServerError || !strings.Contains(body, "write fenced (start 3)") {
						t.Errorf("GET: %d %q, want 500 with the third start's error", status, body)
					}
				} else if status != http.StatusOK || body != "served" {
					t.Errorf("GET: %d %q, want 200 served", status, body)
				}
			}
			wantPlaced := min(tc.lostStarts+1, 3)
			if n := placer.count("moving"); n != wantPlaced {
				t.Fatalf("Place was called %d times, want %d", n, wantPlaced)
			}
			for i := range min(tc.lostStarts, 3) {
				pl := placer.placement(i)
				eventually(t, "the lost Placement's Release", func() bool { return pl.releases.Load() == 1 })
			}
			var want []string
			if tc.upgrade && !lostEveryTime {
				want = []string{"connect a", "close a 1000 "}
			}
			eventually(t, "the handlers to finish", func() bool { return len(log.list()) == len(want) })
			if got := log.list(); !slices.Equal(got, want) {
				t.Errorf("handlers ran: %q, want %q", got, want)
			}
			shutdown(t, h)
		})
	}
}

// ---- Placer errors ----------------------------------------------------------

// A Placer's error fails the room's start: the connection gets 1011 with
// the error, a request 500, and the next one places the room again.
func TestPlacerError(t *testing.T) {
	checkLeaks(t)
	log := &events{}
	placer := &fakePlacer{place: func(room string, call int) (party.Placement, error) {
		if call <= 2 {
			return party.Placement{}, fmt.Errorf("no quorum for %s (try %d)", room, call)
		}
		return party.Placement{}, nil
	}}
	h := party.Handler(func(r *party.Room) party.Server { return loggedProbe(r, log) })
	h.Placer = placer
	ws, srv := serve(t, h)

	c := dialPlaced(t, ws+"/party/flaky?_pk=a")
	if ce := c.closed(); ce.Code != websocket.StatusInternalError || !strings.Contains(ce.Reason, "no quorum for flaky (try 1)") {
		t.Errorf("closed with %v, want 1011 with the Placer's error", ce)
	}
	if body, status := get(t, srv.URL+"/party/flaky"); status != http.StatusInternalServerError || !strings.Contains(body, "no quorum for flaky (try 2)") {
		t.Errorf("GET: %d %q, want 500 with the Placer's error", status, body)
	}
	c = dialPlaced(t, ws+"/party/flaky?_pk=b")
	c.expect("welcome b")
	if n := placer.count("flaky"); n != 3 {
		t.Errorf("Place was called %d times, want 3", n)
	}
	// Counted once the server's close handshake is over, a moment after
	// the client has seen the close frame.
	eventually(t, "the failed connection to be counted", func() bool {
		failed, _ := closedStats(h, party.ClosedInternalError)
		return failed == 1
	})
	if got := log.list(); !slices.Equal(got, []string{"connect b"}) {
		t.Errorf("handlers ran: %q, want only b's OnConnect", got)
	}
	c.close()
	shutdown(t, h)
}

// ---- Shutdown ---------------------------------------------------------------

// A remote connection whose node never answers its Link's Close leaves at
// Shutdown's deadline: Shutdown returns, and its OnClose has run.
func TestShutdownRemoteUnanswered(t *testing.T) {
	checkLeaks(t)
	log := &events{}
	h := party.Handler(func(r *party.Room) party.Server { return loggedProbe(r, log) })
	h.Placer = &fakePlacer{}
	ws, _ := serve(t, h)
	l1 := dialPlaced(t, ws+"/party/late?_pk=l1")
	l1.expect("welcome l1")
	node := newFakeNode("b", log)
	rc, err := h.JoinRemote(context.Background(), party.DefaultParty, "late", "r1", remoteRequest("http://node-b.test/party/late?_pk=r1"), node.link("r1"))
	if err != nil {
		t.Fatalf("JoinRemote: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- h.Shutdown(ctx) }()
	if ce := l1.closed(); ce.Code != websocket.StatusServiceRestart {
		t.Errorf("the local socket closed with %v, want 1012", ce)
	}
	if err := receive(t, errc, "Shutdown"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline's error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v after a 200ms deadline", d)
	}
	for _, want := range []string{"r1 closed 1012 server shutting down", "close r1 1012 server shutting down", "close l1 1012 server shutting down"} {
		if !log.has(want) {
			t.Errorf("no %q in %q", want, log.list())
		}
	}
	if n := countPrefix(log.list(), "r1 closed"); n != 1 {
		t.Errorf("the Link was closed %d times, want 1", n)
	}
	if shut, open := closedStats(h, party.ClosedShutdown); shut != 2 || open != 0 {
		t.Errorf("stats: %d closed for shutdown, %d open; want 2 and 0", shut, open)
	}
	// The node answers late: nothing happens twice.
	handled := make(chan struct{})
	rc.Receive(party.Text("too late"), func() { close(handled) })
	receive(t, handled, "the handled callback after Shutdown")
	rc.Leave(party.StatusGoingAway, "")
	if n := countPrefix(log.list(), "close r1"); n != 1 || log.has("message r1 too late") {
		t.Errorf("after Shutdown: %q", log.list())
	}
}

// TestRelayAbandon: an upgrade that fails after Admit succeeded (here, a
// ResponseWriter that cannot be hijacked) tells the relay to let the
// connection go.
func TestRelayAbandon(t *testing.T) {
	checkLeaks(t)
	log := &events{}
	relay := newFakeRelay(log)
	h := party.Handler(func(r *party.Room) party.Server { return loggedProbe(r, log) })
	h.Placer = &fakePlacer{place: func(string, int) (party.Placement, error) { return party.Placement{Relay: relay}, nil }}
	noHijack := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(struct{ http.ResponseWriter }{w}, r)
	})
	srv := httptest.NewServer(noHijack)
	defer srv.Close()
	defer shutdown(t, h)
	// coder/websocket writes the 101 before it finds it cannot hijack, so
	// the client may see its socket open (and then broken).
	if conn, err := dialErr("ws"+strings.TrimPrefix(srv.URL, "http")+"/party/away?_pk=x", nil); err == nil {
		conn.CloseNow()
	}
	if !log.has("admit x /party/away") || !log.has("abandon x") {
		t.Fatalf("want Admit then Abandon of x, got %q", log.list())
	}
}

// TestShutdownEndsPlace: a Placer waiting in Place (for a claim to expire)
// is told by Shutdown, through its context, to stop: Shutdown is not held
// up by it, and the connection waiting for the room gets 1011.
func TestShutdownEndsPlace(t *testing.T) {
	checkLeaks(t)
	h := party.Handler(func(r *party.Room) party.Server { return &probe{} })
	placing := make(chan struct{}, 1)
	h.Placer = &fakePlacer{wait: func(ctx context.Context) error {
		placing <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}}
	ws, _ := serve(t, h)
	dialed := make(chan error, 1)
	go func() {
		conn, err := dialErr(ws+"/party/r?_pk=a", nil)
		if err == nil {
			_, _, err = conn.Read(context.Background())
			conn.CloseNow()
		}
		dialed <- err
	}()
	receive(t, placing, "Place")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v after %v", err, time.Since(start))
	}
	if err := receive(t, dialed, "the client"); websocket.CloseStatus(err) != websocket.StatusInternalError {
		t.Fatalf("the client waiting for the room: %v, want a close with 1011", err)
	}
}

// ---- Fetch across nodes -----------------------------------------------------

// crossRelay is the Relay of room on another Host of the test: it answers
// plain requests with that Host's Fetch, an ErrDeadlock as 508 Loop
// Detected, as the cluster's relay does. It takes no sockets.
type crossRelay struct {
	to   **party.Host
	room string
}

func (x crossRelay) Admit(string, *http.Request) error { return errors.New("no sockets here") }
func (x crossRelay) Abandon(string)                    {}
func (x crossRelay) Broadcast(party.Message, []string) {}
func (x crossRelay) Congested(*party.Connection, bool) {}
func (x crossRelay) OnRequest(w http.ResponseWriter, r *http.Request) {
	resp, err := (*x.to).Fetch(party.DefaultParty, x.room, r)
	switch {
	case errors.Is(err, party.ErrDeadlock):
		http.Error(w, err.Error(), http.StatusLoopDetected)
	case err != nil:
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
	default:
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}
}

// fetcher answers a request to /NAME/call by fetching room next, and says
// what it got; any other path, with "NAME here".
type fetcher struct {
	room *party.Room
	next string
}

func (f fetcher) OnRequest(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/call") {
		io.WriteString(w, f.room.ID()+" here")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "http://rooms.test/party/"+f.next+"/call", nil)
	resp, err := f.room.Fetch(party.DefaultParty, f.next, req)
	if err != nil {
		fmt.Fprintf(w, "%s: %v", f.room.ID(), err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Fprintf(w, "%s got %d (%s)", f.room.ID(), resp.StatusCode, body)
}

// Two nodes (Hosts), each relaying the other's rooms: a cycle of Fetches
// between them (a on n1 fetches b on n2, whose handler fetches a) is found
// at once: the Fetch that would close it returns ErrDeadlock, instead of
// waiting until a request's context ends. A Party-Call-Chain header sent by
// a client is not taken for one.
func TestFetchCycleAcrossNodes(t *testing.T) {
	checkLeaks(t)
	var n1, n2 *party.Host
	// n1 runs a, c, d and f; n2 runs b and e.
	onN2 := map[string]bool{"b": true, "e": true}
	newNode := func(runsHere bool, other **party.Host) *party.Host {
		h := party.Handler(func(r *party.Room) party.Server {
			next := map[string]string{"a": "b", "b": "a", "c": "b", "d": "e", "e": "f", "f": "d"}[r.ID()]
			return fetcher{room: r, next: next}
		})
		h.Placer = &fakePlacer{place: func(room string, _ int) (party.Placement, error) {
			if onN2[room] != runsHere {
				return party.Placement{Relay: crossRelay{to: other, room: room}}, nil
			}
			return party.Placement{}, nil
		}}
		return h
	}
	n1, n2 = newNode(false, &n2), newNode(true, &n1)
	_, srv1 := serve(t, n1)
	_, srv2 := serve(t, n2)

	started := time.Now()
	body, status := get(t, srv1.URL+"/party/a/call")
	if want := "a got 200 (b: party: call would deadlock"; status != http.StatusOK || !strings.HasPrefix(body, want) {
		t.Errorf("a's call: %d %q, want 200 %q...", status, body, want)
	}
	if took := time.Since(started); took > time.Second {
		t.Errorf("the cycle was found after %v, not at once", took)
	}

	// Not a cycle: c on n1 fetches b on n2, which fetches a on n1.
	if body, _ := get(t, srv1.URL+"/party/c/call"); !strings.HasPrefix(body, "c got 200 (b got 200 (a: party: call would deadlock") {
		t.Errorf("c's call: %q, want the chain c, b, a, then a's Fetch of b refused", body)
	}

	// A cycle that closes on the node where it began, between two of its
	// rooms: d (n1) fetches e (n2), which fetches f (n1), which fetches d.
	// f's Fetch fails with ErrDeadlock itself, without a relay between.
	if body, _ := get(t, srv1.URL+"/party/d/call"); !strings.HasPrefix(body, "d got 200 (e got 200 (f: party: call would deadlock") {
		t.Errorf("d's call: %q, want f's Fetch of d to fail with ErrDeadlock", body)
	}

	// A client's own Party-Call-Chain naming a, sent to a through n2's relay.
	req, _ := http.NewRequest(http.MethodGet, srv2.URL+"/party/a", nil)
	req.Header.Set("Party-Call-Chain", "main/a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "a here" {
		t.Errorf("a client's request with a Party-Call-Chain: %d %q, want 200 a here", resp.StatusCode, b)
	}
	shutdown(t, n1)
	shutdown(t, n2)
}

// gatedRelay is a crossRelay whose Admit waits for gate, holding the relay
// room's turn.
type gatedRelay struct {
	crossRelay
	admitting chan struct{}
	gate      chan struct{}
}

func (g gatedRelay) Admit(string, *http.Request) error {
	g.admitting <- struct{}{}
	<-g.gate
	return nil
}

// A plain request to a relay room, once placed, is forwarded without the
// room's turn: a client being admitted (holding the turn) does not hold it
// up.
func TestRelayRequestsSkipTheTurn(t *testing.T) {
	checkLeaks(t)
	var n2 *party.Host
	relay := gatedRelay{crossRelay: crossRelay{to: &n2, room: "b"}, admitting: make(chan struct{}, 1), gate: make(chan struct{})}
	n1 := party.Handler(func(r *party.Room) party.Server { return fetcher{room: r} })
	n1.Placer = &fakePlacer{place: func(string, int) (party.Placement, error) { return party.Placement{Relay: relay}, nil }}
	n2 = party.Handler(func(r *party.Room) party.Server { return fetcher{room: r} })
	ws1, srv1 := serve(t, n1)
	if body, _ := get(t, srv1.URL+"/party/b"); body != "b here" {
		t.Fatalf("GET b through n1: %q, want b here", body)
	}
	dialed := make(chan error, 1)
	go func() {
		conn, err := dialErr(ws1+"/party/b?_pk=held", nil)
		if err == nil {
			conn.CloseNow()
		}
		dialed <- err
	}()
	receive(t, relay.admitting, "Admit")
	got := make(chan string, 1)
	go func() {
		body, _ := get(t, srv1.URL+"/party/b")
		got <- body
	}()
	select {
	case body := <-got:
		if body != "b here" {
			t.Errorf("GET b while a client is admitted: %q, want b here", body)
		}
		close(relay.gate)
	case <-time.After(2 * time.Second):
		t.Error("a GET to the relay room waited for the client being admitted")
		close(relay.gate)
		<-got
	}
	receive(t, dialed, "the dial")
	shutdown(t, n1)
	shutdown(t, n2)
}
