package party_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
)

// serve mounts h on both URL forms of a real HTTP server and returns its
// ws:// base URL.
func serve(t *testing.T, h *party.Host) (wsURL string, srv *httptest.Server) {
	return serveOn(t, h, false)
}

// serveOn is serve, over TLS (a wss:// URL; dial with srv.Client()) if tls
// is set.
func serveOn(t *testing.T, h *party.Host, tls bool) (wsURL string, srv *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	mux.Handle("/parties/", h)
	srv = httptest.NewUnstartedServer(mux)
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

// eventually polls cond until it holds, failing after 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noGoroutineLeak fails if, after the test's cleanups, more goroutines run
// than before it started.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines left, want at most %d:\n%s", runtime.NumGoroutine(), before, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

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

func newChat(r *party.Room) party.Server { return &Chat{room: r} }
