package party

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// socket is a hijacked connection that remembers whether a read from it
// failed, and when bytes last arrived.
//
// coder/websocket's reader takes the io.EOF met at a frame boundary, or
// before the first byte of a payload, for the end of the message: a message
// whose client vanished inside it comes out as complete. The read loop asks
// the socket before handing a message over (a complete message never needs a
// read past its last byte).
//
// Bytes arriving are a sign of life for the keepalive: a client uploading one
// long frame cannot answer a ping before the frame ends.
//
// It also coalesces writes. Between beginBatch and endBatch (the
// connection's writer writing one batch of its queue) the socket gathers the
// batch's frames (see writeMessage) in a pooled buffer and sends them with
// one write, so a backlog of n messages costs one syscall, not n.
// coder/websocket writes the control frames (pongs, close frames), from
// other goroutines: outside a batch they go straight through; inside one
// they join it. Idle connections hold no batch buffer.
type socket struct {
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
func (s *socket) Close() error {
	s.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	s.wmu.Lock()
	if s.batching && !s.closed {
		s.flushLocked()
	}
	s.closed = true
	s.wmu.Unlock()
	return s.Conn.Close()
}

// batchFlushAt bounds what a batch gathers before an early write.
const batchFlushAt = 64 << 10

var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func (s *socket) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	if len(p) > 0 && p[0] == 0x88 {
		// coder/websocket writes each control frame whole, in one Write
		// (see writeMessage): this is its close frame.
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

func (s *socket) flushLocked() error {
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

func (s *socket) beginBatch() {
	s.wmu.Lock()
	s.batching = true
	s.buf = batchBuffers.Get().(*[]byte)
	s.wmu.Unlock()
}

// endBatch writes what the batch gathered and returns that write's error.
func (s *socket) endBatch() error {
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

// writeMessage writes msg as one data frame, unfragmented and unmasked as a
// server's frames are, joining the batch if one is open. The connection's
// writer writes messages this way rather than with coder/websocket's Write:
// the frame is the same, without Write's lock, context and per-frame flush,
// and without its depth of stack (the writer goroutine then fits the
// smallest one). coder/websocket still writes the control frames, each
// whole in one Write (its 128-byte buffer holds any of them), so frames
// never interleave; and once its close frame is seen, no data follows it.
// Compression is never negotiated, so data frames are never compressed.
func (s *socket) writeMessage(msg Message) error {
	var hdr [10]byte
	hdr[0] = 0x81 // FIN, text
	if msg.binary {
		hdr[0] = 0x82
	}
	n, h := len(msg.data), 2
	switch {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xffff:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		h = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		h = 10
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed || s.closeSent {
		return net.ErrClosed
	}
	if s.batching && len(*s.buf)+h+n <= batchFlushAt {
		*s.buf = append(append(*s.buf, hdr[:h]...), msg.data...)
		return nil
	}
	// A large message: what the batch holds, the header and the payload
	// leave in one writev, and the payload is not copied.
	bufs := make(net.Buffers, 0, 3)
	if s.batching && len(*s.buf) > 0 {
		bufs = append(bufs, *s.buf)
		*s.buf = (*s.buf)[:0]
	}
	bufs = append(bufs, bytes.Clone(hdr[:h]), msg.data) // a copy: hdr stays on the stack on the common path
	_, err := bufs.WriteTo(s.Conn)
	return err
}

// writeNow writes p only if the kernel takes it at once (see
// writeNonblocking) and reports how many bytes it took. The caller must hold
// the connection's writer role, so that no data frame is half written.
func (s *socket) writeNow(p []byte) int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed || s.batching || s.raw == nil {
		return 0
	}
	return writeNonblocking(s.raw, p)
}

func (s *socket) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if n > 0 {
		s.lastRead.Store(time.Now().UnixNano())
	}
	if err != nil {
		s.failed.Store(true)
	}
	return n, err
}
