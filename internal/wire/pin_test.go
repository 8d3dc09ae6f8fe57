package wire

// One test per numbered behaviour of coder/websocket v1.8 in the package doc
// (wire.go), each through real sockets. A failure names the behaviour and
// what in party depends on it: read wire.go before upgrading coder/websocket
// past a failing pin.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"party/protocol"
)

// Behaviour 1: Accept uses the buffers of the hijacked connection.
func TestPinAcceptUsesHijackedBuffers(t *testing.T) {
	const doc = "see internal/wire/wire.go behaviour 1"
	t.Run("writer", func(t *testing.T) {
		srv := newServer(t, true)
		c, _ := dialWS(t, srv, nil)
		a := srv.accept(t)
		msg := bytes.Repeat([]byte{'w'}, 300)
		got := readAsync(c)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := a.ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatalf("coder/websocket's Write: %v", err)
		}
		if r := recv(t, got, "the message at the client"); r.err != nil || !bytes.Equal(r.data, msg) {
			t.Fatalf("the client read %d bytes, err %v", len(r.data), r.err)
		}
		// A 304-byte frame through party's 128-byte writer: 128 bytes
		// flushed, then the 176 left written straight through.
		w := srv.log.frames()
		if len(w) != 2 || len(w[0]) != writeBuffer || len(w[1]) != 304-writeBuffer {
			t.Fatalf("coder/websocket no longer writes through the bufio.Writer of the hijacked connection "+
				"(a 304-byte frame through party's %d-byte writer should leave as 128+176 bytes; got %s): "+
				"party's small write buffer (accept.go) is not the one in use; %s", writeBuffer, sizes(w), doc)
		}
	})
	t.Run("reader", func(t *testing.T) {
		srv := newServer(t, false)
		c, _ := dialRaw(t, srv, "", nil)
		a := srv.accept(t)
		second := clientFrame(finText, []byte("two"))
		got := readAsync(a.ws)
		c.send(t, clientFrame(finText, []byte("one")), second) // one write: read into the buffer together
		if r := recv(t, got, "the first message"); r.err != nil || string(r.data) != "one" {
			t.Fatalf("Read = %q, %v; want \"one\"", r.data, r.err)
		}
		if n := a.sock.Buffered(); n != len(second) {
			t.Fatalf("coder/websocket no longer reads through the bufio.Reader of the hijacked connection "+
				"(Socket.Buffered = %d after the first of two frames read together; want %d): party's read loop "+
				"asks Socket.Buffered before parking on the socket, and would park with a message waiting; %s",
				n, len(second), doc)
		}
	})
	t.Run("bytes already buffered", func(t *testing.T) {
		srv := newServer(t, false)
		dialRaw(t, srv, "", clientFrame(finText, []byte("early")))
		a := srv.accept(t)
		if r := recv(t, readAsync(a.ws), "the message sent with the handshake"); r.err != nil || string(r.data) != "early" {
			t.Fatalf("coder/websocket no longer keeps the bytes buffered in the hijacked bufio.Reader "+
				"(Read = %q, %v; want \"early\"): a client's first message sent in its handshake's packet "+
				"would be lost (accept.go moves it into that reader); %s", r.data, r.err, doc)
		}
	})
}

// Behaviour 2: every control frame leaves in one Write, even the largest.
func TestPinControlFrameInOneWrite(t *testing.T) {
	reason := strings.Repeat("r", 123) // the longest: 2 code bytes + 123 = 125, a 127-byte frame
	ping := bytes.Repeat([]byte{'p'}, 125)
	cases := []struct {
		name  string
		frame []byte // the control frame coder/websocket should write
		run   func(t *testing.T, c *rawClient, a accepted) (b0 byte, payload []byte)
	}{
		{"close frame with a 123-byte reason", serverFrame(finClose, closePayload(4000, reason)),
			func(t *testing.T, c *rawClient, a accepted) (byte, []byte) {
				done := make(chan error, 1)
				go func() { done <- a.ws.Close(4000, reason) }()
				b0, p := c.mustReadFrame(t, "the server's close frame")
				c.send(t, clientFrame(finClose, p))
				if err := recv(t, done, "return from Close"); err != nil {
					t.Errorf("Close: %v", err)
				}
				return b0, p
			}},
		{"pong to a 125-byte ping", serverFrame(finPong, ping),
			func(t *testing.T, c *rawClient, a accepted) (byte, []byte) {
				readAsync(a.ws) // answers the ping; ends when the test closes the connection
				c.send(t, clientFrame(finPing, ping))
				return c.mustReadFrame(t, "the server's pong")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, true)
			c, _ := dialRaw(t, srv, "", nil)
			defer c.Close() // on failure, ends Close's wait for the client's answer at once
			a := srv.accept(t)
			b0, p := tc.run(t, c, a)
			if !bytes.Equal(append([]byte{b0}, p...), append(tc.frame[:1:1], tc.frame[2:]...)) {
				t.Fatalf("the client read frame %#x with %d payload bytes; want %#x with %d", b0, len(p), tc.frame[0], len(tc.frame)-2)
			}
			w := srv.log.frames()
			whole := 0
			for _, b := range w {
				if bytes.Equal(b, tc.frame) {
					whole++
				}
			}
			if whole != 1 {
				t.Fatalf("coder/websocket no longer writes each control frame in one Write (want one write of "+
					"the whole %d-byte frame; got %s): party's batched data frames could split a pong or a close "+
					"frame, and Socket.Write could miss a close frame; see internal/wire/wire.go behaviour 2",
					len(tc.frame), sizes(w))
			}
		})
	}
}

// Behaviour 3: the close frame starts with 0x88, which Socket.Write watches
// for.
func TestPinCloseFrameFirstByte(t *testing.T) {
	const doc = "see internal/wire/wire.go behaviour 3"
	srv := newServer(t, false)
	c, _ := dialRaw(t, srv, "", nil)
	defer c.Close() // on failure, ends Close's wait for the client's answer at once
	a := srv.accept(t)
	done := make(chan error, 1)
	go func() { done <- a.ws.Close(4000, "bye") }()
	b0, p := c.mustReadFrame(t, "the server's close frame")
	if b0 != 0x88 {
		t.Fatalf("coder/websocket's close frame no longer starts with 0x88 (got %#x): party's Socket.Write "+
			"(isCloseFrame) would not see it, and the writer could send data after it; %s", b0, doc)
	}
	a.sock.wmu.Lock()
	closeSent, closed := a.sock.closeSent, a.sock.closed
	a.sock.wmu.Unlock()
	if !closeSent {
		t.Fatalf("party's Socket did not take coder/websocket's close frame (first byte %#x) for one: "+
			"the writer could send data after it; %s", b0, doc)
	}
	if err := a.sock.WriteMessage(protocol.Text("late")); !closed && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteMessage after coder/websocket's close frame = %v, want net.ErrClosed; %s", err, doc)
	}
	c.send(t, clientFrame(finClose, p))
	if err := recv(t, done, "return from Close"); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// Behaviour 4: an io.EOF at a frame boundary ends the message; Socket.Failed
// tells party the message was cut short.
func TestPinEOFAtFrameBoundaryEndsMessage(t *testing.T) {
	const doc = "see internal/wire/wire.go behaviour 4"
	cases := []struct {
		name       string
		sent       []byte // then the client vanishes
		wantData   string // unchecked with wantErr (Read returns what it had read)
		wantErr    bool
		wantFailed bool
	}{
		{"whole message", clientFrame(finText, []byte("abc")), "abc", false, false},
		{"complete first fragment", clientFrame(finText&^0x80, []byte("abc")), "abc", false, true},
		// Not only at a frame boundary: at any field boundary of the next
		// frame's header, Read sees io.EOF rather than io.ErrUnexpectedEOF.
		{"first fragment, then a header's first byte", append(clientFrame(finText&^0x80, []byte("abc")), 0x80), "abc", false, true},
		{"first fragment, then a header without its mask", append(clientFrame(finText&^0x80, []byte("abc")), 0x80, 0x83), "abc", false, true},
		{"inside a frame's payload", clientFrame(finText, []byte("abcdef"))[:9], "", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, false)
			c, _ := dialRaw(t, srv, "", nil)
			a := srv.accept(t)
			c.send(t, tc.sent)
			c.CloseWrite()
			r := recv(t, readAsync(a.ws), "Read's return")
			if (r.err != nil) != tc.wantErr || !tc.wantErr && string(r.data) != tc.wantData {
				t.Fatalf("coder/websocket's Read no longer behaves as pinned when the client vanishes (%s): "+
					"Read = %q, %v; want %q, error %v. party's read loop hands over what Read returns unless "+
					"Socket.Failed; %s", tc.name, r.data, r.err, tc.wantData, tc.wantErr, doc)
			}
			if a.sock.Failed() != tc.wantFailed {
				t.Fatalf("Socket.Failed() = %v after %s, want %v: party would hand a message cut short to "+
					"OnMessage as whole (or drop a whole one); %s", a.sock.Failed(), tc.name, tc.wantFailed, doc)
			}
		})
	}
}

// Behaviour 5: Close reads the client's answer; CloseNow reads nothing.
func TestPinOnlyCloseReads(t *testing.T) {
	const doc = "see internal/wire/wire.go behaviour 5"
	t.Run("Close", func(t *testing.T) {
		srv := newServer(t, false)
		c, _ := dialRaw(t, srv, "", nil)
		defer c.Close() // on failure, ends Close's wait for the client's answer at once
		a := srv.accept(t)
		if a.sock.LastRead() != 0 {
			t.Fatalf("LastRead = %d before anything was read", a.sock.LastRead())
		}
		done := make(chan error, 1)
		go func() { done <- a.ws.Close(4000, "bye") }()
		_, p := c.mustReadFrame(t, "the server's close frame")
		c.send(t, clientFrame(finClose, p))
		err := recv(t, done, "return from Close")
		if err != nil || a.sock.LastRead() == 0 {
			t.Fatalf("coder/websocket's Close no longer reads the client's answer through the socket "+
				"(Close = %v, Socket read: %v): party's read loop marks the connection closing before Close "+
				"so that TakePong never races Close's read; the doc is stale; %s", err, a.sock.LastRead() != 0, doc)
		}
	})
	t.Run("CloseNow", func(t *testing.T) {
		srv := newServer(t, false)
		c, _ := dialRaw(t, srv, "", nil)
		a := srv.accept(t)
		c.send(t, clientFrame(finText, []byte("never read")))
		awaitReadable(t, a.sock, "the client's message")
		if err := closeNow(t, a.ws); err != nil {
			t.Fatalf("CloseNow: %v", err)
		}
		if a.sock.LastRead() != 0 || a.sock.Failed() {
			t.Fatalf("coder/websocket's CloseNow read from the connection (LastRead %d, Failed %v): "+
				"party's TakePong and WaitReadable could race it and tear a frame; %s",
				a.sock.LastRead(), a.sock.Failed(), doc)
		}
	})
}

// Behaviour 6, first half: Read answers a client's close frame with the
// same code and reason.
func TestPinReadAnswersClose(t *testing.T) {
	cases := []struct {
		name     string
		payload  []byte
		wantCode websocket.StatusCode
	}{
		{"code and reason", closePayload(4409, "replaced"), 4409},
		{"code only", closePayload(1000, ""), 1000},
		{"no payload", nil, websocket.StatusNoStatusRcvd},
		{"longest reason", closePayload(4000, strings.Repeat("r", 123)), 4000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, false)
			c, _ := dialRaw(t, srv, "", nil)
			a := srv.accept(t)
			got := readAsync(a.ws)
			c.send(t, clientFrame(finClose, tc.payload))
			r := recv(t, got, "Read's return")
			var ce websocket.CloseError
			if !errors.As(r.err, &ce) || ce.Code != tc.wantCode || len(tc.payload) > 2 && ce.Reason != string(tc.payload[2:]) {
				t.Fatalf("coder/websocket's Read no longer returns the client's close frame as a CloseError "+
					"(got %v; want code %d): party records the client's code and reason from it; "+
					"see internal/wire/wire.go behaviour 6", r.err, tc.wantCode)
			}
			b0, p := c.mustReadFrame(t, "the server's answer")
			if b0 != finClose || !bytes.Equal(p, tc.payload) {
				t.Fatalf("coder/websocket's Read no longer answers a close frame with the same code and reason "+
					"(answered %#x %q; want 0x88 %q): party leaves that answer to it and never writes one; "+
					"see internal/wire/wire.go behaviour 6", b0, p, tc.payload)
			}
			c.expectEOF(t)
		})
	}
}

// Behaviour 6, second half: a message over the read limit is answered with
// 1009, and Read returns ErrMessageTooBig.
func TestPinReadLimit1009(t *testing.T) {
	const limit = 100
	for _, n := range []int{limit, limit + 1} {
		srv := newServer(t, false)
		c, _ := dialRaw(t, srv, "", nil)
		a := srv.accept(t)
		a.ws.SetReadLimit(limit)
		got := readAsync(a.ws)
		c.send(t, clientFrame(finBinary, bytes.Repeat([]byte{'x'}, n)))
		r := recv(t, got, "Read's return")
		if n <= limit {
			if r.err != nil || len(r.data) != n {
				t.Fatalf("Read of a message of %d bytes, the limit: %d bytes, %v", n, len(r.data), r.err)
			}
			continue
		}
		if !errors.Is(r.err, websocket.ErrMessageTooBig) {
			t.Fatalf("coder/websocket's Read of a message over the read limit returned %v, not ErrMessageTooBig: "+
				"party's read loop recognises it to record 1009; see internal/wire/wire.go behaviour 6", r.err)
		}
		b0, p := c.mustReadFrame(t, "the server's close frame")
		if b0 != finClose || !bytes.HasPrefix(p, closePayload(1009, "")) {
			t.Fatalf("coder/websocket no longer answers a message over the read limit with a 1009 close frame "+
				"(sent %#x %q): party leaves that frame to it; see internal/wire/wire.go behaviour 6", b0, p)
		}
	}
}

// Behaviour 7: no compression unless asked to.
func TestPinNoCompression(t *testing.T) {
	offers := []string{
		"permessage-deflate",
		"permessage-deflate; client_max_window_bits",
		"permessage-deflate; client_no_context_takeover; server_no_context_takeover",
	}
	check := func(t *testing.T, got string) {
		if got != "" {
			t.Fatalf("coder/websocket negotiated %q though party's Accept asks for no compression: party frames "+
				"data messages itself, uncompressed, and a client expecting compressed ones may fail them; "+
				"see internal/wire/wire.go behaviour 7", got)
		}
	}
	for _, offer := range offers {
		t.Run(offer, func(t *testing.T) {
			srv := newServer(t, false)
			_, resp := dialRaw(t, srv, "Sec-WebSocket-Extensions: "+offer+"\r\n", nil)
			srv.accept(t)
			check(t, resp.Header.Get("Sec-WebSocket-Extensions"))
		})
	}
	modes := map[string]websocket.CompressionMode{
		"client CompressionContextTakeover":   websocket.CompressionContextTakeover,
		"client CompressionNoContextTakeover": websocket.CompressionNoContextTakeover,
	}
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, false)
			_, resp := dialWS(t, srv, &websocket.DialOptions{CompressionMode: mode})
			srv.accept(t)
			check(t, resp.Header.Get("Sec-WebSocket-Extensions"))
		})
	}
}

// Behaviour 8: coder/websocket's client, party's stand-in for a browser in
// its tests, answers a ping with an empty masked pong of 6 bytes.
func TestPinClientPongShape(t *testing.T) {
	srv := newServer(t, false)
	c, _ := dialWS(t, srv, nil)
	go c.Read(context.Background()) // answers pings; ends when the test closes the connection
	a := srv.accept(t)
	if err := a.sock.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	var b [pongLen]byte
	a.sock.SetReadDeadline(deadline())
	if _, err := io.ReadFull(a.sock, b[:]); err != nil {
		t.Fatalf("reading the client's answer to a ping: %v", err)
	}
	extra := a.sock.CanWait() && a.sock.Readable()
	if !isPong(b[:]) || extra {
		t.Fatalf("coder/websocket's client no longer answers a ping with an empty masked pong, 6 bytes "+
			"(got % x, more bytes: %v): party's TakePong takes only that shape (isPong), as browsers send it; "+
			"see internal/wire/wire.go behaviour 8", b, extra)
	}
}
