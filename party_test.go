package party_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/xid"

	"party"
)

func TestRouting(t *testing.T) {
	h := party.Handler(func(r *party.Room) party.Server { return &whoami{room: r} })
	h.Party("other", func(r *party.Room) party.Server { return &whoami{room: r} })
	ws, srv := serve(t, h)

	long := strings.Repeat("a", 257)
	tests := []struct {
		path       string
		want       string // "party room" seen by the room, for status 0
		wantStatus int
		wantBody   string
	}{
		{path: "/party/r1", want: "main r1"},
		{path: "/parties/main/r1", want: "main r1"},
		{path: "/parties/other/r1", want: "other r1"},
		{path: "/party/r1/extra/segments?x=1&y=2", want: "main r1"},
		{path: "/parties/main/r1/sub?_pk=zz", want: "main r1"},
		{path: "/party/my%20room", want: "main my%20room"},
		{path: "/party/caf%C3%A9", want: "main caf%C3%A9"},
		{path: "/party/a%2Fb", want: "main a%2Fb"},
		{path: "/party/" + strings.Repeat("b", 256), want: "main " + strings.Repeat("b", 256)},
		{path: "/parties/nope/r1", wantStatus: 404, wantBody: `party "nope" not found`},
		{path: "/parties/main", wantStatus: 404, wantBody: "no room in path"},
		{path: "/party/", wantStatus: 400, wantBody: "empty"},
		{path: "/parties/main/", wantStatus: 400, wantBody: "empty"},
		{path: "/party/" + long, wantStatus: 400, wantBody: "longer than 256"},
		{path: "/party/%FF%FE", wantStatus: 400, wantBody: "not valid UTF-8"},
		{path: "/party/%2E%2E", wantStatus: 400, wantBody: "dot segment"},
		{path: "/party/a%00b", wantStatus: 400, wantBody: "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if tt.wantStatus == 0 {
				c := dial(t, ws+tt.path)
				defer c.close()
				got := c.readText()
				if !strings.HasPrefix(got, tt.want+" ") {
					t.Errorf("WebSocket to %s reached %q, want %q", tt.path, got, tt.want)
				}
				body, status := get(t, srv.URL+tt.path)
				if status != 200 || body != tt.want {
					t.Errorf("GET %s = %d %q, want 200 %q", tt.path, status, body, tt.want)
				}
				return
			}
			_, err := dialErr(ws+tt.path, nil)
			var de *dialError
			if !errors.As(err, &de) || de.status != tt.wantStatus || !strings.Contains(de.body, tt.wantBody) {
				t.Errorf("WebSocket to %s: got %v, want status %d with body containing %q", tt.path, err, tt.wantStatus, tt.wantBody)
			}
			body, status := get(t, srv.URL+tt.path)
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestRoutingGoPatterns(t *testing.T) {
	h := party.Handler(func(r *party.Room) party.Server { return &whoami{room: r} })
	h.Party("game", func(r *party.Room) party.Server { return &whoami{room: r} })
	mux := http.NewServeMux()
	mux.Handle("/rooms/{room}", h)
	mux.Handle("GET /p/{party}/{room}/{rest...}", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")

	for path, want := range map[string]string{
		"/rooms/lobby":         "main lobby",
		"/rooms/a%20b":         "main a%20b",
		"/p/game/r9/x/y?_pk=1": "game r9",
	} {
		c := dial(t, ws+path)
		if got := c.readText(); !strings.HasPrefix(got, want+" ") {
			t.Errorf("%s reached %q, want %q", path, got, want)
		}
		c.close()
	}
}

func TestSilentServer(t *testing.T) {
	h := party.Handler(func(*party.Room) party.Server { return struct{}{} })
	ws, srv := serve(t, h)
	c := dial(t, ws+"/party/quiet")
	c.send("hello?")
	c.silent(100 * time.Millisecond)
	c.close()
	// A room without OnRequest answers plain HTTP with a clear 426.
	body, status := get(t, srv.URL+"/party/quiet")
	if status != http.StatusUpgradeRequired || !strings.Contains(body, "OnRequest") {
		t.Errorf("GET to a room without OnRequest = %d %q, want 426 naming OnRequest", status, body)
	}
}

func TestConnectionIDs(t *testing.T) {
	var ev events
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{
			connect: func(c *party.Connection, _ *http.Request) {
				ev.add("connect " + c.ID())
				c.Send(party.Text(c.ID()))
			},
			close: func(c *party.Connection) {
				code, reason := c.CloseStatus()
				ev.add(fmt.Sprintf("close %s %d %s", c.ID(), code, reason))
			},
		}
	})
	ws, _ := serve(t, h)

	t.Run("first _pk wins", func(t *testing.T) {
		c := dial(t, ws+"/party/ids?x=1&_pk=first&_pk=second")
		defer c.close()
		c.expect("first")
	})
	t.Run("xid without _pk", func(t *testing.T) {
		c := dial(t, ws+"/party/ids")
		defer c.close()
		id := c.readText()
		if _, err := xid.FromString(id); err != nil {
			t.Errorf("id %q is not an xid: %v", id, err)
		}
	})
	t.Run("same id replaces", func(t *testing.T) {
		old := dial(t, ws+"/party/dup?_pk=same")
		old.expect("same")
		fresh := dial(t, ws+"/party/dup?_pk=same")
		defer fresh.close()
		fresh.expect("same")
		ce := old.closed()
		if ce.Code != websocket.StatusCode(party.StatusReplaced) {
			t.Errorf("replaced connection closed with %v, want %d", ce, party.StatusReplaced)
		}
		got := ev.list()
		i := indexOf(got, "close same 4409 replaced by a newer connection with the same id")
		j := lastIndexOf(got, "connect same")
		if i < 0 || j < 0 || i > j {
			t.Errorf("events %q: want the old connection's OnClose before the new one's OnConnect", got)
		}
		room := h.Room("main", "dup")
		if c := room.GetConnection("same"); c == nil {
			t.Fatal("GetConnection(same) = nil after replacement")
		}
		if n := room.ConnectionCount(); n != 1 {
			t.Errorf("ConnectionCount = %d, want 1", n)
		}
		// The new connection works: a message from the server reaches it.
		room.GetConnection("same").Send(party.Text("still here"))
		fresh.expect("still here")
	})
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func lastIndexOf(s []string, v string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == v {
			return i
		}
	}
	return -1
}

type tagged struct{ room *party.Room }

func (s *tagged) ConnectionTags(c *party.Connection, r *http.Request) []string {
	return strings.Split(r.URL.Query().Get("tags"), ",")
}

func (s *tagged) OnConnect(c *party.Connection, r *http.Request) {
	c.SetState(map[string]int{"joined": 1})
	st := c.State().(map[string]int)
	c.Send(party.Text(fmt.Sprintf("%s|%s|%d", c.URI(), strings.Join(c.Tags(), ","), st["joined"])))
}

func (s *tagged) OnMessage(m party.Message, sender *party.Connection) {
	// "tag:msg" sends msg to the connections carrying tag.
	tag, text, _ := strings.Cut(m.String(), ":")
	for c := range s.room.GetConnections(tag) {
		c.Send(party.Text(text))
	}
}

func TestConnectionURITagsState(t *testing.T) {
	h := party.Handler(func(r *party.Room) party.Server { return &tagged{room: r} })
	ws, srv := serve(t, h)
	a := dial(t, ws+"/parties/main/t/extra?_pk=a&tags=admin,blue")
	defer a.close()
	want := srv.URL + "/parties/main/t/extra?_pk=a&tags=admin,blue|a,admin,blue|1"
	a.expect(want)
	b := dial(t, ws+"/party/t?_pk=b&tags=blue")
	defer b.close()
	b.readText()
	c := dial(t, ws+"/party/t?_pk=c&tags=")
	defer c.close()
	c.readText()

	b.send("admin:for admins")
	a.expect("for admins")
	a.send("blue:for blue")
	a.expect("for blue")
	b.expect("for blue")
	a.send("c:by id")
	c.expect("by id") // the id is a tag
	b.silent(50 * time.Millisecond)
}

func TestOnStartOnceAndRetry(t *testing.T) {
	var starts, fails atomic.Int32
	failFirst := true
	h := party.Handler(func(r *party.Room) party.Server {
		return &startCounter{room: r, start: func() error {
			time.Sleep(50 * time.Millisecond) // let concurrent first requests pile up
			if strings.HasPrefix(r.ID(), "fail") && failFirst {
				failFirst = false // guarded by the room's turn
				fails.Add(1)
				return errors.New("database unavailable: " + strings.Repeat("x", 200))
			}
			starts.Add(1)
			return nil
		}}
	})
	ws, srv := serve(t, h)

	t.Run("once under concurrency", func(t *testing.T) {
		var wg sync.WaitGroup
		results := make([]string, 3)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := dialErr(ws+"/party/once", nil)
				if err != nil {
					results[i] = err.Error()
					return
				}
				defer c.Close(websocket.StatusNormalClosure, "")
				_, b, err := c.Read(context.Background())
				results[i] = string(b) + fmt.Sprint(err)
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(srv.URL + "/party/once")
			if err != nil {
				results[2] = err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results[2] = string(b) + "<nil>"
		}()
		wg.Wait()
		for i, r := range results {
			if r != "started 1<nil>" {
				t.Errorf("request %d saw %q, want every request to see one finished OnStart", i, r)
			}
		}
	})

	t.Run("failure closes 1011 and the next request retries", func(t *testing.T) {
		c := dial(t, ws+"/party/fail-ws")
		ce := c.closed()
		if ce.Code != websocket.StatusInternalError || !strings.HasPrefix(ce.Reason, "database unavailable") || len(ce.Reason) != 123 {
			t.Errorf("got close %d %q (%d bytes), want 1011 with the error cut to 123 bytes", ce.Code, ce.Reason, len(ce.Reason))
		}
		c2 := dial(t, ws+"/party/fail-ws")
		defer c2.close()
		c2.expect("started 1")
	})

	failFirst = true
	t.Run("failure answers HTTP 500 and the next request retries", func(t *testing.T) {
		body, status := get(t, srv.URL+"/party/fail-http")
		if status != 500 || !strings.Contains(body, "database unavailable") {
			t.Errorf("got %d %q, want 500 with the error", status, body)
		}
		body, status = get(t, srv.URL+"/party/fail-http")
		if status != 200 || body != "started 1" {
			t.Errorf("retry got %d %q, want 200 started 1", status, body)
		}
	})
}

// startCounter reports how many times its OnStart finished.
type startCounter struct {
	room    *party.Room
	start   func() error
	started int
}

func (s *startCounter) OnStart() error {
	if err := s.start(); err != nil {
		return err
	}
	s.started++
	return nil
}

func (s *startCounter) OnConnect(c *party.Connection, _ *http.Request) {
	c.Send(party.Text(fmt.Sprint("started ", s.started)))
}

func (s *startCounter) OnRequest(w http.ResponseWriter, _ *http.Request) {
	fmt.Fprint(w, "started ", s.started)
}

func TestIdleRoomsAreDropped(t *testing.T) {
	var built atomic.Int32
	h := party.Handler(func(r *party.Room) party.Server {
		built.Add(1)
		return &Chat{room: r}
	})
	h.IdleTimeout = 50 * time.Millisecond
	ws, _ := serve(t, h)

	c := dial(t, ws+"/party/idle?_pk=a")
	c.expect("Welcome, a")
	if h.Room("main", "idle") == nil {
		t.Fatal("Room(main, idle) = nil while a connection is in it")
	}
	c.close()
	eventually(t, "the idle room to be dropped", func() bool { return h.Room("main", "idle") == nil })
	c = dial(t, ws+"/party/idle?_pk=b")
	defer c.close()
	c.expect("Welcome, b")
	if n := built.Load(); n != 2 {
		t.Errorf("factory ran %d times, want 2 (a fresh room after the drop)", n)
	}
}

// Connections arriving while their room is being dropped always get a
// working room.
func TestJoinWhileRoomDrops(t *testing.T) {
	h := party.Handler(newChat)
	h.IdleTimeout = -1 // drop the moment the last connection leaves
	ws, _ := serve(t, h)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				id := fmt.Sprintf("g%d-%d", g, i)
				c, err := dialErr(ws+"/party/flappy?_pk="+id, nil)
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, b, err := c.Read(ctx)
				cancel()
				if err != nil || string(b) != "Welcome, "+id {
					t.Errorf("connection %s got %q, %v; want its welcome", id, b, err)
				}
				c.Close(websocket.StatusNormalClosure, "")
			}
		}()
	}
	wg.Wait()
	eventually(t, "the room to be dropped", func() bool { return h.Room("main", "flappy") == nil })
}

// A Server that detects concurrent handler calls without locks.
type serial struct {
	inside   bool
	overlaps int
	counts   map[string]int
}

func (s *serial) enter() {
	if s.inside {
		s.overlaps++
	}
	s.inside = true
	time.Sleep(100 * time.Microsecond)
	s.inside = false
}

func (s *serial) OnConnect(c *party.Connection, _ *http.Request) {
	s.enter()
	c.Send(party.Text("hello"))
}

func (s *serial) OnMessage(m party.Message, c *party.Connection) {
	s.enter()
	if m.String() == "report" {
		c.Send(party.Text(fmt.Sprint("overlaps ", s.overlaps)))
		return
	}
	s.counts[c.ID()]++
	c.Send(party.Text(fmt.Sprintf("%s#%d:%s", c.ID(), s.counts[c.ID()], m)))
}

func (s *serial) OnClose(*party.Connection) { s.enter() }

func TestHandlersRunOneAtATime(t *testing.T) {
	h := party.Handler(func(*party.Room) party.Server { return &serial{counts: map[string]int{}} })
	ws, _ := serve(t, h)
	const clients, messages = 8, 50
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("c", i)
			c := &client{t: t, conn: mustDial(t, ws+"/party/serial?_pk="+id)}
			defer c.close()
			if got := c.readText(); got != "hello" {
				t.Errorf("first message %q, want the OnConnect greeting", got)
				return
			}
			for n := 1; n <= messages; n++ {
				c.send(fmt.Sprint(n))
			}
			for n := 1; n <= messages; n++ {
				want := fmt.Sprintf("%s#%d:%d", id, n, n)
				if got := c.readText(); got != want {
					t.Errorf("got %q, want %q: messages out of order", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	c := dial(t, ws+"/party/serial?_pk=reporter")
	defer c.close()
	c.expect("hello")
	c.send("report")
	c.expect("overlaps 0")
}

// A handler that blocks delays its own room only.
func TestRoomsRunInParallel(t *testing.T) {
	release := make(chan struct{})
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{message: func(m party.Message, c *party.Connection) {
			if m.String() == "block" {
				<-release
			}
			c.Send(m)
		}}
	})
	ws, _ := serve(t, h)
	slow := dial(t, ws+"/party/slow")
	defer slow.close()
	slow.send("block")
	fast := dial(t, ws+"/party/fast")
	defer fast.close()
	fast.send("ping")
	fast.expect("ping")
	close(release)
	slow.expect("block")
}

func TestBroadcast(t *testing.T) {
	h := party.Handler(newChat)
	ws, _ := serve(t, h)
	a := dial(t, ws+"/party/b?_pk=a")
	defer a.close()
	a.expect("Welcome, a")
	b := dial(t, ws+"/party/b?_pk=b")
	defer b.close()
	b.expect("Welcome, b")
	a.expect("Heads up! b joined the party!")
	c := dial(t, ws+"/party/b?_pk=c")
	defer c.close()
	c.expect("Welcome, c")
	a.expect("Heads up! c joined the party!")
	b.expect("Heads up! c joined the party!")

	// Binary messages are forwarded as the same bytes, text as text.
	payload := []byte{0, 1, 2, 255, 254}
	a.conn.Write(context.Background(), websocket.MessageBinary, payload)
	for _, r := range []*client{b, c} {
		typ, got := r.read()
		if typ != websocket.MessageBinary || string(got) != string(payload) {
			t.Errorf("got %v %v, want binary %v", typ, got, payload)
		}
	}
	a.send("héllo ✓")
	b.expect("héllo ✓")
	c.expect("héllo ✓")

	// From outside any handler: a background job broadcasts into a live room.
	room := h.Room("main", "b")
	if room == nil {
		t.Fatal("Room(main, b) = nil")
	}
	done := make(chan struct{})
	go func() {
		room.Broadcast(party.Text("from a job"), "b", "c")
		room.Broadcast(party.Text("to all"))
		close(done)
	}()
	<-done
	a.expect("from a job")
	a.expect("to all")
	b.expect("to all")
	c.expect("to all")

	// Closing connections while iterating is safe; closed ones are skipped
	// by later iterations.
	n := 0
	for conn := range room.GetConnections() {
		n++
		if conn.ID() != "a" {
			conn.Close(4000, "bye")
		}
	}
	if n != 3 {
		t.Errorf("GetConnections yielded %d connections, want 3", n)
	}
	for conn := range room.GetConnections() {
		if conn.ID() != "a" {
			t.Errorf("GetConnections yielded closing connection %s", conn.ID())
		}
	}
	if ce := b.closed(); ce.Code != 4000 || ce.Reason != "bye" {
		t.Errorf("b closed with %v, want 4000 bye", ce)
	}
}

// TestMessageSizes sends messages of every header size (7-bit, 16-bit and
// 64-bit lengths, and the edges between them), text and binary, one by one
// and as one backlog mixing small and large, and checks every byte, type and
// the order at a real client.
func TestMessageSizes(t *testing.T) {
	var conn atomic.Pointer[party.Connection]
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{connect: func(c *party.Connection, _ *http.Request) { conn.Store(c) }}
	})
	ws, _ := serve(t, h)
	c := dial(t, ws+"/party/sizes?_pk=a")
	defer c.close()
	c.conn.SetReadLimit(-1)
	eventually(t, "the connection joined", func() bool { return conn.Load() != nil })

	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 65537, 100_000, 1 << 20}
	var want []party.Message
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte('a' + (i+j)%26)
		}
		want = append(want, party.Text(string(b)), party.Binary(b))
	}
	check := func(what string, msgs []party.Message) {
		t.Helper()
		for i, m := range msgs {
			typ, got := c.read()
			if typ == websocket.MessageBinary != m.IsBinary() || !bytes.Equal(got, m.Bytes()) {
				t.Fatalf("%s: message %d (%d bytes, binary %v) arrived as %d bytes, binary %v",
					what, i, len(m.Bytes()), m.IsBinary(), len(got), typ == websocket.MessageBinary)
			}
		}
	}
	for _, m := range want {
		if err := conn.Load().Send(m); err != nil {
			t.Fatal(err)
		}
		check("one at a time", []party.Message{m})
	}
	// A backlog: small and large interleaved, written in batches.
	var backlog []party.Message
	for _, m := range want {
		backlog = append(backlog, party.Text("small"), m)
	}
	for _, m := range backlog {
		if err := conn.Load().Send(m); err != nil {
			t.Fatal(err)
		}
	}
	check("backlog", backlog)
}

func TestSlowClientIsClosed(t *testing.T) {
	var closes sync.Map
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{close: func(c *party.Connection) {
			code, reason := c.CloseStatus()
			closes.Store(c.ID(), fmt.Sprint(code, " ", reason))
		}}
	})
	h.SendQueueMessages = 64
	h.SendQueueBytes = 1 << 20
	ws, _ := serve(t, h)
	stalled := dial(t, ws+"/party/slow?_pk=stalled") // never reads
	defer stalled.conn.CloseNow()
	reader := dial(t, ws+"/party/slow?_pk=reader")
	defer reader.close()
	eventually(t, "both connections to join", func() bool {
		r := h.Room("main", "slow")
		return r != nil && r.ConnectionCount() == 2
	})
	room := h.Room("main", "slow")

	// The room broadcasts at the pace its reading client keeps up with
	// (never more than 32 messages ahead of it): the stalled client falls
	// behind without bound, the reader never does.
	const total = 2000
	payload := strings.Repeat("x", 16<<10)
	received := make(chan error, 1)
	var got atomic.Int64
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for i := range total {
			_, b, err := reader.conn.Read(ctx)
			if err != nil {
				received <- fmt.Errorf("message %d: %w", i, err)
				return
			}
			if want := fmt.Sprint(i, payload); string(b) != want {
				received <- fmt.Errorf("message %d out of order", i)
				return
			}
			got.Add(1)
		}
		received <- nil
	}()
	for i := range total {
		for wait := time.Now(); int64(i)-got.Load() > 32; time.Sleep(100 * time.Microsecond) {
			if time.Since(wait) > 10*time.Second {
				t.Fatalf("the reading client is stuck at message %d: %v", got.Load(), <-received)
			}
		}
		room.Broadcast(party.Text(fmt.Sprint(i, payload)))
	}
	if err := <-received; err != nil {
		t.Fatalf("the reading client missed messages: %v", err)
	}
	eventually(t, "the stalled client to be closed", func() bool {
		v, ok := closes.Load("stalled")
		return ok && v == "1008 send queue full"
	})
	if _, ok := closes.Load("reader"); ok {
		t.Error("the reading client was closed too")
	}
}

func TestBadInput(t *testing.T) {
	logs := &logBuffer{}
	var errs events
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{
			connect: func(c *party.Connection, _ *http.Request) {
				if c.ID() == "panic-connect" {
					panic("connect exploded")
				}
			},
			message: func(m party.Message, c *party.Connection) {
				if m.String() == "panic" {
					panic("message exploded")
				}
				c.Send(m)
			},
			error: func(c *party.Connection, err error) { errs.add(c.ID() + ": " + err.Error()) },
		}
	})
	h.ReadLimit = 1024
	h.Logger = logs.logger()
	ws, _ := serve(t, h)

	t.Run("over the read limit closes 1009", func(t *testing.T) {
		c := dial(t, ws+"/party/bad?_pk=big")
		c.conn.Write(context.Background(), websocket.MessageText, []byte(strings.Repeat("a", 2048)))
		if ce := c.closed(); ce.Code != websocket.StatusMessageTooBig {
			t.Errorf("got %v, want 1009", ce)
		}
		eventually(t, "OnError to see the oversized message", func() bool {
			for _, e := range errs.list() {
				if strings.HasPrefix(e, "big: ") && strings.Contains(e, "too big") {
					return true
				}
			}
			return false
		})
	})
	t.Run("at the read limit is fine", func(t *testing.T) {
		c := dial(t, ws+"/party/bad?_pk=fits")
		defer c.close()
		c.send(strings.Repeat("a", 1024))
		if got := c.readText(); len(got) != 1024 {
			t.Errorf("echo of %d bytes, want 1024", len(got))
		}
	})
	t.Run("invalid UTF-8 closes 1007", func(t *testing.T) {
		c := dial(t, ws+"/party/bad?_pk=utf8")
		c.conn.Write(context.Background(), websocket.MessageText, []byte{0xff, 0xfe, 'a'})
		if ce := c.closed(); ce.Code != websocket.StatusInvalidFramePayloadData {
			t.Errorf("got %v, want 1007", ce)
		}
	})
	t.Run("panic in OnMessage keeps the connection", func(t *testing.T) {
		c := dial(t, ws+"/party/bad?_pk=pm")
		defer c.close()
		c.send("panic")
		c.send("still alive")
		c.expect("still alive")
		if !errs.has("pm: party: handler panicked: OnMessage: message exploded") {
			t.Errorf("OnError saw %q, want the OnMessage panic", errs.list())
		}
		if l := logs.String(); !strings.Contains(l, "message exploded") || !strings.Contains(l, "room=bad") || !strings.Contains(l, "connection=pm") {
			t.Errorf("log %q lacks the panic with room and connection id", l)
		}
	})
	t.Run("panic in OnConnect closes 1011", func(t *testing.T) {
		c := dial(t, ws+"/party/bad?_pk=panic-connect")
		if ce := c.closed(); ce.Code != websocket.StatusInternalError || !strings.Contains(ce.Reason, "connect exploded") {
			t.Errorf("got %v, want 1011 naming the panic", ce)
		}
		// The room survives.
		c2 := dial(t, ws+"/party/bad?_pk=after")
		defer c2.close()
		c2.send("ok")
		c2.expect("ok")
	})
}

func TestPanicInOnStart(t *testing.T) {
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{start: func() error { panic("start exploded") }}
	})
	h.Logger = (&logBuffer{}).logger()
	ws, srv := serve(t, h)
	c := dial(t, ws+"/party/boom")
	if ce := c.closed(); ce.Code != websocket.StatusInternalError || !strings.Contains(ce.Reason, "start exploded") {
		t.Errorf("got %v, want 1011 naming the panic", ce)
	}
	if _, status := get(t, srv.URL+"/party/boom"); status != 500 {
		t.Errorf("HTTP to a room whose OnStart panics = %d, want 500", status)
	}
}

func TestCloseHandshake(t *testing.T) {
	closed := make(chan string, 1)
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{
			message: func(m party.Message, c *party.Connection) {
				if m.String() == "kick me" {
					c.Close(4001, "unauthorized")
				}
			},
			close: func(c *party.Connection) {
				code, reason := c.CloseStatus()
				closed <- fmt.Sprint(code, " ", reason)
			},
		}
	})
	ws, _ := serve(t, h)

	// The client's close is answered with the same code and reason:
	// coder/websocket's Close returns nil only when the echo matches.
	c := dial(t, ws+"/party/h")
	if err := c.conn.Close(4321, "client-said-bye"); err != nil {
		t.Errorf("client close handshake: %v", err)
	}
	if got := receive(t, closed, "OnClose"); got != "4321 client-said-bye" {
		t.Errorf("OnClose saw %q, want 4321 client-said-bye", got)
	}

	c = dial(t, ws+"/party/h")
	c.send("kick me")
	if ce := c.closed(); ce.Code != 4001 || ce.Reason != "unauthorized" {
		t.Errorf("client got %v, want 4001 unauthorized", ce)
	}
	if got := receive(t, closed, "OnClose"); got != "4001 unauthorized" {
		t.Errorf("OnClose saw %q, want 4001 unauthorized", got)
	}
}

func TestKeepalive(t *testing.T) {
	// Over TLS the sweeper cannot write a ping around the TLS layer: the
	// writer goroutine sends it.
	for _, tls := range []bool{false, true} {
		name := map[bool]string{false: "tcp", true: "tls"}[tls]
		t.Run(name, func(t *testing.T) { testKeepalive(t, tls) })
	}
}

func testKeepalive(t *testing.T, tls bool) {
	closed := make(chan time.Time, 2)
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{close: func(c *party.Connection) {
			if c.ID() != "deaf" {
				return
			}
			code, reason := c.CloseStatus()
			if code != party.StatusAbnormalClosure || reason != "keepalive timeout" {
				t.Errorf("OnClose saw %d %q, want 1006 keepalive timeout", code, reason)
			}
			closed <- time.Now()
		}}
	})
	h.PingInterval = 100 * time.Millisecond
	h.PingTimeout = 100 * time.Millisecond
	ws, srv := serveWith(t, h, tls, nil)
	opts := &websocket.DialOptions{HTTPClient: srv.Client()}
	dialKeepalive := func(id string) *websocket.Conn {
		c, err := dialErr(ws+"/party/k?_pk="+id, opts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// A client that reads answers pings and stays.
	alive := dialKeepalive("alive")
	defer alive.Close(websocket.StatusNormalClosure, "")
	go alive.Read(context.Background())

	// A client that never reads never answers a ping: it is dropped.
	start := time.Now()
	deaf := dialKeepalive("deaf")
	defer deaf.CloseNow()
	select {
	case at := <-closed:
		// 2×PingInterval + PingTimeout, plus scheduling slack.
		if d := at.Sub(start); d > time.Second {
			t.Errorf("dead peer found after %v, want within about 300ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the unresponsive connection was not dropped")
	}
	time.Sleep(300 * time.Millisecond)
	if r := h.Room("main", "k"); r == nil || r.GetConnection("alive") == nil {
		t.Error("the responsive connection was dropped")
	}
}

// TestPingsStartNoGoroutine shows that keeping idle connections alive costs
// them no goroutine: the sweeper writes each ping itself when the
// connection's writer is not running.
func TestPingsStartNoGoroutine(t *testing.T) {
	created := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(created)
	if created[0].Value.Kind() != metrics.KindUint64 {
		t.Skip("this Go has no /sched/goroutines-created metric")
	}
	goroutinesCreated := func() uint64 { metrics.Read(created); return created[0].Value.Uint64() }

	h := party.Handler(newChat)
	h.PingInterval = 20 * time.Millisecond
	h.PingTimeout = time.Second
	_, srv := serve(t, h)
	addr := srv.Listener.Addr().String()

	const clients = 20
	var pings [clients]atomic.Int64
	for i := range clients {
		c, err := rawDial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.upgrade(fmt.Sprintf("/party/idle?_pk=c%d", i)); err != nil {
			t.Fatal(err)
		}
		go func() { // answers pings, as any WebSocket client does
			for {
				_, op, payload, err := c.readFrame()
				if err != nil {
					return
				}
				if op == opPing {
					pings[i].Add(1)
					if c.writeFrame(true, opPong, payload) != nil {
						return
					}
				}
			}
		}()
	}
	waitPings := func(n int64) {
		t.Helper()
		eventually(t, fmt.Sprintf("every client pinged %d times", n), func() bool {
			for i := range pings {
				if pings[i].Load() < n {
					return false
				}
			}
			return true
		})
	}
	waitPings(1) // the welcomes are written, the writers gone
	before := goroutinesCreated()
	waitPings(11)
	started := goroutinesCreated() - before
	// Through the writer, 200 pings would have started 200 goroutines.
	if started >= clients {
		t.Errorf("%d goroutines started while %d idle connections were pinged 10 times each", started, clients)
	}
	if n := h.Room("main", "idle").ConnectionCount(); n != clients {
		t.Errorf("room holds %d connections, want %d: pongs went unseen", n, clients)
	}
}

// TestIdleConnectionStacks shows what an idle connection costs in stack,
// beside a baseline in the same run: goroutines parked in coder/websocket's
// Read, as a plain server's read loops are. party's read loop waits for the
// client outside Read, on the smallest goroutine stack; pongs do not take it
// into Read, and after a message it waits outside Read again, on a fresh
// goroutine with the smallest stack. (Under -race, stack sizes are logged,
// not checked: .ci/run runs this test without it too.)
func TestIdleConnectionStacks(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the read loop waits inside coder/websocket's Read outside Linux")
	}
	// Enough connections that the runtime's own caches (dead goroutines
	// keep their stacks on per-P free lists, up to 64 each) are lost in
	// the average.
	clients := 2000
	if raceDetector {
		clients = 500 // bytes are not checked under -race: keep it quick
	}
	stacks := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.StackInuse
	}
	connect := func(addr, path string) []*rawConn {
		conns := make([]*rawConn, clients)
		for i := range conns {
			c, err := rawDial(addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if err := c.upgrade(fmt.Sprintf(path, i%(clients/10), i)); err != nil {
				t.Fatal(err)
			}
			conns[i] = c
		}
		return conns
	}
	// inRead counts goroutines parked in coder/websocket's Read.
	inRead := func() int {
		buf := make([]byte, 64<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "websocket.(*Conn).Read(")
	}

	// The baseline: a read loop in a goroutine of its own, in Read.
	baseSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		go func() {
			for {
				if _, _, err := ws.Read(context.Background()); err != nil {
					return
				}
			}
		}()
	}))
	defer baseSrv.Close()
	before := stacks()
	baseConns := connect(baseSrv.Listener.Addr().String(), "/b%d?id=%d")
	eventually(t, "baseline read loops in Read", func() bool { return inRead() == clients })
	baseline := float64(stacks()-before) / float64(clients)
	for _, c := range baseConns {
		c.Close()
	}
	eventually(t, "baseline read loops gone", func() bool { return inRead() == 0 })

	var messages atomic.Int64
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{message: func(m party.Message, c *party.Connection) {
			messages.Add(1)
			c.Send(m) // an echo: the connection's writer runs, then goes
		}}
	})
	h.PingInterval = 50 * time.Millisecond
	h.PingTimeout = 5 * time.Second
	_, srv := serve(t, h)
	before = stacks()
	conns := connect(srv.Listener.Addr().String(), "/party/s%d?_pk=c%d")
	// The clients answer a ping, as partysocket would, then idle.
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, op, payload, err := c.readFrame()
			if err != nil {
				t.Fatal(err)
			}
			if op == opPing {
				c.writeFrame(true, opPong, payload)
				break
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	idle := float64(stacks()-before) / float64(clients)
	t.Logf("goroutine stack per idle connection: party %.0f B, baseline %.0f B", idle, baseline)
	if idle > 0.6*baseline && !raceDetector {
		t.Errorf("party's idle connections hold %.0f B of stack each, want at most 0.6× the baseline's %.0f B", idle, baseline)
	}
	if n := inRead(); n != 0 {
		t.Errorf("%d of %d idle read loops wait in coder/websocket's Read", n, clients)
	}

	// A message takes a read loop into Read; it then waits outside again.
	for _, c := range conns {
		c.writeFrame(true, opText, []byte("hello"))
	}
	eventually(t, "every message handled", func() bool { return messages.Load() == int64(clients) })
	eventually(t, "every read loop waiting outside Read again", func() bool { return inRead() == 0 })
	// Read grew the stack of the goroutine it ran on; that goroutine is
	// gone, and a fresh one waits.
	time.Sleep(100 * time.Millisecond)
	afterMessage := float64(stacks()-before) / float64(clients)
	t.Logf("goroutine stack per connection idle again after a message: party %.0f B", afterMessage)
	if afterMessage > 0.6*baseline && !raceDetector {
		t.Errorf("after a message, party's idle connections hold %.0f B of stack each, want at most 0.6× the baseline's %.0f B", afterMessage, baseline)
	}
	for i, c := range conns {
		for {
			_, op, payload, err := c.readFrame()
			if err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
			if op == opText {
				if string(payload) != "hello" {
					t.Fatalf("client %d got %q, want its echo", i, payload)
				}
				break
			}
		}
	}
}

func TestOriginsHooksSubprotocols(t *testing.T) {
	type userKey struct{}
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{connect: func(c *party.Connection, r *http.Request) {
			c.Send(party.Text(fmt.Sprint("user ", r.Context().Value(userKey{}))))
		}}
	})
	h.OriginPatterns = []string{"*.example.com"}
	h.Subprotocols = []string{"party-v1"}
	h.BeforeConnect = func(r *http.Request, partyName, room string) (*http.Request, error) {
		switch r.URL.Query().Get("token") {
		case "good":
			return r.WithContext(context.WithValue(r.Context(), userKey{}, "ann@"+partyName+"/"+room)), nil
		case "teapot":
			return nil, &party.HTTPError{Status: http.StatusTeapot, Message: "no coffee here"}
		}
		return nil, errors.New("bad token")
	}
	ws, _ := serve(t, h)

	tests := []struct {
		name       string
		path       string
		origin     string
		wantStatus int
		wantBody   string
	}{
		{"no origin header", "/party/o?token=good", "", 0, ""},
		{"allowed origin", "/party/o?token=good", "https://app.example.com", 0, ""},
		{"refused origin", "/party/o?token=good", "https://evil.test", 403, "Host.OriginPatterns"},
		{"hook refuses", "/party/o?token=nope", "", 401, "bad token"},
		{"hook chooses status", "/party/o?token=teapot", "", 418, "no coffee here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &websocket.DialOptions{HTTPHeader: http.Header{}, Subprotocols: []string{"token.abc", "party-v1"}}
			if tt.origin != "" {
				opts.HTTPHeader.Set("Origin", tt.origin)
			}
			conn, err := dialErr(ws+tt.path, opts)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c := &client{t: t, conn: conn}
				defer c.close()
				c.expect("user ann@main/o")
				if p := conn.Subprotocol(); p != "party-v1" {
					t.Errorf("subprotocol %q, want party-v1", p)
				}
				return
			}
			var de *dialError
			if !errors.As(err, &de) || de.status != tt.wantStatus || !strings.Contains(de.body, tt.wantBody) {
				t.Errorf("got %v, want %d with body containing %q", err, tt.wantStatus, tt.wantBody)
			}
		})
	}
	// The accepted clients have closed (the server leaves them just after
	// answering their close frames); the refused ones never held a place.
	eventually(t, "no connection left in the room: refused requests never reached it", func() bool {
		r := h.Room("main", "o")
		return r == nil || r.ConnectionCount() == 0
	})
}

func TestShutdown(t *testing.T) {
	leaks := startLeakCheck(t)
	holdGC(t)
	var closes atomic.Int32
	seen := sync.Map{}
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{
			message: func(m party.Message, c *party.Connection) { c.Send(m) },
			close: func(c *party.Connection) {
				if _, dup := seen.LoadOrStore(c, true); dup {
					t.Errorf("OnClose ran twice for %s", c.ID())
				}
				closes.Add(1)
			},
		}
	})
	h.PingInterval = 50 * time.Millisecond
	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	srv := httptest.NewServer(mux)
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	const n = 50
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = dial(t, fmt.Sprintf("%s/party/r%d?_pk=c%d", ws, i%5, i))
	}
	eventually(t, "every client to join", func() bool {
		for i := range 5 {
			if r := h.Room("main", fmt.Sprint("r", i)); r == nil || r.ConnectionCount() != n/5 {
				return false
			}
		}
		return true
	})
	// Messages queued before Shutdown reach the clients before the close.
	for i := range 5 {
		h.Room("main", fmt.Sprint("r", i)).Broadcast(party.Text("last words"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.Shutdown(ctx) }()
	for _, c := range clients {
		c.expect("last words")
		if ce := c.closed(); ce.Code != websocket.StatusServiceRestart {
			t.Errorf("got %v, want 1012", ce)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := closes.Load(); got != n {
		t.Errorf("OnClose ran %d times, want %d", got, n)
	}
	// Every socket, the server's and the clients', is closed: only the
	// listener is left.
	leaks.checkDescriptors(t, srv.Listener)
	if _, err := dialErr(ws+"/party/r0", nil); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("dial after Shutdown: %v, want 503 shutting down", err)
	}
	srv.Close()
	leaks.check(t)
}

func TestNoLeaks(t *testing.T) {
	leaks := startLeakCheck(t)
	holdGC(t)
	h := party.Handler(newChat)
	h.IdleTimeout = -1
	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	srv := httptest.NewServer(mux)
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")

	const cycles, rooms, workers = 2000, 100, 8
	var wg sync.WaitGroup
	var next atomic.Int32
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > cycles {
					return
				}
				id := fmt.Sprint("c", i)
				c := &client{t: t, conn: mustDial(t, fmt.Sprintf("%s/party/room%d?_pk=%s", ws, i%rooms, id))}
				if got := c.readText(); got != "Welcome, "+id {
					t.Errorf("got %q, want welcome", got)
				}
				c.send("hi")
				c.close()
			}
		}()
	}
	wg.Wait()
	eventually(t, "every room to be dropped", func() bool {
		for i := range rooms {
			if h.Room("main", fmt.Sprint("room", i)) != nil {
				return false
			}
		}
		return true
	})
	// With the server still up, each client's socket was closed when it
	// left, on both sides: only the listener is open.
	leaks.checkDescriptors(t, srv.Listener)
	srv.CloseClientConnections()
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	leaks.check(t)
}

// A client that sends the moment it is open still has its OnConnect finish
// first, and what OnConnect sends arrives before what OnMessage sends.
func TestOnConnectBeforeFirstMessage(t *testing.T) {
	h := party.Handler(func(r *party.Room) party.Server {
		connected := map[string]bool{}
		return &probe{
			connect: func(c *party.Connection, _ *http.Request) {
				time.Sleep(50 * time.Millisecond)
				connected[c.ID()] = true
				c.Send(party.Text("welcome"))
			},
			message: func(m party.Message, c *party.Connection) {
				c.Send(party.Text(fmt.Sprint("connected=", connected[c.ID()], " ", m)))
			},
		}
	})
	ws, _ := serve(t, h)
	c := dial(t, ws+"/party/first?_pk=eager")
	defer c.close()
	c.send("right away")
	c.expect("welcome")
	c.expect("connected=true right away")
}

// A write that outlasts WriteTimeout drops the connection, even when its
// queue is within bounds.
func TestWriteTimeout(t *testing.T) {
	closed := make(chan string, 1)
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{
			close: func(c *party.Connection) {
				code, reason := c.CloseStatus()
				closed <- fmt.Sprint(code, " ", reason)
			},
			error: func(c *party.Connection, err error) {
				if !strings.Contains(err.Error(), "write timeout") {
					t.Errorf("OnError saw %v, want the write timeout", err)
				}
			},
		}
	})
	h.WriteTimeout = 200 * time.Millisecond
	h.SendQueueBytes = 1 << 30
	h.SendQueueMessages = 1 << 20
	ws, _ := serve(t, h)
	stalled := dial(t, ws+"/party/wt?_pk=stalled") // never reads
	defer stalled.conn.CloseNow()
	eventually(t, "the connection to join", func() bool {
		r := h.Room("main", "wt")
		return r != nil && r.GetConnection("stalled") != nil
	})
	c := h.Room("main", "wt").GetConnection("stalled")
	big := party.Binary(make([]byte, 1<<20))
	for range 64 { // far more than the socket buffers hold
		if c.Send(big) != nil {
			break
		}
	}
	select {
	case got := <-closed:
		if got != "1006 write timeout" {
			t.Errorf("OnClose saw %q, want 1006 write timeout", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a connection stuck in a write was not dropped")
	}
}

// A client may send its first frame in the same packet as its handshake;
// those bytes arrive buffered with the request and must not be lost when the
// connection is handed to the WebSocket layer.
func TestFrameInHandshakePacket(t *testing.T) {
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{message: func(m party.Message, c *party.Connection) { c.Send(m) }}
	})
	_, srv := serve(t, h)
	c, err := rawDial(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	packet := []byte(upgradeRequest("/party/early?_pk=e")) // the handshake and two frames, written at once
	packet = appendFrame(packet, true, opText, []byte("first"))
	packet = appendFrame(packet, true, opText, []byte("second"))
	resp, _, err := c.roundTrip(string(packet))
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []string{"first", "second"} {
		hdr, err := c.br.Peek(1)
		if err != nil {
			t.Fatalf("reading echo of %q: %v", want, err)
		}
		b0 := hdr[0] // FIN, RSV1-3 and opcode: a final text frame is 0x81
		_, _, got, err := c.readFrame()
		if err != nil {
			t.Fatalf("reading echo of %q: %v", want, err)
		}
		if b0 != 0x81 || string(got) != want {
			t.Errorf("echo = %x %q, want text %q", b0, got, want)
		}
	}
}

func TestBeforeRequest(t *testing.T) {
	type userKey struct{}
	h := party.Handler(func(r *party.Room) party.Server { return &whoami{room: r} })
	h.BeforeRequest = func(r *http.Request, partyName, room string) (*http.Request, error) {
		if r.Header.Get("Authorization") != "Bearer ok" {
			return nil, &party.HTTPError{Status: http.StatusForbidden, Message: "who are you?"}
		}
		return r.WithContext(context.WithValue(r.Context(), userKey{}, "ann")), nil
	}
	_, srv := serve(t, h)
	body, status := get(t, srv.URL+"/party/guarded")
	if status != http.StatusForbidden || !strings.Contains(body, "who are you?") {
		t.Errorf("unauthorized GET = %d %q, want 403 from the hook", status, body)
	}
	if h.Room("main", "guarded") != nil {
		t.Error("a refused request created the room")
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/party/guarded", nil)
	req.Header.Set("Authorization", "Bearer ok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "main guarded" {
		t.Errorf("authorized GET = %d %q, want 200 main guarded", resp.StatusCode, b)
	}
}

// A connection replacing an older one with its id sees its own welcome first,
// not the older one's leave notice; others see the leave, then the join.
func TestReplacementSeesWelcomeFirst(t *testing.T) {
	h := party.Handler(newChat)
	ws, _ := serve(t, h)
	observer := dial(t, ws+"/party/twins?_pk=observer")
	defer observer.close()
	observer.expect("Welcome, observer")
	old := dial(t, ws+"/party/twins?_pk=same")
	defer old.conn.CloseNow()
	old.expect("Welcome, same")
	observer.expect("Heads up! same joined the party!")
	fresh := dial(t, ws+"/party/twins?_pk=same")
	defer fresh.close()
	fresh.expect("Welcome, same")
	observer.expect("So sad! same left the party!")
	observer.expect("Heads up! same joined the party!")
}

// Once a client's socket is open, it is in the room for everything the room
// does afterwards: a message sent by the next client to join reaches it.
func TestOpenMeansJoined(t *testing.T) {
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{message: func(m party.Message, c *party.Connection) { r.Broadcast(m, c.ID()) }}
	})
	ws, _ := serve(t, h)
	for i := range 30 {
		room := fmt.Sprint("open", i)
		a := dial(t, ws+"/party/"+room+"?_pk=a")
		b := dial(t, ws+"/party/"+room+"?_pk=b")
		b.send("hi")
		a.expect("hi")
		a.close()
		b.close()
	}
}

// A client that closes while the server is writing a backlog to it gets its
// own close frame back, not a cut connection: coder/websocket's answer must
// not be lost in the writer's batch.
func TestCloseAnsweredDuringBacklog(t *testing.T) {
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{message: func(m party.Message, c *party.Connection) {
			for range 200 {
				c.Send(m)
			}
		}}
	})
	ws, _ := serve(t, h)
	failures := 0
	for i := range 200 {
		c := dial(t, fmt.Sprintf("%s/party/backlog?_pk=c%d", ws, i))
		c.send(strings.Repeat("x", 512))
		c.read() // the backlog is being written
		if err := c.conn.Close(4321, "bye"); err != nil {
			failures++
			t.Logf("close %d: %v", i, err)
		}
	}
	if failures > 0 {
		t.Errorf("%d of 200 client closes got no close frame back", failures)
	}
}
