package partysocket_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"party"
	"party/partysocket"
)

// wait bounds every wait of these tests; none is expected to come close.
const wait = 10 * time.Second

// server is a real party server on a real TCP port, which can be shut down
// and started again on the same port.
type server struct {
	t       testing.TB
	addr    string // host:port, fixed for the server's life
	factory func(*party.Room) party.Server
	setup   func(*party.Host)

	mu   sync.Mutex
	host *party.Host
	http *http.Server
	ln   net.Listener
}

// startServer serves a fresh party.Host built with factory (and setup, if
// not nil) on a free port of 127.0.0.1 and stops it when the test ends.
func startServer(t testing.TB, factory func(*party.Room) party.Server, setup func(*party.Host)) *server {
	t.Helper()
	s := &server{t: t, addr: "127.0.0.1:0", factory: factory, setup: setup}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	s.t.Helper()
	h := party.Handler(s.factory)
	h.IdleTimeout = -1
	h.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if s.setup != nil {
		s.setup(h)
	}
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		ln, err = net.Listen("tcp", s.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		s.t.Fatalf("listen on %s: %v", s.addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	s.mu.Lock()
	s.addr, s.host, s.http, s.ln = ln.Addr().String(), h, srv, ln
	s.mu.Unlock()
}

// stop shuts the Host down (connections get 1012) and closes the port.
func (s *server) stop() {
	s.mu.Lock()
	h, srv := s.host, s.http
	s.host, s.http = nil, nil
	s.mu.Unlock()
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		s.t.Errorf("Host.Shutdown: %v", err)
	}
	srv.Close()
}

// restart stops the server and starts a new one, with a new Host, on the
// same port.
func (s *server) restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

func (s *server) Host() *party.Host {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.host
}

// conn returns the server side of connection id in room, waiting for it.
func (s *server) conn(room, id string) *party.Connection {
	s.t.Helper()
	var c *party.Connection
	eventually(s.t, "connection "+id+" in room "+room, func() bool {
		if r := s.Host().Room(party.DefaultParty, room); r != nil {
			c = r.GetConnection(id)
		}
		return c != nil
	})
	return c
}

// chat is the guide's server, word for word.
type chat struct{ room *party.Room }

func newChat(r *party.Room) party.Server { return &chat{room: r} }

func (s *chat) OnMessage(msg party.Message, sender *party.Connection) {
	s.room.Broadcast(msg, sender.ID())
}

func (s *chat) OnConnect(c *party.Connection, r *http.Request) {
	c.Send(party.Text("Welcome, " + c.ID()))
	s.room.Broadcast(party.Text("Heads up! "+c.ID()+" joined the party!"), c.ID())
}

func (s *chat) OnClose(c *party.Connection) {
	s.room.Broadcast(party.Text("So sad! " + c.ID() + " left the party!"))
}

// probe is a server that reports what it sees on log.
type probe struct {
	room *party.Room
	log  *queue
}

func newProbe(log *queue) func(*party.Room) party.Server {
	return func(r *party.Room) party.Server { return &probe{room: r, log: log} }
}

func (p *probe) OnConnect(c *party.Connection, r *http.Request) {
	u, err := url.Parse(c.URI())
	if err != nil {
		panic(err)
	}
	p.log.add("connect " + c.ID() + " " + u.RequestURI())
}

func (p *probe) OnMessage(msg party.Message, sender *party.Connection) {
	p.log.add("message " + sender.ID() + " " + describe(msg))
}

func (p *probe) OnClose(c *party.Connection) {
	code, reason := c.CloseStatus()
	p.log.add(fmt.Sprintf("close %s %d %s", c.ID(), code, reason))
}

func (p *probe) OnRequest(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s room=%s party=%s auth=%s body=%s", r.Method, r.URL.RequestURI(),
		p.room.ID(), p.room.Party(), r.Header.Get("Authorization"), body)
}

// describe renders a message with its kind, so text and binary differ.
func describe(m party.Message) string {
	if m.IsBinary() {
		return fmt.Sprintf("binary:%x", m.Bytes())
	}
	return "text:" + m.String()
}

// queue is an unbounded, ordered log of strings read with bounded waits.
type queue struct {
	mu    sync.Mutex
	items []string
	more  chan struct{}
}

func newQueue() *queue { return &queue{more: make(chan struct{}, 1)} }

func (q *queue) add(s string) {
	q.mu.Lock()
	q.items = append(q.items, s)
	q.mu.Unlock()
	select {
	case q.more <- struct{}{}:
	default:
	}
}

// next returns the oldest item not yet returned, failing the test if none
// comes in time.
func (q *queue) next(t *testing.T) string {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			s := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			return s
		}
		q.mu.Unlock()
		select {
		case <-q.more:
		case <-timer.C:
			t.Fatalf("nothing came in %v", wait)
		}
	}
}

// expect asserts that the next items are want, in order.
func (q *queue) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := q.next(t); got != w {
			t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// skipTo drops items until one starting with prefix, and returns it.
func (q *queue) skipTo(t *testing.T, prefix string) string {
	t.Helper()
	for {
		if s := q.next(t); strings.HasPrefix(s, prefix) {
			return s
		}
	}
}

// pending returns the items not yet read, without waiting.
func (q *queue) pending() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.items...)
}

// client returns Options for a Socket to srv's room, with short reconnection
// delays, whose callbacks report on log as "open", "text:…"/"binary:…",
// "close CODE REASON" and "error …".
func client(srv *server, room, id string, log *queue) partysocket.Options {
	return partysocket.Options{
		Host:              srv.addr,
		Room:              room,
		ID:                id,
		MinReconnectDelay: 5 * time.Millisecond,
		MaxReconnectDelay: 50 * time.Millisecond,
		OnOpen:            func(*partysocket.Socket) { log.add("open") },
		OnMessage:         func(_ *partysocket.Socket, m party.Message) { log.add(describe(m)) },
		OnClose: func(_ *partysocket.Socket, ev partysocket.CloseEvent) {
			log.add(fmt.Sprintf("close %d %s", ev.Code, ev.Reason))
		},
		OnError: func(_ *partysocket.Socket, err error) { log.add("error " + err.Error()) },
	}
}

// dial dials o and closes the Socket when the test ends.
func dial(t *testing.T, o partysocket.Options) *partysocket.Socket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := partysocket.Dial(ctx, o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func send(t *testing.T, s *partysocket.Socket, msg party.Message) {
	t.Helper()
	if err := s.Send(msg); err != nil {
		t.Fatalf("Send(%s): %v", describe(msg), err)
	}
}

// eventually polls cond until it holds, failing after wait.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// closed waits for s to stop for good.
func closed(t *testing.T, s *partysocket.Socket) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(wait):
		buf := make([]byte, 1<<20)
		t.Fatalf("the Socket did not stop within %v:\n%s", wait, buf[:runtime.Stack(buf, true)])
	}
}

// goroutines waits until no more than n goroutines run, and fails with a
// dump of them all if that takes longer than wait.
func goroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines still run, want at most %d:\n%s", runtime.NumGoroutine(), n, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gate refuses WebSocket upgrades with 503 while closed, and counts the
// attempts it sees.
type gate struct {
	closed   atomic.Bool
	attempts atomic.Int64
	times    *queue // the time of each attempt, as UnixNano
}

func newGate() *gate { return &gate{times: newQueue()} }

func (g *gate) install(h *party.Host) {
	h.BeforeConnect = func(r *http.Request, _, _ string) (*http.Request, error) {
		g.attempts.Add(1)
		g.times.add(fmt.Sprint(time.Now().UnixNano()))
		if g.closed.Load() {
			return nil, &party.HTTPError{Status: http.StatusServiceUnavailable, Message: "gate closed"}
		}
		return r, nil
	}
}
