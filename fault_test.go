package party_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
)

// The fault tests: each fault has a defined outcome, asserted through real
// sockets, and every other client is shown unaffected. Figures (memory,
// detection times) are reported with t.Logf; run with -v to see them.

// ---- this file's helpers (the shared ones are in helpers_test.go) ---------

// signedMiB formats after-before, which may be negative.
func signedMiB(after, before uint64) string {
	return fmt.Sprintf("%+.2f MiB", (float64(after)-float64(before))/(1<<20))
}

// reader reads a client's messages on its own goroutine, so that the client
// answers pings, and hands them over on a channel.
type reader struct {
	msgs chan string
	done chan error // the read error that ended it
}

func startReader(c *websocket.Conn) *reader {
	r := &reader{msgs: make(chan string, 1024), done: make(chan error, 1)}
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				r.done <- err
				close(r.msgs)
				return
			}
			r.msgs <- string(b)
		}
	}()
	return r
}

func (r *reader) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got, ok := <-r.msgs:
		if !ok {
			t.Fatalf("connection ended while waiting for %q: %v", want, <-r.done)
		}
		if got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %q", want)
	}
}

// joined waits until room has n connections: a client's handshake completes
// before its connection joins the room.
func joined(t *testing.T, h *party.Host, room string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d connections in room %s", n, room), func() bool {
		r := h.Room("main", room)
		return r != nil && r.ConnectionCount() == n
	})
}

// ---- a client that stops reading ------------------------------------------

// A client that stops reading while its room broadcasts 10,000 messages is
// closed with 1008 once its queue is full; the clients that read get every
// message, in order; the server's live heap stays within the queue bound
// instead of growing with the backlog (40 MiB here).
func TestStalledClientDuring10000Broadcasts(t *testing.T) {
	var closes sync.Map
	h := party.Handler(func(*party.Room) party.Server { return &echo{closes: &closes} })
	// The default queue bounds: 1,024 messages, 4 MiB.
	ws, _ := serve(t, h)

	stalled := dial(t, ws+"/party/stall?_pk=stalled") // never reads
	defer stalled.conn.CloseNow()
	const nreaders, total, size = 3, 10_000, 4 << 10
	readers := make([]*client, nreaders)
	for i := range readers {
		readers[i] = dial(t, fmt.Sprintf("%s/party/stall?_pk=reader%d", ws, i))
		defer readers[i].close()
	}
	eventually(t, "every connection to join", func() bool {
		r := h.Room("main", "stall")
		return r != nil && r.ConnectionCount() == nreaders+1
	})
	room := h.Room("main", "stall")

	filler := strings.Repeat("x", size-6)
	got := make([]atomic.Int64, nreaders)
	errc := make(chan error, nreaders)
	for i, rd := range readers {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for n := range total {
				_, b, err := rd.conn.Read(ctx)
				if err != nil {
					errc <- fmt.Errorf("reader%d at message %d: %w", i, n, err)
					return
				}
				if want := fmt.Sprintf("%05d %s", n, filler); string(b) != want {
					errc <- fmt.Errorf("reader%d: message %d is %.10q..., want %.10q...", i, n, b, want)
					return
				}
				got[i].Add(1)
			}
			errc <- nil
		}()
	}
	slowest := func() int64 {
		m := got[0].Load()
		for i := range got {
			m = min(m, got[i].Load())
		}
		return m
	}

	base := liveHeap()
	peak, closedAfter := base, -1
	var closedAt time.Time
	for i := range total {
		// Never more than 32 messages ahead of the slowest reader: the
		// readers are never at risk, only the stalled client falls behind.
		for wait := time.Now(); int64(i)-slowest() > 32; time.Sleep(50 * time.Microsecond) {
			if time.Since(wait) > 20*time.Second {
				t.Fatalf("the readers are stuck at message %d", slowest())
			}
		}
		room.Broadcast(party.Text(fmt.Sprintf("%05d %s", i, filler)))
		if closedAfter < 0 && room.GetConnection("stalled") == nil {
			closedAfter, closedAt = i+1, time.Now()
		}
		if i%100 == 99 && closedAfter < 0 || i%1000 == 999 { // finely while the stalled queue grows
			peak = max(peak, liveHeap())
		}
	}
	for range nreaders {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second) // the close frame to a client that reads nothing times out after 5 s
	var onCloseLag time.Duration
	for {
		v, ok := closes.Load("stalled")
		if ok {
			onCloseLag = time.Since(closedAt)
			if v != "1008 send queue full" {
				t.Errorf("the stalled client closed with %q, want 1008 send queue full", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stalled client was never closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range nreaders {
		if v, ok := closes.Load(fmt.Sprint("reader", i)); ok {
			t.Errorf("reader%d was closed too: %v", i, v)
		}
	}
	after := liveHeap()
	backlog := uint64(total * size)
	t.Logf("stalled client closed (1008) after %d broadcasts of %d bytes, its OnClose %v later (at most, polled); live heap: before %s, peak %s (%s), after %s; unbounded backlog would be %s",
		closedAfter, size, onCloseLag.Round(time.Millisecond), mib(base), mib(peak), signedMiB(peak, base), mib(after), mib(backlog))
	if bound := uint64(party.DefaultSendQueueBytes) + 4<<20; peak > base+bound {
		t.Errorf("live heap grew by %s under a stalled client, want at most the queue bound plus 4 MiB (%s)", signedMiB(peak, base), mib(bound))
	}
}

// ---- a client that vanishes -----------------------------------------------

// proxy forwards TCP connections to target until it is cut. A cut proxy
// keeps both sockets open and silently discards what arrives from either
// side: to the server, the client has vanished without a FIN or RST, as when
// a phone leaves coverage.
type proxy struct {
	ln     net.Listener
	target string
	cut    atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				down.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, down, up)
			p.mu.Unlock()
			go p.pipe(down, up)
			go p.pipe(up, down)
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) pipe(src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			if !p.cut.Load() {
				dst.Close()
			}
			return
		}
		if !p.cut.Load() {
			dst.Write(buf[:n])
		}
	}
}

// upstream returns the proxy's connections to the server.
func (p *proxy) upstream() []*net.TCPConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ups []*net.TCPConn
	for i := 1; i < len(p.conns); i += 2 {
		ups = append(ups, p.conns[i].(*net.TCPConn))
	}
	return ups
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// A client that disappears without a close frame is found and its OnClose
// runs: at once when its TCP connection is reset or closed, and through the
// keepalive within the documented 2×PingInterval+PingTimeout when it simply
// stops answering. The other clients of its room notice nothing.
func TestVanishedClient(t *testing.T) {
	const interval, timeout = 400 * time.Millisecond, 200 * time.Millisecond
	bound := 2*interval + timeout
	tests := []struct {
		name       string
		vanish     func(p *proxy)
		wantReason string
		within     time.Duration
	}{
		{"silent (packets dropped)", func(p *proxy) { p.cut.Store(true) }, "keepalive timeout", bound},
		{"TCP reset", func(p *proxy) {
			p.cut.Store(true)
			for _, c := range p.upstream() {
				c.SetLinger(0)
				c.Close()
			}
		}, "", bound},
		{"TCP FIN without close frame", func(p *proxy) {
			p.cut.Store(true)
			for _, c := range p.upstream() {
				c.Close()
			}
		}, "", bound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			closed := make(chan time.Time, 1)
			var status atomic.Value
			var othersClosed sync.Map
			h := party.Handler(func(r *party.Room) party.Server {
				return &probe{
					message: func(m party.Message, c *party.Connection) { r.Broadcast(m) },
					close: func(c *party.Connection) {
						if c.ID() == "ghost" {
							code, reason := c.CloseStatus()
							status.Store(fmt.Sprint(code, " ", reason))
							closed <- time.Now()
						} else {
							othersClosed.Store(c.ID(), true)
						}
					},
				}
			})
			h.PingInterval, h.PingTimeout = interval, timeout
			ws, srv := serve(t, h)
			p := startProxy(t, srv.Listener.Addr().String())

			others := []*client{dial(t, ws+"/party/v?_pk=a"), dial(t, ws+"/party/v?_pk=b")}
			readers := []*reader{startReader(others[0].conn), startReader(others[1].conn)}
			ghost := dial(t, "ws://"+p.ln.Addr().String()+"/party/v?_pk=ghost")
			defer ghost.conn.CloseNow()
			gr := startReader(ghost.conn) // answers pings until the cut
			joined(t, h, "v", 3)
			ghost.send("hello")
			for _, r := range append(readers, gr) {
				r.expect(t, "hello")
			}
			time.Sleep(2 * interval) // a few keepalive rounds pass while it answers

			start := time.Now()
			tt.vanish(p)
			var at time.Time
			select {
			case at = <-closed:
			case <-time.After(bound + 5*time.Second):
				t.Fatalf("the vanished client's OnClose did not run within %v", bound+5*time.Second)
			}
			found := at.Sub(start)
			t.Logf("vanished client found after %v (bound 2×PingInterval+PingTimeout = %v); OnClose saw %v", found.Round(time.Millisecond), bound, status.Load())
			if want := "1006 " + tt.wantReason; status.Load() != want {
				t.Errorf("OnClose saw %q, want %q", status.Load(), want)
			}
			// Scheduling slack on a loaded machine; the figure above is the measurement.
			if found > tt.within+time.Second {
				t.Errorf("found after %v, want within %v", found, tt.within)
			}
			// The others were never disturbed and still talk.
			others[1].send("still here")
			for _, r := range readers {
				r.expect(t, "still here")
			}
			if n := h.Room("main", "v").ConnectionCount(); n != 2 {
				t.Errorf("ConnectionCount = %d after the ghost left, want 2", n)
			}
			othersClosed.Range(func(k, _ any) bool { t.Errorf("%s was closed", k); return true })
		})
	}
}

// ---- handshake abuse -------------------------------------------------------

// Malformed and hostile handshakes each get their status, and none reaches a
// Server: no factory call, no OnConnect.
func TestHandshakeAbuse(t *testing.T) {
	var built, connected atomic.Int32
	factory := func(r *party.Room) party.Server {
		built.Add(1)
		return &probe{connect: func(*party.Connection, *http.Request) { connected.Add(1) }}
	}
	h := party.Handler(factory)
	h.OriginPatterns = []string{"*.example.com"}
	_, srv := serveWith(t, h, false, func(s *http.Server) {
		s.ReadHeaderTimeout = 500 * time.Millisecond // the application's choice; see "unfinished headers"
		s.ErrorLog = log.New(io.Discard, "", 0)
	})
	// The Host mounted as the whole handler, with no mux to clean paths.
	bare := party.Handler(factory)
	bareSrv := httptest.NewServer(bare)
	defer bareSrv.Close()
	defer bare.Shutdown(context.Background())

	valid := upgradeRequest("/party/ok")
	without := func(header string) string {
		var out []string
		for _, l := range strings.Split(valid, "\r\n") {
			if !strings.HasPrefix(l, header+":") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\r\n")
	}
	with := func(header, value string) string {
		return strings.Replace(without(header), "\r\n\r\n", "\r\n"+header+": "+value+"\r\n\r\n", 1)
	}
	tests := []struct {
		name       string
		raw        string
		bare       bool // to the Host without a mux in front
		wantStatus int
		wantBody   string
	}{
		{"missing Sec-WebSocket-Key", without("Sec-WebSocket-Key"), false, 400, "Sec-WebSocket-Key"},
		{"Sec-WebSocket-Key not base64", with("Sec-WebSocket-Key", "not base64!"), false, 400, "Sec-WebSocket-Key"},
		{"Sec-WebSocket-Key of 15 bytes", with("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"), false, 400, "Sec-WebSocket-Key"},
		{"wrong version", with("Sec-WebSocket-Version", "8"), false, 426, "speaks 13"},
		{"missing version", without("Sec-WebSocket-Version"), false, 426, "speaks 13"},
		{"no Connection: Upgrade", with("Connection", "keep-alive"), false, 400, "Connection: Upgrade"},
		{"POST", strings.Replace(valid, "GET", "POST", 1), false, 405, "GET"},
		{"HTTP/1.0", strings.Replace(valid, "HTTP/1.1", "HTTP/1.0", 1), false, 400, "HTTP/1.1"},
		{"origin not allowed", with("Origin", "https://evil.test"), false, 403, "OriginPatterns"},
		{"malformed origin", with("Origin", "::::"), false, 403, "malformed Origin"},
		{"room ../ (the mux cleans it: redirect, no room)", upgradeRequest("/party/../x"), false, 307, ""},
		{"room .. (no mux)", upgradeRequest("/party/../x"), true, 400, "dot segment"},
		{"room %2E%2E", upgradeRequest("/party/%2E%2E"), false, 400, "dot segment"},
		{"room ..%2F escaping upwards", upgradeRequest("/party/..%2F..%2Fetc%2Fpasswd"), false, 400, "dot segment"},
		{"room a%2F..%2F..", upgradeRequest("/party/a%2F..%2F.."), false, 400, "dot segment"},
		{"room with %00", upgradeRequest("/party/a%00b"), false, 400, "control character"},
		{"room of 10 KB", upgradeRequest("/party/" + strings.Repeat("r", 10<<10)), false, 400, "longer than 256"},
		{"room of invalid UTF-8", upgradeRequest("/party/%C3%28"), false, 400, "not valid UTF-8"},
		{"room of raw invalid UTF-8", upgradeRequest("/party/\xff\xfe"), false, 400, "not valid UTF-8"},
		{"room with bad escapes", upgradeRequest("/party/%zz"), false, 400, ""},
		{"empty room", upgradeRequest("/party/"), false, 400, "empty"},
		{"no room", upgradeRequest("/parties/main"), false, 404, "no room"},
		{"unknown party", upgradeRequest("/parties/nope/r"), false, 404, "not found"},
		{"_pk with %00", upgradeRequest("/party/ok?_pk=a%00"), false, 400, "_pk"},
		{"_pk of 10 KB", upgradeRequest("/party/ok?_pk=" + strings.Repeat("p", 10<<10)), false, 400, "_pk"},
		{"_pk of invalid UTF-8", upgradeRequest("/party/ok?_pk=%FF"), false, 400, "_pk"},
		{"_pk ../..", upgradeRequest("/party/ok?_pk=..%2F.."), false, 400, "_pk"},
		{"headers over 1 MB", with("X-Junk", strings.Repeat("j", 2<<20)), false, 431, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := srv.Listener.Addr().String()
			if tt.bare {
				addr = bareSrv.Listener.Addr().String()
			}
			c, err := rawDial(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			resp, body, err := c.roundTrip(tt.raw)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %q, want %d with a body containing %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus == 426 && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("426 without Sec-WebSocket-Version: 13")
			}
		})
	}

	// A request that never finishes its headers never reaches the Host:
	// net/http holds it until the http.Server's ReadHeaderTimeout, which is
	// the application's to set (it has none by default). Meanwhile everybody
	// else is served.
	t.Run("unfinished headers", func(t *testing.T) {
		c, err := rawDial(srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		io.WriteString(c, "GET /party/ok HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
		other := dial(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/party/other")
		defer other.close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.Copy(io.Discard, c) // until net/http hangs up
		if err != nil {
			t.Fatalf("the server did not hang up on unfinished headers: %v", err)
		}
		t.Logf("unfinished headers: connection closed after %v (ReadHeaderTimeout 500ms), %d bytes answered", time.Since(start).Round(time.Millisecond), n)
	})

	// Only the legitimate client of the last subtest reached a Server.
	eventually(t, "the legitimate client's OnConnect", func() bool { return connected.Load() == 1 })
	time.Sleep(50 * time.Millisecond) // a stray one would show now
	if b, c := built.Load(), connected.Load(); b != 1 || c != 1 {
		t.Errorf("%d Servers built and %d OnConnect calls, want 1 and 1 (the legitimate client)", b, c)
	}
}

// ---- resource exhaustion ---------------------------------------------------

// 20,000 distinct rooms are opened and left, a few hundred at a time: every
// room is dropped after the idle period and the live heap returns to its
// starting point.
func TestTwentyThousandRooms(t *testing.T) {
	leaks := startLeakCheck(t)
	var built atomic.Int64
	h := party.Handler(func(r *party.Room) party.Server {
		built.Add(1)
		return &Chat{room: r}
	})
	h.IdleTimeout = 50 * time.Millisecond
	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	srv := httptest.NewServer(mux)
	addr := srv.Listener.Addr().String()

	// Two clients in a room of their own chat through all of it.
	steadyA := dial(t, "ws://"+addr+"/party/steady?_pk=a")
	steadyA.expect("Welcome, a")
	steadyB := dial(t, "ws://"+addr+"/party/steady?_pk=b")
	steadyB.expect("Welcome, b")
	steadyA.expect("Heads up! b joined the party!")

	const rooms, batch = 20_000, 250
	base, baseStacks := liveMemory()
	var open, openStacks uint64 // with one batch of rooms open
	for start := 0; start < rooms; start += batch {
		conns := make([]*rawConn, batch)
		var wg sync.WaitGroup
		errs := make(chan error, batch)
		for i := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprint("room", start+i)
				c, err := rawDial(addr)
				if err == nil {
					if err = c.upgrade("/party/" + id + "?_pk=u"); err == nil {
						c.SetReadDeadline(time.Now().Add(5 * time.Second))
						var b []byte
						if _, _, b, err = c.readFrame(); err == nil && string(b) != "Welcome, u" {
							err = fmt.Errorf("%s: got %q, want the welcome", id, b)
						}
					}
				}
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if start == rooms/2 {
			open, openStacks = liveMemory()
		}
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.closeNormally(); err != nil {
					t.Error(err)
				}
			}()
		}
		steadyA.send(fmt.Sprint("during batch ", start))
		steadyB.expect(fmt.Sprint("during batch ", start))
		wg.Wait()
	}
	steadyA.close()
	steadyB.close()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < rooms; {
		if h.Room("main", fmt.Sprint("room", i)) == nil {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("room%d is still in memory", i)
		}
		time.Sleep(10 * time.Millisecond)
	}
	after, afterStacks := liveMemory()
	t.Logf("%d rooms opened and left, %d at a time: live heap before %s, with %d rooms open %s (+%.1f KiB heap and +%.1f KiB stacks per room with its connection, test client included), after all were dropped %s (%s; stacks %s)",
		built.Load(), batch, mib(base), batch, mib(open), (float64(open)-float64(base))/batch/1024,
		(float64(openStacks)-float64(baseStacks))/batch/1024, mib(after), signedMiB(after, base), signedMiB(afterStacks, baseStacks))
	if built.Load() != rooms+1 {
		t.Errorf("%d Servers built, want %d and the steady client's", built.Load(), rooms)
	}
	if after > base+2<<20 {
		t.Errorf("live heap %s after every room was dropped, want within 2 MiB of the %s it started at", mib(after), mib(base))
	}
	srv.Close()
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	leaks.check(t)
}

// MaxRooms and MaxConnectionsPerRoom refuse the excess with 503 and a body
// naming the cap, also under concurrent requests; what is already open keeps
// working, and the freed capacity is usable again.
func TestCaps(t *testing.T) {
	t.Run("MaxRooms", func(t *testing.T) {
		var built atomic.Int32
		h := party.Handler(func(r *party.Room) party.Server { built.Add(1); return &echo{} })
		h.MaxRooms = 3
		h.IdleTimeout = -1
		ws, srv := serve(t, h)
		var open []*client
		for i := range 3 {
			open = append(open, dial(t, fmt.Sprintf("%s/party/r%d", ws, i)))
		}
		_, err := dialErr(ws+"/party/r3", nil)
		var de *dialError
		if !errors.As(err, &de) || de.status != 503 || !strings.Contains(de.body, "Host.MaxRooms is 3") {
			t.Fatalf("4th room: %v, want 503 naming Host.MaxRooms", err)
		}
		if body, status := get(t, srv.URL+"/party/r4"); status != 503 || !strings.Contains(body, "Host.MaxRooms") {
			t.Errorf("HTTP to a 4th room = %d %q, want 503", status, body)
		}
		for i, c := range open {
			roundTripOK(t, c, fmt.Sprint("room ", i, " works"))
		}
		defer open[1].close()
		defer open[2].close()
		if n := built.Load(); n != 3 {
			t.Errorf("%d Servers built, want 3", n)
		}
		open[0].close()
		eventually(t, "a room to be free", func() bool {
			c, err := dialErr(ws+"/party/r3", nil)
			if err == nil {
				c.Close(websocket.StatusNormalClosure, "")
			}
			return err == nil
		})
	})
	t.Run("MaxRooms under concurrency", func(t *testing.T) {
		h := party.Handler(func(r *party.Room) party.Server { return &echo{} })
		h.MaxRooms = 5
		ws, _ := serve(t, h)
		// 60 new rooms at once, each kept open until every attempt is
		// done: exactly 5 open, the other 55 are refused as documented.
		open, refused := dialAtOnce(t, 60, func(i int) string { return fmt.Sprintf("%s/party/c%d", ws, i) }, "Host.MaxRooms is 5")
		if open != 5 || refused != 55 {
			t.Errorf("%d rooms opened and %d refused with MaxRooms 5, want 5 and 55", open, refused)
		}
	})
	// Regression: the cap was checked before the room was stored, so
	// requests for new rooms arriving together could all pass it (6 rooms
	// with MaxRooms 5, in most runs of this test before the fix). Over
	// sockets the requests rarely line up closely enough; calling the
	// Host's ServeHTTP from many goroutines at once makes them.
	t.Run("MaxRooms under simultaneous requests", func(t *testing.T) {
		for round := range 30 {
			var in, refused atomic.Int32
			release := make(chan struct{})
			h := party.Handler(func(r *party.Room) party.Server { return &holdRequest{in: &in, release: release} })
			h.MaxRooms = 5
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 400 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprint("/party/r", i), nil))
					if rec.Code == http.StatusServiceUnavailable {
						refused.Add(1)
					}
				}()
			}
			close(start)
			eventually(t, "every request to be refused or in a room", func() bool { return in.Load()+refused.Load() == 400 })
			n := in.Load()
			close(release)
			wg.Wait()
			h.Shutdown(context.Background())
			if n != 5 { // every request held its room: the first 5 fill the cap
				t.Fatalf("round %d: %d rooms open at once with MaxRooms 5, want 5", round, n)
			}
		}
	})
	t.Run("MaxConnectionsPerRoom", func(t *testing.T) {
		var connects atomic.Int32
		h := party.Handler(func(r *party.Room) party.Server {
			return &probe{
				connect: func(*party.Connection, *http.Request) { connects.Add(1) },
				message: func(m party.Message, c *party.Connection) { c.Send(m) },
			}
		})
		h.MaxConnectionsPerRoom = 2
		ws, _ := serve(t, h)
		a, b := dial(t, ws+"/party/full?_pk=a"), dial(t, ws+"/party/full?_pk=b")
		defer b.close()
		_, err := dialErr(ws+"/party/full?_pk=c", nil)
		var de *dialError
		if !errors.As(err, &de) || de.status != 503 || !strings.Contains(de.body, "Host.MaxConnectionsPerRoom is 2") {
			t.Fatalf("3rd connection: %v, want 503 naming Host.MaxConnectionsPerRoom", err)
		}
		other := dial(t, ws+"/party/elsewhere") // other rooms are not concerned
		defer other.close()
		roundTripOK(t, a, "a works")
		roundTripOK(t, b, "b works")
		eventually(t, "OnConnect for a, b and the other room's client", func() bool { return connects.Load() == 3 })
		// Concurrent attempts never pass the cap either: none gets into the
		// full room, exactly 2 into an empty one.
		if in, refused := dialAtOnce(t, 20, func(i int) string { return fmt.Sprintf("%s/party/full?_pk=x%d", ws, i) }, "Host.MaxConnectionsPerRoom is 2"); in != 0 || refused != 20 {
			t.Errorf("%d connections joined a full room and %d were refused, want 0 and 20", in, refused)
		}
		if in, refused := dialAtOnce(t, 20, func(i int) string { return fmt.Sprintf("%s/party/crowd?_pk=x%d", ws, i) }, "Host.MaxConnectionsPerRoom is 2"); in != 2 || refused != 18 {
			t.Errorf("%d connections joined an empty room at once and %d were refused, want 2 and 18", in, refused)
		}
		a.close()
		eventually(t, "the freed slot to be usable", func() bool {
			c, err := dialErr(ws+"/party/full?_pk=d", nil)
			if err == nil {
				c.Close(websocket.StatusNormalClosure, "")
			}
			return err == nil
		})
	})
}

// dialAtOnce dials n URLs at once and keeps the connections that open until
// every dial is done, then closes them. It returns how many opened and how
// many were refused with 503 and a body containing want; any other outcome
// fails the test.
func dialAtOnce(t *testing.T, n int, url func(i int) string, want string) (open, refused int) {
	t.Helper()
	var mu sync.Mutex
	var conns []*websocket.Conn
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := dialErr(url(i), nil)
			mu.Lock()
			defer mu.Unlock()
			var de *dialError
			switch {
			case err == nil:
				conns = append(conns, c)
			case errors.As(err, &de) && de.status == 503 && strings.Contains(de.body, want):
				refused++
			default:
				t.Errorf("dial %s: %v, want it open or refused with 503 %q", url(i), err, want)
			}
		}()
	}
	close(start)
	wg.Wait()
	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}
	return len(conns), refused
}

// holdRequest answers HTTP requests once release is closed.
type holdRequest struct {
	in      *atomic.Int32
	release chan struct{}
}

func (s *holdRequest) OnRequest(w http.ResponseWriter, r *http.Request) {
	s.in.Add(1)
	<-s.release
}

// ---- handler faults --------------------------------------------------------

// panicky panics in the handler named by its room id (for connection
// handlers, only for the connection "victim"). Each panics once per room, so
// the recovery can be shown too.
type panicky struct {
	room     *party.Room
	in       string
	errs     *events
	closes   *events
	panicked *sync.Map // handler name -> true once it panicked
}

func (s *panicky) boom(handler string, c *party.Connection) {
	if s.in == handler && (c == nil || c.ID() == "victim") {
		if _, done := s.panicked.LoadOrStore(handler, true); !done {
			panic(handler + " exploded")
		}
	}
}

func (s *panicky) OnStart() error { s.boom("OnStart", nil); return nil }

func (s *panicky) ConnectionTags(c *party.Connection, r *http.Request) []string {
	s.boom("ConnectionTags", c)
	return nil
}

func (s *panicky) OnConnect(c *party.Connection, r *http.Request) { s.boom("OnConnect", c) }

func (s *panicky) OnMessage(m party.Message, c *party.Connection) {
	switch m.String() {
	case "alarm":
		s.room.SetAlarm(time.Now())
		return
	case "boom":
		s.boom("OnMessage", c)
	}
	s.room.Broadcast(m)
}

func (s *panicky) OnClose(c *party.Connection) {
	code, _ := c.CloseStatus()
	s.closes.add(fmt.Sprint(c.ID(), " ", code))
	s.boom("OnClose", c)
}

func (s *panicky) OnError(c *party.Connection, err error) {
	s.errs.add(c.ID() + ": " + err.Error())
	s.boom("OnError", c)
}

func (s *panicky) OnRequest(w http.ResponseWriter, r *http.Request) {
	s.boom("OnRequest", nil)
	io.WriteString(w, "fine")
}

func (s *panicky) OnAlarm() {
	s.boom("OnAlarm", nil)
	s.room.Broadcast(party.Text("alarm rang"))
}

// A handler that calls runtime.Goexit cannot be recovered: the room it held
// stops, and the log says which and why. Other rooms go on. (No Shutdown
// here: the stopped room's connection never finishes.)
func TestGoexitInHandlerIsLogged(t *testing.T) {
	logs := &logBuffer{}
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{message: func(m party.Message, c *party.Connection) {
			if m.String() == "exit" {
				runtime.Goexit()
			}
			c.Send(party.Text("echo " + m.String()))
		}}
	})
	h.Logger = logs.logger()
	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")

	stuck := dial(t, ws+"/party/stuck?_pk=a")
	defer stuck.conn.CloseNow()
	stuck.send("exit")
	eventually(t, "the Goexit logged", func() bool {
		out := logs.String()
		return strings.Contains(out, "runtime.Goexit") && strings.Contains(out, "room=stuck") &&
			strings.Contains(out, "handler=OnMessage") && strings.Contains(out, "connection=a")
	})
	other := dial(t, ws+"/party/other?_pk=b")
	defer other.conn.CloseNow()
	other.send("hi")
	other.expect("echo hi")
}

// A panic in any handler is recovered and logged with its room; it has its
// documented outcome for the connection or request concerned, and the room
// (and every other client in it) keeps working.
func TestPanicInEachHandler(t *testing.T) {
	leaks := startLeakCheck(t)
	holdGC(t)
	logs := &logBuffer{}
	var errs, closes events
	var panicked sync.Map
	h := party.Handler(func(r *party.Room) party.Server {
		if r.ID() == "factory" {
			if _, done := panicked.LoadOrStore("factory", true); !done {
				panic("factory exploded")
			}
		}
		return &panicky{room: r, in: r.ID(), errs: &errs, closes: &closes, panicked: &panicked}
	})
	h.Logger = logs.logger()
	h.IdleTimeout = -1
	var beforeConnectPanics atomic.Int32
	h.BeforeConnect = func(r *http.Request, _, room string) (*http.Request, error) {
		if room == "BeforeConnect" && beforeConnectPanics.Add(1) == 1 {
			panic("BeforeConnect exploded")
		}
		return nil, nil
	}
	httpLogs := &logBuffer{}
	ws, srv := serveWith(t, h, false, func(s *http.Server) { s.ErrorLog = log.New(httpLogs, "", 0) })

	// A bystander in another room sees nothing of any of it.
	far := dial(t, ws+"/party/far?_pk=far")
	defer far.close()
	farReader := startReader(far.conn)

	// join puts a bystander in room.
	join := func(t *testing.T, room string) (*client, *reader) {
		b := dial(t, ws+"/party/"+room+"?_pk=bystander")
		return b, startReader(b.conn)
	}
	logged := func(t *testing.T, handler string) {
		t.Helper()
		eventually(t, handler+" panic in the log", func() bool {
			l := logs.String()
			return strings.Contains(l, handler+" exploded") && strings.Contains(l, "handler panicked")
		})
	}

	t.Run("factory", func(t *testing.T) {
		c := dial(t, ws+"/party/factory?_pk=victim")
		if ce := c.closed(); ce.Code != websocket.StatusInternalError || !strings.Contains(ce.Reason, "factory exploded") {
			t.Errorf("victim got %v, want 1011 naming the panic", ce)
		}
		logged(t, "factory")
		b, br := join(t, "factory") // the next request builds the Server again
		defer b.close()
		b.send("works")
		br.expect(t, "works")
	})
	t.Run("OnStart", func(t *testing.T) {
		c := dial(t, ws+"/party/OnStart?_pk=victim")
		if ce := c.closed(); ce.Code != websocket.StatusInternalError || !strings.Contains(ce.Reason, "OnStart exploded") {
			t.Errorf("victim got %v, want 1011 naming the panic", ce)
		}
		logged(t, "OnStart")
		b, br := join(t, "OnStart") // OnStart runs again, and succeeds
		defer b.close()
		b.send("works")
		br.expect(t, "works")
	})
	t.Run("ConnectionTags", func(t *testing.T) {
		b, br := join(t, "ConnectionTags")
		defer b.close()
		c := dial(t, ws+"/party/ConnectionTags?_pk=victim")
		if ce := c.closed(); ce.Code != websocket.StatusInternalError || !strings.Contains(ce.Reason, "ConnectionTags exploded") {
			t.Errorf("victim got %v, want 1011 naming the panic", ce)
		}
		logged(t, "ConnectionTags")
		b.send("works")
		br.expect(t, "works")
		if closes.has("victim 1011") {
			t.Error("OnClose ran for a connection that never joined")
		}
	})
	t.Run("OnConnect", func(t *testing.T) {
		b, br := join(t, "OnConnect")
		defer b.close()
		c := dial(t, ws+"/party/OnConnect?_pk=victim")
		if ce := c.closed(); ce.Code != websocket.StatusInternalError || !strings.Contains(ce.Reason, "OnConnect exploded") {
			t.Errorf("victim got %v, want 1011 naming the panic", ce)
		}
		logged(t, "OnConnect")
		eventually(t, "the victim's OnClose", func() bool { return closes.has("victim 1011") })
		b.send("works")
		br.expect(t, "works")
	})
	t.Run("OnMessage", func(t *testing.T) {
		b, br := join(t, "OnMessage")
		defer b.close()
		c := dial(t, ws+"/party/OnMessage?_pk=victim")
		defer c.close()
		vr := startReader(c.conn)
		joined(t, h, "OnMessage", 2)
		c.send("boom")
		c.send("after")
		vr.expect(t, "after") // the victim's connection stays open
		br.expect(t, "after")
		logged(t, "OnMessage")
		if !errs.has("victim: party: handler panicked: OnMessage: OnMessage exploded") {
			t.Errorf("OnError saw %q, want the OnMessage panic", errs.list())
		}
	})
	t.Run("OnClose", func(t *testing.T) {
		b, br := join(t, "OnClose")
		defer b.close()
		c := dial(t, ws+"/party/OnClose?_pk=victim")
		c.close()
		logged(t, "OnClose")
		eventually(t, "OnError to see the OnClose panic", func() bool {
			return errs.has("victim: party: handler panicked: OnClose: OnClose exploded")
		})
		b.send("works")
		br.expect(t, "works")
		again := dial(t, ws+"/party/OnClose?_pk=victim") // the room takes new connections
		defer again.close()
		joined(t, h, "OnClose", 2)
		again.send("again")
		br.expect(t, "again")
	})
	t.Run("OnError", func(t *testing.T) {
		b, br := join(t, "OnError")
		defer b.close()
		c := dial(t, ws+"/party/OnError?_pk=victim")
		c.conn.Write(context.Background(), websocket.MessageText, []byte{0xff}) // invalid UTF-8: an error for OnError
		if ce := c.closed(); ce.Code != websocket.StatusInvalidFramePayloadData {
			t.Errorf("victim got %v, want 1007", ce)
		}
		logged(t, "OnError")
		eventually(t, "the victim's OnClose after the OnError panic", func() bool { return closes.has("victim 1007") })
		b.send("works")
		br.expect(t, "works")
	})
	t.Run("OnRequest", func(t *testing.T) {
		b, br := join(t, "OnRequest")
		defer b.close()
		if body, status := get(t, srv.URL+"/party/OnRequest"); status != 500 || !strings.Contains(body, "internal error") {
			t.Errorf("panicking OnRequest answered %d %q, want 500", status, body)
		}
		logged(t, "OnRequest")
		if body, status := get(t, srv.URL+"/party/OnRequest"); status != 200 || body != "fine" {
			t.Errorf("next request answered %d %q, want 200 fine", status, body)
		}
		b.send("works")
		br.expect(t, "works")
	})
	t.Run("OnAlarm", func(t *testing.T) {
		b, br := join(t, "OnAlarm")
		defer b.close()
		b.send("alarm")
		logged(t, "OnAlarm")
		b.send("alarm") // the next alarm rings normally
		br.expect(t, "alarm rang")
		b.send("works")
		br.expect(t, "works")
	})
	t.Run("BeforeConnect", func(t *testing.T) {
		// Not a room handler: net/http recovers it and drops the request.
		if _, err := dialErr(ws+"/party/BeforeConnect?_pk=victim", nil); err == nil {
			t.Error("the handshake whose BeforeConnect panicked succeeded")
		}
		if !strings.Contains(httpLogs.String(), "BeforeConnect exploded") {
			t.Errorf("http.Server log %q lacks the panic", httpLogs.String())
		}
		b, br := join(t, "BeforeConnect")
		defer b.close()
		b.send("works")
		br.expect(t, "works")
	})

	far.send("far away")
	farReader.expect(t, "far away")
	select {
	case m := <-farReader.msgs:
		t.Errorf("the bystander in another room got %q", m)
	default:
	}
	far.close()
	// Nothing was left behind: Shutdown finds nothing running.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown after the panics: %v", err)
	}
	srv.Close()
	leaks.check(t)
}

// An OnMessage that blocks for seconds holds up its own room only: other
// rooms chat, join, leave and answer HTTP meanwhile; its own room still
// receives broadcasts from outside its handlers, keeps its connections
// (keepalive does not drop the busy ones) and handles the waiting messages,
// in order, once the handler returns.
func TestBlockingOnMessageDelaysOnlyItsRoom(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var closes sync.Map
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{
			connect: func(c *party.Connection, _ *http.Request) { c.Send(party.Text("welcome")) },
			message: func(m party.Message, c *party.Connection) {
				if m.String() == "block" {
					close(entered)
					<-release
				}
				r.Broadcast(m)
			},
			close: func(c *party.Connection) { closes.Store(c.Room().ID()+"/"+c.ID(), true) },
		}
	})
	h.PingInterval, h.PingTimeout = 100*time.Millisecond, 100*time.Millisecond
	ws, srv := serve(t, h)

	blocker := dial(t, ws+"/party/slow?_pk=blocker")
	defer blocker.close()
	br := startReader(blocker.conn)
	br.expect(t, "welcome")
	waiter := dial(t, ws+"/party/slow?_pk=waiter")
	defer waiter.close()
	wr := startReader(waiter.conn)
	wr.expect(t, "welcome")

	blocker.send("block")
	<-entered
	blockedAt := time.Now()
	waiter.send("queued 1")
	waiter.send("queued 2")

	// Other rooms are not held up.
	for i := range 5 {
		c := dial(t, fmt.Sprintf("%s/party/fast%d", ws, i))
		r := startReader(c.conn)
		r.expect(t, "welcome")
		for j := range 20 {
			c.send(fmt.Sprint("msg ", j))
			r.expect(t, fmt.Sprint("msg ", j))
		}
		c.close()
	}
	if _, status := get(t, srv.URL+"/party/fast0"); status != http.StatusUpgradeRequired {
		t.Errorf("HTTP to another room = %d, want its 426", status)
	}
	// Its own room still takes broadcasts from outside its handlers.
	h.Room("main", "slow").Broadcast(party.Text("from outside"))
	br.expect(t, "from outside")
	wr.expect(t, "from outside")

	for time.Since(blockedAt) < 2*time.Second { // block for seconds: many keepalive rounds
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case m := <-wr.msgs:
		t.Fatalf("the blocked room handled %q while its handler was blocked", m)
	default:
	}
	close(release)
	for _, r := range []*reader{br, wr} {
		r.expect(t, "block")
		r.expect(t, "queued 1")
		r.expect(t, "queued 2")
	}
	for _, id := range []string{"slow/blocker", "slow/waiter"} {
		if _, ok := closes.Load(id); ok {
			t.Errorf("%s was dropped while its room was busy", id)
		}
	}
	t.Logf("room blocked for %v; 5 other rooms did 100 round trips, 5 joins and leaves, one HTTP request meanwhile", time.Since(blockedAt).Round(time.Millisecond))
}

// ---- shutdown under load ---------------------------------------------------

// Shutdown while 1,000 clients are sending: every client gets 1012 after
// every message that Broadcast accepted for it before Shutdown began, every
// OnClose runs once, and nothing is left running.
func TestShutdownUnderLoad(t *testing.T) {
	leaks := startLeakCheck(t)
	holdGC(t)
	const nrooms, perRoom = 100, 10
	const nclients = nrooms * perRoom
	var (
		began    atomic.Bool
		handled  atomic.Int64
		closes   sync.Map // *party.Connection -> count
		acceptMu sync.Mutex
		accepted = map[string][]string{} // room -> messages broadcast before Shutdown began
	)
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{
			message: func(m party.Message, c *party.Connection) {
				r.Broadcast(m)
				handled.Add(1)
				if !began.Load() { // the whole Broadcast happened before Shutdown began
					acceptMu.Lock()
					accepted[r.ID()] = append(accepted[r.ID()], m.String())
					acceptMu.Unlock()
				}
			},
			close: func(c *party.Connection) {
				v, _ := closes.LoadOrStore(c, new(atomic.Int32))
				v.(*atomic.Int32).Add(1)
			},
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	srv := httptest.NewServer(mux)
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")

	type loadClient struct {
		room     string
		id       string
		conn     *websocket.Conn
		received map[string]bool
		status   websocket.StatusCode
		readErr  error
		done     chan struct{}
	}
	clients := make([]*loadClient, nclients)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			lc := &loadClient{room: fmt.Sprint("r", i%nrooms), id: fmt.Sprint("c", i), received: map[string]bool{}, done: make(chan struct{})}
			conn, err := dialErr(fmt.Sprintf("%s/party/%s?_pk=%s", ws, lc.room, lc.id), nil)
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			lc.conn = conn
			clients[i] = lc
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	eventually(t, "every client to join", func() bool {
		for i := range nrooms {
			if r := h.Room("main", fmt.Sprint("r", i)); r == nil || r.ConnectionCount() != perRoom {
				return false
			}
		}
		return true
	})

	// Each client sends, waits for its own message to come back, and sends
	// again, until its connection closes.
	for _, lc := range clients {
		acks := make(chan struct{}, 1)
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(lc.done)
			for {
				_, b, err := lc.conn.Read(context.Background())
				if err != nil {
					lc.readErr, lc.status = err, websocket.CloseStatus(err)
					return
				}
				m := string(b)
				lc.received[m] = true
				if strings.HasPrefix(m, lc.id+" ") {
					select {
					case acks <- struct{}{}:
					default:
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				if err := lc.conn.Write(context.Background(), websocket.MessageText, []byte(fmt.Sprint(lc.id, " ", seq))); err != nil {
					return
				}
				select {
				case <-acks:
				case <-lc.done:
					return
				}
			}
		}()
	}
	for deadline := time.Now().Add(30 * time.Second); handled.Load() < 5*nclients; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages handled", handled.Load())
		}
	}
	// Meanwhile more clients keep arriving: each is refused with 503 or
	// joins and gets 1012 like the others.
	shutdownDone := make(chan struct{})
	var late, lateRefused atomic.Int32
	var lateWG sync.WaitGroup
	for i := range 10 {
		lateWG.Add(1)
		go func() {
			defer lateWG.Done()
			for j := 0; ; j++ {
				select {
				case <-shutdownDone:
					return
				default:
				}
				conn, err := dialErr(fmt.Sprintf("%s/party/r%d?_pk=late%d-%d", ws, j%nrooms, i, j), nil)
				var de *dialError
				if errors.As(err, &de) && de.status == 503 {
					lateRefused.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("late client: %v", err)
					return
				}
				late.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				for {
					if _, _, err = conn.Read(ctx); err != nil {
						break
					}
				}
				cancel()
				if websocket.CloseStatus(err) != websocket.StatusServiceRestart {
					t.Errorf("late client ended with %v, want 1012", err)
				}
			}
		}()
	}
	eventually(t, "late clients to arrive", func() bool { return late.Load() >= 10 })

	began.Store(true)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	took := time.Since(start)
	close(shutdownDone)
	lateWG.Wait()
	wg.Wait()

	acceptMu.Lock()
	defer acceptMu.Unlock()
	var total, missing int
	for _, lc := range clients {
		if lc.status != websocket.StatusServiceRestart {
			t.Errorf("%s ended with %v, want 1012", lc.id, lc.readErr)
		}
		for _, m := range accepted[lc.room] {
			total++
			if !lc.received[m] {
				missing++
				if missing <= 5 {
					t.Errorf("%s never got %q, broadcast before Shutdown began", lc.id, m)
				}
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d deliveries accepted before Shutdown were lost", missing, total)
	}
	n := 0
	closes.Range(func(k, v any) bool {
		n++
		if c := v.(*atomic.Int32).Load(); c != 1 {
			t.Errorf("OnClose ran %d times for %s", c, k.(*party.Connection).ID())
		}
		return true
	})
	if want := nclients + int(late.Load()); n != want {
		t.Errorf("OnClose ran for %d connections, want %d", n, want)
	}
	t.Logf("Shutdown with %d clients sending took %v; %d messages handled, %d deliveries accepted before it began, all received before the 1012; clients arriving meanwhile: %d joined and got 1012, %d refused with 503",
		nclients, took.Round(time.Millisecond), handled.Load(), total, late.Load(), lateRefused.Load())
	srv.Close()
	leaks.check(t)
}

// ---- a close that crosses pending writes -------------------------------------

// Regression: a client that sends messages and closes at once has its close
// code reach OnClose, not "1006 write failed". The server's echoes were
// still being written when coder/websocket answered the close frame; the
// next write failed, and that failure was recorded as the connection's
// status first (in about 1 run in 8), with a spurious OnError. The same went
// for a message over the read limit (1009) arriving behind others.
func TestCloseStatusWhileWriting(t *testing.T) {
	var closes sync.Map
	var errs events
	h := party.Handler(func(*party.Room) party.Server {
		return &probe{
			message: func(m party.Message, c *party.Connection) { c.Send(m) },
			close: func(c *party.Connection) {
				code, reason := c.CloseStatus()
				closes.Store(c.ID(), fmt.Sprint(code, " ", reason))
			},
			error: func(c *party.Connection, err error) { errs.add(c.ID() + ": " + err.Error()) },
		}
	})
	h.ReadLimit = 1024
	_, srv := serve(t, h)
	tests := []struct {
		name    string
		last    []byte // the frame after 20 messages
		want    string
		wantErr string // what OnError must see, if anything
	}{
		{"client close", appendFrame(nil, true, opClose, closePayload(4001, "bye")), "4001 bye", ""},
		{"over the read limit", appendFrame(nil, true, opBinary, make([]byte, 2048)), "1009 message too big", "message too big"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrong := map[string]int{}
			const runs = 200
			for i := range runs {
				id := fmt.Sprint(tt.name, i)
				c, err := rawDial(srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				if err := c.upgrade("/party/crossing?_pk=" + url.QueryEscape(id)); err != nil {
					t.Fatal(err)
				}
				var program []byte
				for range 20 {
					program = appendFrame(program, true, opText, []byte("a message to echo"))
				}
				c.Write(append(program, tt.last...))
				go func() { // read, answer the server's close, until the end
					c.SetDeadline(time.Now().Add(10 * time.Second))
					for {
						_, op, p, err := c.readFrame()
						if err != nil {
							c.Close()
							return
						}
						if op == opClose {
							c.writeFrame(true, opClose, p)
						}
					}
				}()
				deadline := time.Now().Add(10 * time.Second)
				for {
					if v, ok := closes.Load(id); ok {
						if v != tt.want {
							wrong[v.(string)]++
						}
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: OnClose did not run", id)
					}
					time.Sleep(time.Millisecond)
				}
			}
			if len(wrong) > 0 {
				t.Errorf("OnClose saw %v in %d runs, want %q every time", wrong, runs, tt.want)
			}
			for _, e := range errs.list() {
				if strings.HasPrefix(e, tt.name) && (tt.wantErr == "" || !strings.Contains(e, tt.wantErr)) {
					t.Errorf("OnError saw %q", e)
					break
				}
			}
		})
	}
}

// ---- a message cut short by the end of the stream ------------------------------

// Regression: a message whose connection ends inside it is not handed to
// OnMessage. coder/websocket's reader turns the io.EOF met at a frame
// boundary (or before the first byte of a frame's payload) into the end of
// the message, so a client that sent one fragment, or one frame header, and
// then disconnected had a truncated message (or an empty one) delivered as
// if complete.
func TestTruncatedMessageIsNotDelivered(t *testing.T) {
	var sink events
	var closes sync.Map
	h := party.Handler(func(*party.Room) party.Server {
		return &probe{
			message: func(m party.Message, c *party.Connection) { sink.add(c.ID() + ": " + m.String()) },
			close: func(c *party.Connection) {
				code, reason := c.CloseStatus()
				closes.Store(c.ID(), fmt.Sprint(code, " ", reason))
			},
		}
	})
	_, srv := serve(t, h)
	header := func(fin bool, op byte, claimed int) []byte { // a frame header whose payload never comes
		return appendFrame(nil, fin, op, nil, frameQuirks{claimed: claimed})
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	complete := appendFrame(nil, true, opText, []byte("complete"))
	tests := []struct {
		name    string
		program []byte
	}{
		{"a fragment, then the end", cat(complete, appendFrame(nil, false, opText, []byte(`{"partial": tr`)))},
		{"a fragment, then a header", cat(complete, appendFrame(nil, false, opText, []byte(`{"partial": tr`)), header(true, opCont, 10))},
		{"a fragment, then a ping header", cat(complete, appendFrame(nil, false, opText, []byte(`{"partial": tr`)), header(true, opPing, 4))},
		{"a header only", cat(complete, header(true, opText, 10))},
		{"a binary header only", cat(complete, header(true, opBinary, 300))},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprint("t", i)
			c, err := rawDial(srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.upgrade("/party/cut?_pk=" + id); err != nil {
				t.Fatal(err)
			}
			c.Write(tt.program)
			c.Conn.(*net.TCPConn).CloseWrite()
			eventually(t, "OnClose", func() bool { _, ok := closes.Load(id); return ok })
			if v, _ := closes.Load(id); v != "1006 " {
				t.Errorf("OnClose saw %q, want 1006", v)
			}
			var got []string
			for _, e := range sink.list() {
				if strings.HasPrefix(e, id+": ") {
					got = append(got, strings.TrimPrefix(e, id+": "))
				}
			}
			if len(got) != 1 || got[0] != "complete" {
				t.Errorf("OnMessage saw %q, want only the complete message", got)
			}
		})
	}
}

// ---- a deadline on Shutdown with a client that does not read ----------------------

// Regression: when Shutdown's ctx ends first, the connections still open are
// dropped at once, as documented, and Shutdown returns. A client that had
// stopped reading held it for 5 more seconds: the drop still attempted a
// close handshake, and waited for an answer that could not come. Two such
// clients are dropped here, each in a state the test observes first: one
// whose writer is blocked (the kernel will take no more of its bytes), one
// whose writer is done (it read its message, then stopped reading).
func TestShutdownDeadlineWithStalledClient(t *testing.T) {
	leaks := startLeakCheck(t)
	holdGC(t)
	var closes sync.Map
	h := party.Handler(func(*party.Room) party.Server { return &echo{closes: &closes} })
	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	// The socket buffers are fixed small on both sides of the stalled
	// client's connection: left to the kernel's autotuning they take about
	// 4 MiB on loopback (all of the 3 MiB below, on a Linux 6.18 machine),
	// and then nothing blocks.
	const buffers = 64 << 10
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(c net.Conn, state http.ConnState) {
		if tc, ok := c.(*net.TCPConn); ok && state == http.StateNew {
			tc.SetWriteBuffer(buffers)
		}
	}
	srv.Start()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	smallReads := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := new(net.Dialer).DialContext(ctx, network, addr)
		if err == nil {
			c.(*net.TCPConn).SetReadBuffer(buffers)
		}
		return c, err
	}}
	conn, err := dialErr(ws+"/party/s?_pk=stalled", &websocket.DialOptions{HTTPClient: &http.Client{Transport: smallReads}})
	if err != nil {
		t.Fatal(err)
	}
	stalled := &client{t: t, conn: conn} // never reads
	defer stalled.conn.CloseNow()
	silent := dial(t, ws+"/party/s?_pk=silent") // reads one message, then nothing
	defer silent.conn.CloseNow()
	reader := dial(t, ws+"/party/s?_pk=reader")
	rd := startReader(reader.conn)
	joined(t, h, "s", 3)
	room := h.Room("main", "s")
	room.GetConnection("silent").Send(party.Text("the last one you read"))
	silent.expect("the last one you read") // its writer has nothing left to write
	c := room.GetConnection("stalled")
	for range 3 { // far more than the socket buffers take: the writer blocks
		c.Send(party.Binary(make([]byte, 1<<20)))
	}
	// Observed: the stalled client's writer is parked in Go's network
	// poller, waiting for the kernel to take more of its bytes (the
	// client's receive buffer and the server's send buffer are full).
	eventually(t, "the server's writer to block in a write to the stalled client", func() bool {
		return len(blockedServerWrites()) == 1
	})

	const grace = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- h.Shutdown(ctx) }()
	err = receive(t, shut, "Shutdown to return")
	took := time.Since(start)
	t.Logf("Shutdown with two clients that do not read and a %v deadline returned %v after %v", grace, err, took.Round(time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown returned %v, want the deadline", err)
	}
	if took > grace+2*time.Second {
		t.Errorf("Shutdown returned %v after its deadline, want at once", took-grace)
	}
	if err := receive(t, rd.done, "the reading client's end"); websocket.CloseStatus(err) != websocket.StatusServiceRestart {
		t.Errorf("the reading client ended with %v, want 1012", err)
	}
	for _, id := range []string{"stalled", "silent", "reader"} {
		if v, ok := closes.Load(id); !ok || !strings.HasPrefix(v.(string), "1012 ") {
			t.Errorf("OnClose for %s: %v, want 1012", id, v)
		}
	}
	srv.Close()
	stalled.conn.CloseNow()
	silent.conn.CloseNow()
	leaks.check(t)
}

// blockedServerWrites returns the stacks of the goroutines of package party
// (or its internal packages) that wait in Go's network poller for a socket
// to take more bytes: writes the kernel will not take until the peer reads.
func blockedServerWrites() []string {
	var blocked []string
	for _, stack := range goroutineStacks() {
		if strings.Contains(stack, "internal/poll.(*pollDesc).waitWrite") && serverFrame.MatchString(stack) {
			blocked = append(blocked, stack)
		}
	}
	return blocked
}

// serverFrame matches a stack frame of package party or of its internal
// packages (not of party_test).
var serverFrame = regexp.MustCompile(`(?m)^party[./]`)

// ---- a slow upload and the keepalive ---------------------------------------------------

// Regression: a client uploading one large frame slowly is alive, and the
// keepalive leaves it be, even when a ping came just before the upload and
// its pong waits behind the frame (browsers send each message as one frame).
// Its bytes did not count as signs of life, so it was dropped as "keepalive
// timeout" after PingInterval+PingTimeout: with the defaults, any message
// taking more than about 40 s to arrive. A client that then goes quiet is
// still found.
func TestSlowUploadIsNotDroppedByKeepalive(t *testing.T) {
	var closes sync.Map
	h := party.Handler(func(*party.Room) party.Server { return &echo{closes: &closes} })
	h.PingInterval, h.PingTimeout = 200*time.Millisecond, 200*time.Millisecond
	_, srv := serve(t, h)
	c, err := rawDial(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.upgrade("/party/upload?_pk=up"); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, op, ping, err := c.readFrame() // the client is silent at first: a ping comes
	if err != nil || op != opPing {
		t.Fatalf("got opcode %d, %v; want a ping", op, err)
	}
	// The upload starts before the pong, which waits behind the frame.
	frame := appendFrame(nil, true, opBinary, make([]byte, 64<<10))
	start := time.Now()
	for i := 0; i < len(frame); i += 1024 { // about 2 s, ten times PingInterval+PingTimeout
		if _, err := c.Write(frame[i:min(i+1024, len(frame))]); err != nil {
			t.Fatalf("upload failed after %v: %v", time.Since(start), err)
		}
		time.Sleep(30 * time.Millisecond)
		if v, ok := closes.Load("up"); ok {
			t.Fatalf("dropped after %v while uploading: %v", time.Since(start), v)
		}
	}
	c.writeFrame(true, opPong, ping)
	for {
		_, op, p, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if op == opBinary {
			if len(p) != 64<<10 {
				t.Fatalf("echo of %d bytes, want %d", len(p), 64<<10)
			}
			break
		}
	}
	t.Logf("a 64 KiB frame uploaded over %v with PingInterval and PingTimeout at 200ms was kept", time.Since(start).Round(time.Millisecond))
	// Quiet now, and answering no ping: found within 2×PingInterval+PingTimeout.
	quiet := time.Now()
	eventually(t, "the quiet client to be dropped", func() bool { _, ok := closes.Load("up"); return ok })
	if v, _ := closes.Load("up"); v != "1006 keepalive timeout" {
		t.Errorf("OnClose saw %q, want 1006 keepalive timeout", v)
	}
	t.Logf("then quiet, found after %v", time.Since(quiet).Round(time.Millisecond))
}
