package party

import (
	"net"
	"sync"
	"sync/atomic"
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
// It also coalesces writes. coder/websocket flushes every frame with a write
// of its own; between beginBatch and endBatch (the connection's writer
// writing one batch of its queue) the socket gathers those writes in a pooled
// buffer and sends them with one write, so a backlog of n messages costs one
// syscall, not n. Outside a batch, writes (pongs, pings, close frames that
// coder/websocket writes from other goroutines) go straight through; inside
// one they join it. Idle connections hold no batch buffer.
type socket struct {
	net.Conn
	failed   atomic.Bool
	lastRead atomic.Int64 // unix nanoseconds

	wmu      sync.Mutex
	batching bool
	buf      *[]byte // pooled, only during a batch
}

// batchFlushAt bounds what a batch gathers before an early write.
const batchFlushAt = 64 << 10

var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func (s *socket) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
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
