package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party/protocol"
)

func TestPutHeader(t *testing.T) {
	cases := []struct {
		n      int
		binary bool
		want   []byte
	}{
		{0, false, []byte{0x81, 0}},
		{1, true, []byte{0x82, 1}},
		{125, false, []byte{0x81, 125}},
		{126, false, []byte{0x81, 126, 0, 126}},
		{127, true, []byte{0x82, 126, 0, 127}},
		{65535, false, []byte{0x81, 126, 0xff, 0xff}},
		{65536, true, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{70000, false, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}},
	}
	for _, tc := range cases {
		var hdr [maxHeader]byte
		if h := putHeader(&hdr, tc.binary, tc.n); !bytes.Equal(hdr[:h], tc.want) {
			t.Errorf("putHeader(binary %v, %d) = % x, want % x", tc.binary, tc.n, hdr[:h], tc.want)
		}
	}
}

// message returns a message of n bytes, text or binary.
func message(n int, binary bool) protocol.Message {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
		if binary {
			b[i] = byte(i % 251)
		}
	}
	if binary {
		return protocol.Binary(b)
	}
	return protocol.TextBytes(b)
}

// writeAsync writes msgs with WriteMessage on another goroutine, in one
// batch if batch, and returns the first error.
func writeAsync(s *Socket, batch bool, msgs []protocol.Message) <-chan error {
	done := make(chan error, 1)
	go func() {
		var err error
		if batch {
			s.BeginBatch()
		}
		for _, m := range msgs {
			if err == nil {
				err = s.WriteMessage(m)
			}
		}
		if batch {
			if e := s.EndBatch(); err == nil {
				err = e
			}
		}
		done <- err
	}()
	return done
}

// expectMessages reads msgs, in order, with coder/websocket's client.
func expectMessages(t *testing.T, c *websocket.Conn, msgs []protocol.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for i, m := range msgs {
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("the client, reading message %d of %d: %v", i+1, len(msgs), err)
		}
		if (typ == websocket.MessageBinary) != m.IsBinary() || !bytes.Equal(data, m.Bytes()) {
			t.Fatalf("message %d of %d: the client read %v of %d bytes, want binary %v of %d bytes",
				i+1, len(msgs), typ, len(data), m.IsBinary(), len(m.Bytes()))
		}
	}
}

// TestWriteMessageRoundTrip writes messages of every header length (and
// its boundaries) as WriteMessage frames them, alone or in a batch between
// small messages, and reads them with coder/websocket's client.
func TestWriteMessageRoundTrip(t *testing.T) {
	for _, batch := range []bool{false, true} {
		for _, binary := range []bool{false, true} {
			for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
				name := fmt.Sprintf("batch=%v/binary=%v/%d", batch, binary, n)
				t.Run(name, func(t *testing.T) {
					srv := newServer(t, false)
					c, _ := dialWS(t, srv, nil)
					a := srv.accept(t)
					msgs := []protocol.Message{message(n, binary)}
					if batch {
						msgs = []protocol.Message{protocol.Text("before"), msgs[0], protocol.Binary([]byte("after"))}
					}
					done := writeAsync(a.sock, batch, msgs)
					expectMessages(t, c, msgs)
					if err := recv(t, done, "the writer's return"); err != nil {
						t.Fatalf("WriteMessage: %v", err)
					}
				})
			}
		}
	}
}

// TestBatch writes many small messages in one batch: they arrive intact
// and in order, in one write while the batch is under batchFlushAt.
func TestBatch(t *testing.T) {
	cases := []struct {
		n         int
		oneWrite  bool
		minWrites int
	}{
		{n: 100, oneWrite: true},
		{n: 20000, minWrites: 2}, // 160 KB: written early at batchFlushAt
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			srv := newServer(t, true)
			c, _ := dialWS(t, srv, nil)
			a := srv.accept(t)
			msgs := make([]protocol.Message, tc.n)
			for i := range msgs {
				msgs[i] = protocol.Text(fmt.Sprintf("m%05d", i))
			}
			done := writeAsync(a.sock, true, msgs)
			expectMessages(t, c, msgs)
			if err := recv(t, done, "the writer's return"); err != nil {
				t.Fatalf("WriteMessage: %v", err)
			}
			w := srv.log.frames()
			if tc.oneWrite && len(w) != 1 || len(w) < tc.minWrites {
				t.Fatalf("a batch of %d messages left in %d writes: %s", tc.n, len(w), sizes(w))
			}
		})
	}
}

// TestCloseFrameInBatch: once a close frame joins a batch, data is refused,
// and what the batch holds still goes out, in order, when the socket
// closes.
func TestCloseFrameInBatch(t *testing.T) {
	cases := []struct {
		name      string
		wantClose []byte // the close frame's payload the client reads
		close     func(t *testing.T, c *rawClient, a accepted)
	}{
		{"written by coder/websocket into the batch", closePayload(1000, "bye"),
			func(t *testing.T, c *rawClient, a accepted) {
				f := serverFrame(finClose, closePayload(1000, "bye"))
				if n, err := a.sock.Write(f); n != len(f) || err != nil { // as coder/websocket writes it
					t.Fatalf("Write(close frame) = %d, %v", n, err)
				}
			}},
		{"answer to the client's close", closePayload(4000, "x"),
			func(t *testing.T, c *rawClient, a accepted) {
				got := readAsync(a.ws)
				c.send(t, clientFrame(finClose, closePayload(4000, "x")))
				if r := recv(t, got, "Read's return"); websocket.CloseStatus(r.err) != 4000 {
					t.Fatalf("Read = %v, want the client's close frame", r.err)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, false)
			c, _ := dialRaw(t, srv, "", nil)
			a := srv.accept(t)
			s := a.sock
			s.BeginBatch()
			if err := s.WriteMessage(protocol.Text("before")); err != nil {
				t.Fatalf("WriteMessage before the close frame: %v", err)
			}
			tc.close(t, c, a)
			if err := s.WriteMessage(protocol.Text("after")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("WriteMessage after a close frame = %v, want net.ErrClosed", err)
			}
			s.EndBatch()
			s.Close()
			if b0, p := c.mustReadFrame(t, "the message before"); b0 != finText || string(p) != "before" {
				t.Fatalf("first frame %#x %q, want the text \"before\"", b0, p)
			}
			if b0, p := c.mustReadFrame(t, "the close frame"); b0 != finClose || !bytes.Equal(p, tc.wantClose) {
				t.Fatalf("second frame %#x %q, want the close frame %q", b0, p, tc.wantClose)
			}
			c.expectEOF(t)
		})
	}
}

// TestTryPingTakePong: on an idle socket TryPing sends a ping, and TakePong
// takes exactly the client's answer, which is a sign of life; it leaves
// anything else alone.
func TestTryPingTakePong(t *testing.T) {
	srv := newServer(t, false)
	c, _ := dialWS(t, srv, nil)
	clientRead := readAsync(c) // answers pings
	a := srv.accept(t)
	s := a.sock
	if !s.CanWait() {
		t.Skip("no TryPing or TakePong here (not Linux)")
	}
	if s.TakePong() {
		t.Fatal("TakePong took a pong before any ping")
	}
	if sent, err := s.TryPing(); !sent || err != nil {
		t.Fatalf("TryPing on an idle socket = %v, %v; want true, nil", sent, err)
	}
	awaitReadable(t, s, "the client's pong")
	before := time.Now().UnixNano()
	if !s.TakePong() {
		t.Fatal("TakePong did not take the client's pong")
	}
	if s.LastRead() < before {
		t.Fatalf("LastRead = %d after TakePong, want at least %d", s.LastRead(), before)
	}
	if s.Readable() || s.Buffered() != 0 {
		t.Fatalf("bytes left after the pong: Readable %v, Buffered %d", s.Readable(), s.Buffered())
	}

	s.BeginBatch()
	sent, err := s.TryPing()
	s.EndBatch()
	if sent || err != nil {
		t.Fatalf("TryPing inside a batch = %v, %v; want false, nil (the writer must Ping)", sent, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("not a pong")); err != nil {
		t.Fatalf("client Write: %v", err)
	}
	awaitReadable(t, s, "the client's message")
	if s.TakePong() {
		t.Fatal("TakePong took a message for a pong")
	}
	if r := recv(t, readAsync(a.ws), "Read's return"); r.err != nil || string(r.data) != "not a pong" {
		t.Fatalf("Read after TakePong declined = %q, %v; want \"not a pong\"", r.data, r.err)
	}
	s.Close()
	if sent, err := s.TryPing(); sent || err != nil {
		t.Fatalf("TryPing on a closed socket = %v, %v; want false, nil", sent, err)
	}
	recv(t, clientRead, "the client's Read to end")
}

// TestWaitReadable follows a socket through its states: idle, with a
// message, read, at the client's end, closed.
func TestWaitReadable(t *testing.T) {
	srv := newServer(t, false)
	c, _ := dialRaw(t, srv, "", nil)
	a := srv.accept(t)
	s := a.sock
	if !s.CanWait() {
		t.Skip("the socket cannot be waited on here (not Linux)")
	}
	if s.Readable() {
		t.Fatal("Readable on an idle socket")
	}
	c.send(t, clientFrame(finText, []byte("hello")))
	awaitReadable(t, s, "the client's message")
	if !s.Readable() {
		t.Fatal("not Readable after WaitReadable")
	}
	if s.LastRead() != 0 {
		t.Fatal("WaitReadable or Readable took bytes")
	}
	if r := recv(t, readAsync(a.ws), "Read's return"); r.err != nil || string(r.data) != "hello" {
		t.Fatalf("Read = %q, %v; want \"hello\"", r.data, r.err)
	}
	if s.Readable() || s.Buffered() != 0 {
		t.Fatalf("after the message was read: Readable %v, Buffered %d", s.Readable(), s.Buffered())
	}
	c.CloseWrite()
	awaitReadable(t, s, "the client's end of stream")
	if !s.Readable() {
		t.Fatal("not Readable at the client's end of stream")
	}
	s.Close()
	if s.WaitReadable() {
		t.Fatal("WaitReadable reported true on a closed socket")
	}
}

// TestEarlyBytes: frames sent in the handshake's packet are read, and
// TakeEarly reports them, once.
func TestEarlyBytes(t *testing.T) {
	long := bytes.Repeat([]byte{'e'}, 3000) // over readBuffer
	cases := []struct {
		name string
		msgs [][]byte
	}{
		{"none", nil},
		{"one message", [][]byte{[]byte("early")}},
		{"two messages", [][]byte{[]byte("one"), []byte("two")}},
		{"over the read buffer", [][]byte{long}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, false)
			var early []byte
			for _, m := range tc.msgs {
				early = append(early, clientFrame(finText, m)...)
			}
			dialRaw(t, srv, "", early)
			a := srv.accept(t)
			if got, want := a.sock.TakeEarly(), len(early) > 0; got != want {
				t.Fatalf("TakeEarly = %v, want %v", got, want)
			}
			if a.sock.TakeEarly() {
				t.Fatal("TakeEarly true a second time")
			}
			for _, m := range tc.msgs {
				if r := recv(t, readAsync(a.ws), "Read's return"); r.err != nil || !bytes.Equal(r.data, m) {
					t.Fatalf("Read = %d bytes, %v; want %d bytes sent with the handshake", len(r.data), r.err, len(m))
				}
			}
			if a.sock.CanWait() && (a.sock.Readable() || a.sock.Buffered() != 0) {
				t.Fatalf("bytes left after the early messages: Readable %v, Buffered %d", a.sock.Readable(), a.sock.Buffered())
			}
		})
	}
}
