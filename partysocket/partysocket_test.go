package partysocket_test

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// The guide's conversation, between Go clients: a welcome for the joiner,
// a join notice for the others, messages to everyone but their sender
// (binary kept binary), and a leave notice.
func TestGuideConversation(t *testing.T) {
	srv := startServer(t, newChat, nil)
	a, b, c := newQueue(), newQueue(), newQueue()

	sa := dial(t, client(srv, "my-room", "alice", a))
	a.expect(t, "open", "text:Welcome, alice")

	sb := dial(t, client(srv, "my-room", "bob", b))
	b.expect(t, "open", "text:Welcome, bob")
	a.expect(t, "text:Heads up! bob joined the party!")

	dial(t, client(srv, "my-room", "carol", c))
	c.expect(t, "open", "text:Welcome, carol")
	a.expect(t, "text:Heads up! carol joined the party!")
	b.expect(t, "text:Heads up! carol joined the party!")

	send(t, sa, party.Text("Hello everyone"))
	b.expect(t, "text:Hello everyone")
	c.expect(t, "text:Hello everyone")

	send(t, sb, party.Binary([]byte{0, 1, 0xfe, 0xff}))
	send(t, sb, party.Text("\x00\x01"))
	for _, q := range []*queue{a, c} {
		q.expect(t, "binary:0001feff", "text:\x00\x01")
	}

	sb.Close()
	a.expect(t, "text:So sad! bob left the party!")
	c.expect(t, "text:So sad! bob left the party!")

	// The sender heard none of its own messages, and bob nothing after
	// Close: not even the close it asked for.
	send(t, sa, party.Text("bye"))
	c.expect(t, "text:bye")
	if p := a.pending(); len(p) != 0 {
		t.Errorf("alice got %q, want nothing more", p)
	}
	if p := b.pending(); len(p) != 0 {
		t.Errorf("bob got %q after Close, want nothing", p)
	}
}

// A server-side close is followed by a reconnect with the same id, sent as
// the first _pk parameter, and the socket carries on.
func TestSameIDAfterServerClose(t *testing.T) {
	log := newQueue()
	srv := startServer(t, newProbe(log), nil)
	events := newQueue()
	o := client(srv, "room-1", "", events) // id chosen by the Socket
	o.Query = url.Values{"_pk": {"not-me"}, "a": {"1"}}
	s := dial(t, o)
	events.expect(t, "open")
	id := s.ID()
	if id == "" {
		t.Fatal("ID() is empty")
	}
	if want := "ws://" + srv.addr + "/parties/main/room-1"; s.RoomURL() != want {
		t.Errorf("RoomURL() = %q, want %q", s.RoomURL(), want)
	}
	log.expect(t, "connect "+id+" /parties/main/room-1?_pk="+id+"&_pk=not-me&a=1")

	srv.conn("room-1", id).Close(4000, "go away")
	events.expect(t, "close 4000 go away", "open")
	log.expect(t, "close "+id+" 4000 go away")
	if got := log.next(t); !strings.HasPrefix(got, "connect "+id+" ") {
		t.Fatalf("after the close the server saw %q, want a connect from %s", got, id)
	}
	send(t, s, party.Text("still here"))
	log.expect(t, "message "+id+" text:still here")
}

// The whole server stops (closing every socket with 1012) and a new one
// starts on the same port: the socket comes back with the same id, and what
// was sent while the server was down is delivered once, in order, before
// what is sent after.
func TestSameIDAfterServerRestart(t *testing.T) {
	log := newQueue()
	srv := startServer(t, newProbe(log), nil)
	events := newQueue()
	s := dial(t, client(srv, "room", "bot-7", events))
	events.expect(t, "open")
	log.skipTo(t, "connect bot-7 ")

	srv.stop()
	events.expect(t, "close 1012 server shutting down")
	log.expect(t, "close bot-7 1012 server shutting down")
	for i := range 20 {
		send(t, s, party.Text(fmt.Sprint("queued ", i)))
	}
	// The socket keeps trying while the port is closed.
	events.skipTo(t, "error ")

	srv.start()
	events.skipTo(t, "open")
	log.skipTo(t, "connect bot-7 /parties/main/room?_pk=bot-7")
	send(t, s, party.Text("after"))
	for i := range 20 {
		log.expect(t, fmt.Sprint("message bot-7 text:queued ", i))
	}
	log.expect(t, "message bot-7 text:after")
}

// Messages sent while disconnected wait in a bounded queue, are written
// once, in order, when the next connection opens, and before what OnOpen
// sends.
func TestQueuedMessagesDeliveredOnceInOrder(t *testing.T) {
	log := newQueue()
	g := newGate()
	srv := startServer(t, newProbe(log), g.install)
	events := newQueue()
	o := client(srv, "q", "sender", events)
	o.MaxQueued = 100
	var opens atomic.Int64
	onOpen := o.OnOpen
	o.OnOpen = func(s *partysocket.Socket) {
		onOpen(s)
		if opens.Add(1) == 2 {
			s.Send(party.Text("sent by OnOpen"))
		}
	}
	s := dial(t, o)
	events.expect(t, "open")
	log.skipTo(t, "connect sender")

	g.closed.Store(true)
	srv.conn("q", "sender").Close(party.StatusNormalClosure, "")
	events.expect(t, "close 1000 ")
	for i := range 100 {
		send(t, s, party.Text(fmt.Sprint(i)))
	}
	if err := s.Send(party.Text("one too many")); !errors.Is(err, partysocket.ErrQueueFull) {
		t.Fatalf("Send past MaxQueued returned %v, want ErrQueueFull", err)
	}
	events.skipTo(t, "error ") // refused by the gate, at least once
	before := g.attempts.Load()

	g.closed.Store(false)
	events.skipTo(t, "open")
	log.skipTo(t, "connect sender")
	for i := range 100 {
		log.expect(t, fmt.Sprint("message sender text:", i))
	}
	log.expect(t, "message sender text:sent by OnOpen")
	send(t, s, party.Text("last"))
	log.expect(t, "message sender text:last")
	if g.attempts.Load() <= before {
		t.Error("the gate saw no attempt after it opened")
	}
}

// Close writes what is queued, closes with 1000, and the server sees it all.
func TestCloseFlushesQueue(t *testing.T) {
	log := newQueue()
	srv := startServer(t, newProbe(log), nil)
	s := dial(t, client(srv, "r", "quitter", newQueue()))
	log.skipTo(t, "connect quitter")
	for i := range 50 {
		send(t, s, party.Text(fmt.Sprint(i)))
	}
	s.Close()
	for i := range 50 {
		log.expect(t, fmt.Sprint("message quitter text:", i))
	}
	log.expect(t, "close quitter 1000 ")
	if err := s.Send(party.Text("late")); !errors.Is(err, partysocket.ErrClosed) {
		t.Errorf("Send after Close returned %v, want ErrClosed", err)
	}
	closed(t, s)
}

// ShouldReconnect stops the socket on the code it chooses: the server's
// 4001 "unauthorized", or a handshake refused with 401.
func TestShouldReconnectStops(t *testing.T) {
	t.Run("close code", func(t *testing.T) {
		log := newQueue()
		srv := startServer(t, newProbe(log), nil)
		events := newQueue()
		o := client(srv, "r", "intruder", events)
		var asked []partysocket.CloseEvent
		o.ShouldReconnect = func(ev partysocket.CloseEvent) bool {
			asked = append(asked, ev)
			return ev.Code != 4001
		}
		s := dial(t, o)
		events.expect(t, "open")

		c := srv.conn("r", "intruder")
		c.Close(4000, "try again") // reconnects
		events.expect(t, "close 4000 try again", "open")
		srv.conn("r", "intruder").Close(4001, "unauthorized")
		events.expect(t, "close 4001 unauthorized")
		closed(t, s)
		if p := events.pending(); len(p) != 0 {
			t.Errorf("after the hook said stop: %q", p)
		}
		if len(asked) != 2 || asked[0].Code != 4000 || asked[1].Code != 4001 || asked[1].Reason != "unauthorized" || asked[1].Err != nil {
			t.Errorf("ShouldReconnect saw %+v", asked)
		}
		if err := s.Send(party.Text("x")); !errors.Is(err, partysocket.ErrClosed) {
			t.Errorf("Send after stopping returned %v, want ErrClosed", err)
		}
		// Two connections, no third.
		n := 0
		for _, l := range log.pending() {
			if strings.HasPrefix(l, "connect ") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("server saw %d connections, want 2: %q", n, log.pending())
		}
	})
	t.Run("handshake refused", func(t *testing.T) {
		srv := startServer(t, newProbe(newQueue()), func(h *party.Host) {
			h.BeforeConnect = func(r *http.Request, _, _ string) (*http.Request, error) {
				if r.Header.Get("Authorization") != "Bearer good" {
					return nil, errors.New("no entry")
				}
				return r, nil
			}
		})
		events := newQueue()
		o := client(srv, "r", "", events)
		o.Header = http.Header{"Authorization": {"Bearer bad"}}
		var tries atomic.Int64
		o.ShouldReconnect = func(ev partysocket.CloseEvent) bool {
			tries.Add(1)
			var he *partysocket.HandshakeError
			return !(errors.As(ev.Err, &he) && he.StatusCode == http.StatusUnauthorized)
		}
		_, err := partysocket.Dial(context.Background(), o)
		var he *partysocket.HandshakeError
		if !errors.As(err, &he) || he.StatusCode != 401 || !strings.Contains(he.Body, "no entry") {
			t.Fatalf("Dial returned %v, want a 401 HandshakeError saying no entry", err)
		}
		if tries.Load() != 1 {
			t.Errorf("ShouldReconnect called %d times, want 1", tries.Load())
		}
		if got := events.next(t); !strings.HasPrefix(got, "error ") || !strings.Contains(got, "401") {
			t.Errorf("OnError got %q", got)
		}

		o.Header.Set("Authorization", "Bearer good")
		dial(t, o)
	})
}

// MaxRetries ends the socket after so many failed attempts in a row.
func TestMaxRetries(t *testing.T) {
	addr := closedPort(t)
	for _, tc := range []struct{ max, attempts int }{{-1, 1}, {1, 2}, {3, 4}} {
		events := newQueue()
		s, err := partysocket.New(partysocket.Options{
			Host: addr, Room: "r", MaxRetries: tc.max,
			MinReconnectDelay: time.Millisecond,
			OnError:           func(*partysocket.Socket, error) { events.add("error") },
		})
		if err != nil {
			t.Fatal(err)
		}
		closed(t, s)
		if n := len(events.pending()); n != tc.attempts {
			t.Errorf("MaxRetries %d: %d attempts, want %d", tc.max, n, tc.attempts)
		}
	}
}

// The delays between attempts, measured by the server, are at least the
// growing delays asked for, up to the maximum (the exact sequence, and its
// reset after MinUptime, are checked with a recorded clock in
// backoff_test.go).
func TestBackoffMeasured(t *testing.T) {
	g := newGate()
	g.closed.Store(true)
	srv := startServer(t, newProbe(newQueue()), g.install)
	s, err := partysocket.New(partysocket.Options{
		Host: srv.addr, Room: "r",
		MinReconnectDelay: 20 * time.Millisecond,
		ReconnectGrowth:   2,
		MaxReconnectDelay: 80 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var times []int64
	for range 6 {
		var ns int64
		fmt.Sscan(g.times.next(t), &ns)
		times = append(times, ns)
	}
	for i, min := range []time.Duration{20, 40, 80, 80, 80} {
		min *= time.Millisecond
		gap := time.Duration(times[i+1] - times[i])
		if gap < min {
			t.Errorf("attempt %d came %v after the previous one, want at least %v", i+2, gap, min)
		}
		t.Logf("attempt %d: %v after the previous one (delay %v)", i+2, gap.Round(100*time.Microsecond), min)
	}
}

// Close leaves no goroutine behind, whether the socket is connected, waiting
// to reconnect, or in the middle of a handshake that does not answer.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	srv := startServer(t, newChat, nil)
	hang := hangingPort(t)
	down := closedPort(t)
	// A first connection starts the server's keepalive sweeper, which runs
	// until the server stops: count from after it.
	warm := newQueue()
	dial(t, client(srv, "room", "warm-up", warm)).Close()
	eventually(t, "the warm-up room to be dropped", func() bool { return srv.Host().Room(party.DefaultParty, "room") == nil })
	before := runtime.NumGoroutine()

	var sockets []*partysocket.Socket
	for i := range 5 {
		events := newQueue()
		s := dial(t, client(srv, "room", fmt.Sprint("c", i), events))
		events.expect(t, "open", fmt.Sprintf("text:Welcome, c%d", i))
		send(t, s, party.Text("hi"))
		sockets = append(sockets, s)
	}
	waiting, err := partysocket.New(partysocket.Options{Host: down, Room: "r", MinReconnectDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	handshaking, err := partysocket.New(partysocket.Options{Host: hang, Room: "r", ConnectionTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	sockets = append(sockets, waiting, handshaking)
	if runtime.NumGoroutine() <= before {
		t.Fatal("the sockets run no goroutine?")
	}

	start := time.Now()
	for _, s := range sockets {
		s.Close()
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	goroutines(t, before)
}

// A callback may call Close without deadlocking; the socket then stops.
func TestCloseFromCallback(t *testing.T) {
	srv := startServer(t, newChat, nil)
	events := newQueue()
	o := client(srv, "r", "", events)
	onMessage := o.OnMessage
	o.OnMessage = func(s *partysocket.Socket, msg party.Message) {
		onMessage(s, msg)
		if msg.String() == "stop" {
			s.Close()
		}
	}
	s := dial(t, o)
	events.expect(t, "open", "text:Welcome, "+s.ID()) // s has joined
	other := dial(t, client(srv, "r", "", newQueue()))
	send(t, other, party.Text("stop"))
	closed(t, s)
}

// ctx bounds Dial: a server that never answers makes Dial fail with ctx's
// error and leave nothing running; ConnectionTimeout fails each attempt.
func TestDialContext(t *testing.T) {
	hang := hangingPort(t)
	before := runtime.NumGoroutine()
	errs := newQueue()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := partysocket.Dial(ctx, partysocket.Options{
		Host: hang, Room: "r",
		ConnectionTimeout: 50 * time.Millisecond,
		MinReconnectDelay: 10 * time.Millisecond,
		OnError:           func(_ *partysocket.Socket, err error) { errs.add(err.Error()) },
	})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, partysocket.ErrConnectionTimeout) {
		t.Fatalf("Dial returned %v, want the deadline and the last attempt's timeout", err)
	}
	if got := errs.next(t); !strings.Contains(got, "connection timeout") {
		t.Errorf("OnError got %q, want a connection timeout", got)
	}
	goroutines(t, before)

	if _, err := partysocket.Dial(context.Background(), partysocket.Options{Room: "r"}); err == nil {
		t.Error("Dial without Host succeeded")
	}
}

// Fetch reaches the room's OnRequest at the socket's URL, with the query,
// the headers and the sub-path, and without _pk.
func TestFetch(t *testing.T) {
	srv := startServer(t, newProbe(newQueue()), func(h *party.Host) {
		h.Party("docs", newProbe(newQueue()))
	})
	n := 0
	resp, err := partysocket.Fetch(context.Background(), partysocket.Options{
		Host:      "http://" + srv.addr + "/",
		Party:     "docs",
		Room:      "my room",
		Path:      "items/1",
		ID:        "ignored",
		Query:     url.Values{"q": {"a b"}},
		QueryFunc: func(context.Context) (url.Values, error) { n++; return url.Values{"token": {fmt.Sprint(n)}}, nil },
		Header:    http.Header{"Authorization": {"Bearer t"}},
	}, http.MethodPost, strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := "POST /parties/docs/my%20room/items/1?q=a+b&token=1 room=my%20room party=docs auth=Bearer t body=payload"
	if resp.StatusCode != 200 || string(body) != want {
		t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, want)
	}
}

// QueryFunc runs before every connection attempt (a fresh token each time);
// Header and Subprotocols go with every handshake.
func TestQueryFuncAndHeaders(t *testing.T) {
	log := newQueue()
	var protocols atomic.Value
	srv := startServer(t, newProbe(log), func(h *party.Host) {
		h.Subprotocols = []string{"v2"}
		h.BeforeConnect = func(r *http.Request, _, _ string) (*http.Request, error) {
			protocols.Store(r.Header.Get("Sec-WebSocket-Protocol") + " " + r.Header.Get("X-Bot"))
			return r, nil
		}
	})
	var n atomic.Int64
	events := newQueue()
	o := client(srv, "r", "tok", events)
	o.QueryFunc = func(context.Context) (url.Values, error) {
		return url.Values{"token": {fmt.Sprint(n.Add(1))}}, nil
	}
	o.Header = http.Header{"X-Bot": {"yes"}}
	o.Subprotocols = []string{"v1", "v2"}
	dial(t, o)
	log.expect(t, "connect tok /parties/main/r?_pk=tok&token=1")
	srv.conn("r", "tok").Close(4000, "")
	log.expect(t, "close tok 4000 ")
	log.expect(t, "connect tok /parties/main/r?_pk=tok&token=2")
	if got := protocols.Load(); got != "v1,v2 yes" {
		t.Errorf("handshake carried %q, want %q", got, "v1,v2 yes")
	}
}

// closedPort returns an address where nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// hangingPort returns an address that accepts TCP connections and never
// answers on them.
func hangingPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// A connection that breaks without a close frame is reported to OnError,
// then to OnClose as 1006, and the socket reconnects with the same id.
func TestBrokenConnection(t *testing.T) {
	log := newQueue()
	srv := startServer(t, newProbe(log), nil)
	p := startProxy(t, srv.addr)
	events := newQueue()
	o := client(srv, "r", "fragile", events)
	o.Host = p.addr
	s := dial(t, o)
	events.expect(t, "open")
	log.skipTo(t, "connect fragile ")

	p.cut()
	if got := events.next(t); !strings.HasPrefix(got, "error ") {
		t.Fatalf("got %q, want the error first", got)
	}
	events.expect(t, "close 1006 ", "open")
	log.skipTo(t, "connect fragile ")
	send(t, s, party.Text("back"))
	log.skipTo(t, "message fragile text:back")
}

// A message over ReadLimit closes the connection with 1009, and the socket
// reconnects.
func TestReadLimit(t *testing.T) {
	srv := startServer(t, newChat, nil)
	events := newQueue()
	o := client(srv, "r", "small", events)
	o.ReadLimit = 1000
	dial(t, o)
	events.expect(t, "open", "text:Welcome, small")
	big := dial(t, client(srv, "r", "big", newQueue()))
	events.expect(t, "text:Heads up! big joined the party!")
	send(t, big, party.Text(strings.Repeat("x", 1000)))
	send(t, big, party.Text(strings.Repeat("y", 1001)))
	events.expect(t, "text:"+strings.Repeat("x", 1000))
	if got := events.next(t); !strings.HasPrefix(got, "error ") || !strings.Contains(got, "too big") {
		t.Fatalf("got %q, want an error saying the message is too big", got)
	}
	events.expect(t, "close 1009 ")
	events.expect(t, "open", "text:Welcome, small")
}

// proxy forwards TCP connections to a server, and can cut them all at once.
type proxy struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		wg.Wait()
	})
	return p
}

// cut closes every connection through the proxy, without a close frame.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
