package party_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
)

// The helpers every test file shares. A helper one file alone uses stays in
// that file; the guide's Chat server stays in example_test.go, where
// Example shows it.

// ---- servers ----------------------------------------------------------------

// serve mounts h on both URL forms of a real HTTP server and returns its
// ws:// base URL.
func serve(t *testing.T, h *party.Host) (wsURL string, srv *httptest.Server) {
	return serveWith(t, h, false, nil)
}

// serveWith is serve over TLS (a wss:// URL; dial with srv.Client()) if tls
// is set, with a chance to configure the http.Server before it starts
// (timeouts, ErrorLog) if configure is not nil.
func serveWith(t *testing.T, h *party.Host, tls bool, configure func(*http.Server)) (wsURL string, srv *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	mux.Handle("/parties/", h)
	srv = httptest.NewUnstartedServer(mux)
	if configure != nil {
		configure(srv.Config)
	}
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http"), srv
}

// get makes a plain HTTP GET and returns the body and status.
func get(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// ---- clients ----------------------------------------------------------------

// client is a real WebSocket client with bounded reads.
type client struct {
	t    *testing.T
	conn *websocket.Conn
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	c, err := dialErr(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return &client{t: t, conn: c}
}

// mustDial is dial for a goroutine other than the test's: on failure it
// reports the error and ends the goroutine.
func mustDial(t *testing.T, url string) *websocket.Conn {
	c, err := dialErr(url, nil)
	if err != nil {
		t.Errorf("dial %s: %v", url, err)
		runtime.Goexit()
	}
	return c
}

func dialErr(url string, opts *websocket.DialOptions) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil && resp != nil && resp.Body != nil {
		body, _ := io.ReadAll(resp.Body)
		return nil, &dialError{status: resp.StatusCode, body: string(body), err: err}
	}
	if c != nil {
		c.SetReadLimit(64 << 20)
	}
	return c, err
}

type dialError struct {
	status int
	body   string
	err    error
}

func (e *dialError) Error() string { return e.err.Error() + ": " + e.body }

// read returns the next message, failing the test after 5 seconds.
func (c *client) read() (websocket.MessageType, []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return typ, b
}

func (c *client) readText() string {
	c.t.Helper()
	typ, b := c.read()
	if typ != websocket.MessageText {
		c.t.Fatalf("got a %v message %q, want text", typ, b)
	}
	return string(b)
}

func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.readText(); got != want {
		c.t.Fatalf("got message %q, want %q", got, want)
	}
}

func (c *client) send(s string) {
	c.t.Helper()
	if err := c.conn.Write(context.Background(), websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// closed reads until the connection ends and returns the close frame the
// server sent.
func (c *client) closed() websocket.CloseError {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.conn.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce
	}
}

func (c *client) close() { c.conn.Close(websocket.StatusNormalClosure, "") }

// silent asserts that no message arrives within d.
func (c *client) silent(d time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if _, b, err := c.conn.Read(ctx); err == nil {
		c.t.Fatalf("got unexpected message %q", b)
	}
}

// roundTripOK checks that c still gets its own messages back.
func roundTripOK(t *testing.T, c *client, what string) {
	t.Helper()
	c.send(what)
	c.expect(what)
}

// ---- raw sockets and frames -------------------------------------------------

// rawConn is the hand-driven WebSocket client: it writes exactly the bytes a
// test chooses, for handshakes and frames no well-behaved client sends.
// rawDial opens it; upgrade (a valid handshake) or roundTrip (any request)
// goes first; then writeFrame, or Write with frames from appendFrame.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func rawDial(addr string) (*rawConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: c, br: bufio.NewReaderSize(c, 256)}, nil
}

// upgradeRequest returns a valid WebSocket handshake for target.
func upgradeRequest(target string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// roundTrip writes raw and reads the HTTP response, within 5 seconds.
// For a 101 the body is empty and the connection stays usable for frames.
func (c *rawConn) roundTrip(raw string) (*http.Response, string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, raw); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, "", nil
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), nil
}

// upgrade performs a valid handshake for target and fails unless it is
// accepted.
func (c *rawConn) upgrade(target string) error {
	resp, body, err := c.roundTrip(upgradeRequest(target))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("handshake for %s: %s %q", target, resp.Status, body)
	}
	return nil
}

// WebSocket opcodes.
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// frameQuirks bend a client frame away from the protocol, for the tests of
// malformed input. The zero value bends nothing.
type frameQuirks struct {
	rsv      byte // RSV1-3 bits (0x70) to set
	unmasked bool // the payload goes unmasked
	longForm bool // the 16-bit length form although the length fits in 7 bits
	negative bool // the 64-bit length form with the top bit set
	claimed  int  // if > 0, the length the header claims in place of the payload's
}

// appendFrame appends one client frame to b: FIN, the opcode, and the
// payload masked with a fixed key, encoded as RFC 6455 asks unless quirks
// (at most one) say otherwise. It is the tests' only frame encoder.
func appendFrame(b []byte, fin bool, op byte, payload []byte, quirks ...frameQuirks) []byte {
	var q frameQuirks
	if len(quirks) > 0 {
		q = quirks[0]
	}
	b0 := op&0x0f | q.rsv&0x70
	if fin {
		b0 |= 0x80
	}
	b = append(b, b0)
	mask := byte(0x80)
	if q.unmasked {
		mask = 0
	}
	n := len(payload)
	if q.claimed > 0 {
		n = q.claimed
	}
	switch {
	case q.negative:
		b = append(b, mask|127)
		b = binary.BigEndian.AppendUint64(b, 1<<63|uint64(n))
	case n < 126 && !q.longForm:
		b = append(b, mask|byte(n))
	case n <= 0xffff:
		b = append(b, mask|126, byte(n>>8), byte(n))
	default:
		b = append(b, mask|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if q.unmasked {
		return append(b, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i, p := range payload {
		b = append(b, p^key[i%4])
	}
	return b
}

func (c *rawConn) writeFrame(fin bool, op byte, payload []byte) error {
	_, err := c.Write(appendFrame(nil, fin, op, payload))
	return err
}

// closePayload is the payload of a close frame: the code, then the reason.
func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// readFrame reads one server frame (servers do not mask).
func (c *rawConn) readFrame() (fin bool, op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err = io.ReadFull(c.br, hdr[:]); err != nil {
		return
	}
	fin, op = hdr[0]&0x80 != 0, hdr[0]&0x0f
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err = io.ReadFull(c.br, ext[:]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err = io.ReadFull(c.br, ext[:]); err != nil {
			return
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if hdr[1]&0x80 != 0 || n > 64<<20 {
		return fin, op, nil, fmt.Errorf("bad server frame header %x (length %d)", hdr, n)
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(c.br, payload)
	return
}

// closeNormally performs the client side of a close handshake and then
// resets the TCP connection, so that no TIME_WAIT socket is left behind (a
// test that opens tens of thousands of connections would otherwise run out
// of ephemeral ports).
func (c *rawConn) closeNormally() error {
	defer c.reset()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.writeFrame(true, opClose, closePayload(1000, "")); err != nil {
		return err
	}
	for {
		_, op, _, err := c.readFrame()
		if err != nil {
			return fmt.Errorf("waiting for the close echo: %w", err)
		}
		if op == opClose {
			return nil
		}
	}
}

// reset closes the connection with a TCP reset.
func (c *rawConn) reset() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// ---- servers used as fixtures -------------------------------------------------

// probe is a Server whose handlers a test fills in.
type probe struct {
	room    *party.Room
	start   func() error
	connect func(c *party.Connection, r *http.Request)
	message func(m party.Message, c *party.Connection)
	close   func(c *party.Connection)
	error   func(c *party.Connection, err error)
}

func (p *probe) OnStart() error {
	if p.start != nil {
		return p.start()
	}
	return nil
}

func (p *probe) OnConnect(c *party.Connection, r *http.Request) {
	if p.connect != nil {
		p.connect(c, r)
	}
}

func (p *probe) OnMessage(m party.Message, c *party.Connection) {
	if p.message != nil {
		p.message(m, c)
	}
}

func (p *probe) OnClose(c *party.Connection) {
	if p.close != nil {
		p.close(c)
	}
}

func (p *probe) OnError(c *party.Connection, err error) {
	if p.error != nil {
		p.error(c, err)
	}
}

// whoami answers every connection and request with its party and room id.
type whoami struct{ room *party.Room }

func (s *whoami) OnConnect(c *party.Connection, r *http.Request) {
	c.Send(party.Text(s.room.Party() + " " + s.room.ID() + " " + c.ID()))
}

func (s *whoami) OnRequest(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%s %s", s.room.Party(), s.room.ID())
}

// echo is a Server that sends every message back to its sender and records
// closes.
type echo struct {
	closes *sync.Map // id -> "code reason"
}

func (s *echo) OnMessage(m party.Message, c *party.Connection) { c.Send(m) }

func (s *echo) OnClose(c *party.Connection) {
	if s.closes != nil {
		code, reason := c.CloseStatus()
		s.closes.Store(c.ID(), fmt.Sprint(code, " ", reason))
	}
}

// newChat builds the guide's Chat server (example_test.go) for a room.
func newChat(r *party.Room) party.Server { return &Chat{room: r} }

// events records what a server saw, in order, safely across goroutines.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

func (e *events) has(s string) bool {
	for _, l := range e.list() {
		if l == s {
			return true
		}
	}
	return false
}

// ---- waiting and polling ------------------------------------------------------

// eventually polls cond until it holds, failing after 5 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receive returns the next value from ch, failing the test after 10 seconds.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// ---- leaks ---------------------------------------------------------------------

// leakBaseline is what a test found running and open when it began: the
// goroutines, by id, and, on Linux, the open file descriptors, by number and
// what each points at. Ids are never reused, so a goroutine of an earlier
// test that ends meanwhile cannot hide one this test leaks; a descriptor
// number can be reused, but not with the same socket inode or path.
type leakBaseline struct {
	goroutines map[string]bool   // "goroutine 17"
	fds        map[string]string // "fd 9" -> "socket:[123]"; nil where /proc/self/fd is not available
}

// startLeakCheck waits (up to 5 seconds) for the goroutine count to stop
// falling, so that what earlier tests left behind has wound down, and then
// takes the baseline. Call it before the test starts its servers; call
// check once they are closed.
func startLeakCheck(t *testing.T) *leakBaseline {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	last, steady := runtime.NumGoroutine(), 0
	for steady < 5 { // not one fewer over 5 samples 10 ms apart
		if time.Now().After(deadline) {
			t.Logf("the goroutine count was still falling after 5 s (%d now); baseline taken anyway", last)
			break
		}
		time.Sleep(10 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n < last {
			steady = 0
		} else {
			steady++
		}
		last = n
	}
	// The runtime opens its network poller's descriptors at the first
	// listen and keeps them: open them now, so they are in the baseline.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	b := &leakBaseline{goroutines: map[string]bool{}, fds: openFDs()}
	for id := range goroutineStacks() {
		b.goroutines[id] = true
	}
	if b.fds == nil {
		t.Logf("no /proc/self/fd on %s: descriptors are not counted, only goroutines", runtime.GOOS)
	}
	return b
}

// holdGC turns automatic garbage collection off until the test ends, unless
// the process grows by 256 MiB: a socket that the code under test forgot to
// close is otherwise closed by its finalizer at the next collection, which
// hides the leak from the descriptor check (TestNoLeaks's 2,000 connections
// make about 30 collections). Explicit runtime.GC calls still collect.
func holdGC(t *testing.T) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	percent := debug.SetGCPercent(-1)
	limit := debug.SetMemoryLimit(int64(m.Sys) + 256<<20)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}

// check fails the test unless, within 5 seconds, every goroutine started
// since the baseline has ended and every descriptor opened since is closed,
// except those of the listeners still open (a test server's). On failure
// it lists each leaked goroutine's stack and each descriptor's target.
func (b *leakBaseline) check(t *testing.T, open ...net.Listener) {
	t.Helper()
	b.wait(t, true, open)
}

// checkDescriptors is check for descriptors only, for a test whose servers
// still run (and whose goroutines therefore do too).
func (b *leakBaseline) checkDescriptors(t *testing.T, open ...net.Listener) {
	t.Helper()
	b.wait(t, false, open)
}

func (b *leakBaseline) wait(t *testing.T, goroutines bool, open []net.Listener) {
	t.Helper()
	keep := map[string]bool{}
	for _, ln := range open {
		if sc, ok := ln.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				rc.Control(func(fd uintptr) { keep[fmt.Sprint("fd ", fd)] = true })
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var leaked []string
		if goroutines {
			for id, stack := range goroutineStacks() {
				if !b.goroutines[id] {
					leaked = append(leaked, stack)
				}
			}
		}
		if b.fds != nil {
			for fd, target := range openFDs() {
				if b.fds[fd] != target && !keep[fd] {
					leaked = append(leaked, fd+" -> "+target)
				}
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			slices.Sort(leaked)
			t.Fatalf("%d goroutines or descriptors started during the test are still there 5 s after it ended:\n\n%s",
				len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goroutineStacks returns the stack of every goroutine, keyed by its
// "goroutine N" header.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if id, _, ok := strings.Cut(g, " ["); ok && strings.HasPrefix(id, "goroutine ") {
			stacks[id] = g
		}
	}
	return stacks
}

// openFDs returns this process's open descriptors and what each points at
// ("socket:[123]", a file's path), or nil without /proc/self/fd (not Linux).
func openFDs() map[string]string {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	fds := map[string]string{}
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		fds["fd "+e.Name()] = target
	}
	return fds
}

// ---- logs ---------------------------------------------------------------------

// logBuffer is a slog destination a test can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// ---- memory -------------------------------------------------------------------

// liveHeap returns the bytes of live heap objects, after a full collection.
func liveHeap() uint64 {
	heap, _ := liveMemory()
	return heap
}

// liveMemory returns the bytes of live heap objects, after a full
// collection, and of goroutine stacks.
func liveMemory() (heap, stacks uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}

func mib(b uint64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }
