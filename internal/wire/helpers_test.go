package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testTimeout bounds every wait in these tests; only a failing test waits
// that long.
const testTimeout = 5 * time.Second

// accepted is one connection the test server accepted with Accept.
type accepted struct {
	ws   *websocket.Conn
	sock *Socket
}

// server is a real HTTP server whose handler completes the handshake with
// Accept and hands the result to the test.
type server struct {
	*httptest.Server
	conns chan accepted
	errs  chan error
	log   *writeLog // the writes to the accepted connections; nil unless recording
}

// newServer starts a server. With record, every write to an accepted
// connection is logged (the connection is then not a *net.TCPConn, so the
// Socket cannot be waited on).
func newServer(t *testing.T, record bool) *server {
	t.Helper()
	s := &server{conns: make(chan accepted, 4), errs: make(chan error, 4)}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, sock, err := Accept(w, r, nil)
		if err != nil {
			s.errs <- err
			return
		}
		s.conns <- accepted{ws, sock}
	}))
	if record {
		s.log = &writeLog{}
		s.Listener = &recListener{Listener: s.Listener, log: s.log}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// accept waits for the server to accept a connection; it is closed when the
// test ends.
func (s *server) accept(t *testing.T) accepted {
	t.Helper()
	select {
	case a := <-s.conns:
		t.Cleanup(func() { closeNow(t, a.ws) })
		return a
	case err := <-s.errs:
		t.Fatalf("Accept failed: %v", err)
	case <-time.After(testTimeout):
		t.Fatalf("the server accepted no connection within %v", testTimeout)
	}
	return accepted{}
}

// dialWS connects coder/websocket's client to s, with no read limit.
func dialWS(t *testing.T, s *server, opts *websocket.DialOptions) (*websocket.Conn, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, s.URL, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { closeNow(t, c) })
	return c, resp
}

// closeNow calls ws.CloseNow, failing the test if it does not return
// within testTimeout.
func closeNow(t *testing.T, ws *websocket.Conn) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- ws.CloseNow() }()
	return recv(t, done, "return from CloseNow")
}

// rawClient is a client speaking WebSocket by hand over a TCP connection.
type rawClient struct {
	*net.TCPConn
	br *bufio.Reader
}

// dialRaw completes a handshake by hand, sending the extra header lines and
// then early (client frames) in the same write as the request.
func dialRaw(t *testing.T, s *server, extra string, early []byte) (*rawClient, *http.Response) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Listener.Addr().String(), testTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(testTimeout))
	req := "GET / HTTP/1.1\r\nHost: " + s.Listener.Addr().String() + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + extra + "\r\n"
	if _, err := conn.Write(append([]byte(req), early...)); err != nil {
		t.Fatalf("writing the handshake: %v", err)
	}
	c := &rawClient{TCPConn: conn.(*net.TCPConn), br: bufio.NewReader(conn)}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("reading the handshake's response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake answered %s", resp.Status)
	}
	return c, resp
}

// send writes frames to the server in one write.
func (c *rawClient) send(t *testing.T, frames ...[]byte) {
	t.Helper()
	if _, err := c.Write(bytes.Join(frames, nil)); err != nil {
		t.Fatalf("client write: %v", err)
	}
}

// readFrame reads one unmasked server frame.
func (c *rawClient) readFrame() (b0 byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&masked != 0 {
		return 0, nil, errors.New("the server masked a frame")
	}
	n := uint64(h[1])
	switch n {
	case 126, 127:
		ext := make([]byte, 2+6*(n-126))
		if _, err := io.ReadFull(c.br, ext); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext))
		if len(ext) == 8 {
			n = binary.BigEndian.Uint64(ext)
		}
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(c.br, payload)
	return h[0], payload, err
}

// mustReadFrame reads one server frame, failing the test on error.
func (c *rawClient) mustReadFrame(t *testing.T, what string) (byte, []byte) {
	t.Helper()
	b0, p, err := c.readFrame()
	if err != nil {
		t.Fatalf("the client, waiting for %s: %v", what, err)
	}
	return b0, p
}

// expectEOF checks that the server sent nothing more and closed.
func (c *rawClient) expectEOF(t *testing.T) {
	t.Helper()
	if b0, p, err := c.readFrame(); !errors.Is(err, io.EOF) {
		t.Fatalf("want the server to close the connection; got frame %#x %q, err %v", b0, p, err)
	}
}

var maskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// clientFrame builds one masked frame, as a client sends it, with first
// byte b0.
func clientFrame(b0 byte, payload []byte) []byte {
	f := []byte{b0, 0}
	switch n := len(payload); {
	case n < 126:
		f[1] = masked | byte(n)
	case n <= 0xffff:
		f[1] = masked | 126
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f[1] = masked | 127
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	f = append(f, maskKey[:]...)
	for i, b := range payload {
		f = append(f, b^maskKey[i%4])
	}
	return f
}

// closePayload is the payload of a close frame with code and reason.
func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// serverFrame is the frame a server sends: unmasked, one frame.
func serverFrame(b0 byte, payload []byte) []byte {
	var hdr [maxHeader]byte
	h := putHeader(&hdr, false, len(payload))
	hdr[0] = b0
	return append(hdr[:h:h], payload...)
}

// awaitReadable waits for s to have bytes, failing the test after
// testTimeout (the watchdog closes the socket, which frees WaitReadable).
func awaitReadable(t *testing.T, s *Socket, what string) {
	t.Helper()
	if !s.CanWait() {
		t.Skip("the socket cannot be waited on here (not Linux)")
	}
	timedOut := false
	var mu sync.Mutex
	watchdog := time.AfterFunc(testTimeout, func() {
		mu.Lock()
		timedOut = true
		mu.Unlock()
		s.Conn.Close()
	})
	ok := s.WaitReadable()
	watchdog.Stop()
	mu.Lock()
	defer mu.Unlock()
	if !ok || timedOut {
		t.Fatalf("waiting for %s: WaitReadable reported %v (timed out: %v)", what, ok, timedOut)
	}
}

type readResult struct {
	typ  websocket.MessageType
	data []byte
	err  error
}

// readAsync reads one message from ws on another goroutine.
func readAsync(ws *websocket.Conn) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		typ, data, err := ws.Read(ctx)
		ch <- readResult{typ, data, err}
	}()
	return ch
}

// recv waits for a value on ch, failing the test after testTimeout.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("no %s within %v", what, testTimeout)
	}
	var zero T
	return zero
}

// writeLog records the writes to a connection, each a copy.
type writeLog struct {
	mu     sync.Mutex
	writes [][]byte
}

func (l *writeLog) add(p []byte) {
	l.mu.Lock()
	l.writes = append(l.writes, bytes.Clone(p))
	l.mu.Unlock()
}

// frames returns the writes made after the handshake's response.
func (l *writeLog) frames() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, w := range l.writes {
		if !bytes.HasPrefix(w, []byte("HTTP/")) {
			out = append(out, w)
		}
	}
	return out
}

// sizes describes writes by their lengths and first bytes, for messages.
func sizes(writes [][]byte) string {
	var b strings.Builder
	for _, w := range writes {
		fmt.Fprintf(&b, "[%d bytes from %#x] ", len(w), w[0])
	}
	return b.String()
}

type recListener struct {
	net.Listener
	log *writeLog
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, log: l.log}, nil
}

type recConn struct {
	net.Conn
	log *writeLog
}

func (c *recConn) Write(p []byte) (int, error) {
	c.log.add(p)
	return c.Conn.Write(p)
}

// deadline is the deadline of a wait that should end at once.
func deadline() time.Time { return time.Now().Add(testTimeout) }
