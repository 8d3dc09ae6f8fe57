package wire

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"party/protocol"
)

// Socket is a hijacked connection under coder/websocket that remembers
// whether a read from it failed and when bytes last arrived, coalesces the
// writer's batches, and lets its owner wait for bytes and take pongs without
// a reader on the stack.
//
// Reads: coder/websocket takes an io.EOF met inside a message at a frame
// boundary for the end of the message (behaviour 4 in the package doc); the
// read loop asks [Socket.Failed] before handing a message over (a complete
// message never needs a read past its last byte). Bytes arriving are a sign
// of life for the keepalive ([Socket.LastRead]): a client uploading one long
// frame cannot answer a ping before the frame ends.
//
// Writes: between BeginBatch and EndBatch (the connection's writer writing
// one batch of its queue) the socket gathers the batch's frames in a pooled
// buffer and sends them with one write, so a backlog of n messages costs one
// syscall, not n. coder/websocket writes the control frames (pongs, close
// frames) from other goroutines: outside a batch they go straight through;
// inside one they join it. Idle connections hold no batch buffer.
//
// Only one goroutine at a time may be the writer (call BeginBatch, EndBatch,
// WriteMessage, Ping, TryPing); the other methods are safe from any
// goroutine.
type Socket struct {
	net.Conn
	failed   atomic.Bool
	lastRead atomic.Int64 // unix nanoseconds

	raw   syscall.RawConn // the file descriptor of a plain TCP or Unix socket on Linux; else nil
	br    *bufio.Reader   // coder/websocket's reader over this socket
	early bool            // the client spoke in its handshake's packet; read loop only

	wmu       sync.Mutex
	batching  bool
	closed    bool    // guarded by wmu
	closeSent bool    // a close frame went out (or into the batch): no data frame may follow; guarded by wmu
	buf       *[]byte // pooled, only during a batch
}

// closeFlushTimeout bounds the last write of what a batch gathered when the
// socket is closed under it.
const closeFlushTimeout = time.Second

// Close writes what the current batch has gathered, then closes the
// connection. coder/websocket answers a client's close frame and closes the
// socket at once, from the read loop; if the writer is in a batch, that
// answer sits in the batch buffer, and would be lost. The write deadline,
// set before waiting for the writer, also frees a writer stuck on a client
// that does not read.
func (s *Socket) Close() error {
	s.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	s.wmu.Lock()
	if s.batching && !s.closed {
		s.flushLocked()
	}
	s.closed = true
	s.wmu.Unlock()
	return s.Conn.Close()
}

// CloseNow closes the connection at once, without writing what a batch
// gathered and without waiting for a write in progress, which fails. Unlike
// Close it does not extend the write deadline.
func (s *Socket) CloseNow() error { return s.Conn.Close() }

// batchFlushAt bounds what a batch gathers before an early write.
const batchFlushAt = 64 << 10

var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// Write is how coder/websocket writes: each control frame whole, in one
// Write (behaviour 2). Data messages must not come this way: see
// isCloseFrame.
func (s *Socket) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	if isCloseFrame(p) {
		s.closeSent = true
	}
	if !s.batching {
		return s.Conn.Write(p)
	}
	*s.buf = append(*s.buf, p...)
	if len(*s.buf) >= batchFlushAt {
		if err := s.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (s *Socket) flushLocked() error {
	b := *s.buf
	*s.buf = b[:0]
	if len(b) == 0 {
		return nil
	}
	if s.closed {
		return net.ErrClosed
	}
	_, err := s.Conn.Write(b)
	return err
}

// BeginBatch starts gathering writes; EndBatch sends them.
func (s *Socket) BeginBatch() {
	s.wmu.Lock()
	s.batching = true
	s.buf = batchBuffers.Get().(*[]byte)
	s.wmu.Unlock()
}

// EndBatch writes what the batch gathered and returns that write's error.
func (s *Socket) EndBatch() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := s.flushLocked()
	s.batching = false
	if cap(*s.buf) <= 2*batchFlushAt {
		batchBuffers.Put(s.buf)
	}
	s.buf = nil
	return err
}

// WriteMessage writes msg as one data frame, unfragmented and unmasked as a
// server's frames are, joining the batch if one is open. The connection's
// writer writes messages this way rather than with coder/websocket's Write:
// the frame is the same, without Write's lock, context and per-frame flush,
// and without its depth of stack (the writer goroutine then fits the
// smallest one). coder/websocket still writes the control frames, each
// whole in one Write, so frames never interleave; and once its close frame
// is seen, no data follows it. Compression is never negotiated
// (behaviour 7), so data frames are never compressed.
func (s *Socket) WriteMessage(msg protocol.Message) error {
	var hdr [maxHeader]byte
	data := msg.Bytes()
	h := putHeader(&hdr, msg.IsBinary(), len(data))
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed || s.closeSent {
		return net.ErrClosed
	}
	if s.batching && len(*s.buf)+h+len(data) <= batchFlushAt {
		*s.buf = append(append(*s.buf, hdr[:h]...), data...)
		return nil
	}
	// A large message: what the batch holds, the header and the payload
	// leave in one writev, and the payload is not copied.
	bufs := make(net.Buffers, 0, 3)
	if s.batching && len(*s.buf) > 0 {
		bufs = append(bufs, *s.buf)
		*s.buf = (*s.buf)[:0]
	}
	bufs = append(bufs, bytes.Clone(hdr[:h]), data) // a copy: hdr stays on the stack on the common path
	_, err := bufs.WriteTo(s.Conn)
	return err
}

// Ping writes a ping frame, joining the batch if one is open. Between two
// messages no frame is half written (only the writer writes data frames,
// and coder/websocket writes each control frame in one Write), so the ping
// can go in as is.
func (s *Socket) Ping() error {
	_, err := s.Write(pingFrame)
	return err
}

// ErrPartialPing is returned by TryPing when the kernel took only part of
// the ping frame: the stream cannot go on.
var ErrPartialPing = errors.New("party: the kernel took only part of a ping frame")

// TryPing writes a ping frame only if the kernel takes it at once, without
// waiting for room in the send buffer, and reports whether it did. It
// reports false when the write would wait, on any error (which the writer
// meets again), and where the socket is not a plain TCP or Unix socket on
// Linux: the writer must then Ping. The caller must hold the writer's role.
func (s *Socket) TryPing() (sent bool, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed || s.batching || s.raw == nil {
		return false, nil
	}
	switch n := writeNonblocking(s.raw, pingFrame); {
	case n == len(pingFrame):
		return true, nil
	case n > 0:
		return false, ErrPartialPing
	}
	return false, nil
}

func (s *Socket) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if n > 0 {
		s.lastRead.Store(time.Now().UnixNano())
	}
	if err != nil {
		s.failed.Store(true)
	}
	return n, err
}

// Failed reports whether a read from the socket failed: a message that
// coder/websocket's Read returned after it may have been cut short.
func (s *Socket) Failed() bool { return s.failed.Load() }

// LastRead returns when bytes last arrived from the client (a message, a
// pong, part of a frame), in unix nanoseconds, or 0.
func (s *Socket) LastRead() int64 { return s.lastRead.Load() }

// TakeEarly reports whether the client spoke in its handshake's packet, the
// first time it is called; false after that. Those bytes wait in
// coder/websocket's reader, where waiting on the socket would not see them.
// Read loop only.
func (s *Socket) TakeEarly() bool {
	e := s.early
	s.early = false
	return e
}

// CanWait reports whether the socket can be waited on without a read
// ([Socket.WaitReadable]): a plain TCP or Unix socket on Linux.
func (s *Socket) CanWait() bool { return s.raw != nil }

// Buffered returns how many bytes coder/websocket's reader holds, read from
// the socket but not yet taken.
func (s *Socket) Buffered() int { return s.br.Buffered() }

// WaitReadable parks until the socket has bytes to read, or has reached its
// end, or is closed; it reports false in the last case. It takes nothing,
// and it parks on whatever stack its caller has: that is the point.
func (s *Socket) WaitReadable() bool { return s.raw != nil && waitReadable(s.raw) }

// Readable reports, without waiting, whether the socket has bytes to read
// (or has reached its end); true where it cannot tell.
func (s *Socket) Readable() bool { return s.raw == nil || readable(s.raw) }

// TakePong reads and drops the client's answer to a ping of ours, if it is
// the first thing the socket holds, and counts it as a sign of life. It
// must not run while anything else reads the socket (coder/websocket's Read,
// or its Close, behaviour 5).
func (s *Socket) TakePong() bool {
	if s.raw == nil || !takePong(s.raw) {
		return false
	}
	s.lastRead.Store(time.Now().UnixNano())
	return true
}
