package party

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"party/internal/wire"
)

// Connection is one WebSocket connection in a room. Its methods are safe to
// call from any goroutine.
type Connection struct {
	id         string
	uri        string
	remoteAddr string    // the upgrade request's RemoteAddr, for the inspector
	opened     time.Time // when the connection joined, for the inspector
	tags       []string
	room       *Room
	ws         *websocket.Conn
	sock       *wire.Socket
	remote     *Remote // set for a connection held by another node (placement.go): no ws, no sock

	mu           sync.Mutex
	queue        []Message // accepted, not yet taken by the writer
	spare        []Message // the writer's last batch, reused
	pendingMsgs  int       // queued or being written
	pendingBytes int
	writing      bool        // a writer goroutine runs
	closeWrite   bool        // the writer sends the close frame once the queue is empty
	pingDue      bool        // the writer sends a ping frame
	finished     bool        // the connection is gone: no new goroutines
	why          CloseReason // what closed it, for the stats; set with code
	code         StatusCode
	reason       string
	err          error // why the connection failed, for OnError
	writeFailed  bool  // code, reason and err come from a failed write: the read loop's account replaces them
	state        any

	congested      bool         // over the high-water mark (flow.go); guarded by mu
	congestedSince atomic.Int64 // unix nanoseconds since congested; 0 if not
	limiter        limiter      // Host.RateLimit's buckets; read loop only

	closing    atomic.Bool // no more Sends
	workers    sync.WaitGroup
	left       bool // guarded by room.turn
	reading    atomic.Bool
	pingSent   atomic.Int64 // unix nanoseconds of the ping awaiting an answer; 0 if none
	lastActive atomic.Int64 // unix nanoseconds of the last message or pong
	writeSince atomic.Int64 // unix nanoseconds when the batch being written started; 0 when idle
}

// ID returns the connection's id: the first _pk query parameter of its URL
// (partysocket sends one and keeps it across reconnects), or a fresh xid.
func (c *Connection) ID() string { return c.id }

// URI returns the full URL the connection was opened with, query included.
func (c *Connection) URI() string { return c.uri }

// Tags returns the connection's tags, its id first. The caller may modify the
// returned slice.
func (c *Connection) Tags() []string { return slices.Clone(c.tags) }

// Room returns the room the connection belongs to.
func (c *Connection) Room() *Room { return c.room }

// State returns the value last given to SetState, or nil.
func (c *Connection) State() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// SetState attaches a value to the connection, as PartyKit's
// connection.setState. It is safe to call from any goroutine; the value
// itself is not copied, so share it with care.
func (c *Connection) SetState(v any) {
	c.mu.Lock()
	c.state = v
	c.mu.Unlock()
}

// CloseStatus returns the code and reason the connection closed with: the
// code the client sent (or the one the server closed with, whichever came
// first), or 1006 if the socket broke. Before the connection closes, it
// returns 0 and "".
func (c *Connection) CloseStatus() (StatusCode, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.reason
}

// Send queues msg for the connection and returns at once; the connection's
// messages are written in the order they were sent. It returns
// ErrConnectionClosed once the connection is closing. If accepting msg would
// pass Host.SendQueueMessages or Host.SendQueueBytes (an empty queue always
// accepts one message), the connection is closed with StatusPolicyViolation
// and Send returns ErrSendQueueFull. msg's bytes must not change after Send.
func (c *Connection) Send(msg Message) error {
	if c.remote != nil {
		return c.remoteSend(msg)
	}
	h := c.room.host
	n := len(msg.Bytes())
	c.mu.Lock()
	if c.closing.Load() {
		c.mu.Unlock()
		c.room.factory.stats.refusedSend.Add(1)
		return ErrConnectionClosed
	}
	if c.pendingMsgs > 0 && (c.pendingMsgs >= h.sendQueueMessages() || c.pendingBytes+n > h.sendQueueBytes()) {
		c.mu.Unlock()
		c.abort(StatusPolicyViolation, "send queue full", ErrSendQueueFull, ClosedSlow)
		c.room.factory.stats.refusedSend.Add(1)
		return ErrSendQueueFull
	}
	c.queue = append(c.queue, msg)
	c.pendingMsgs++
	c.pendingBytes += n
	c.updateFlowLocked()
	c.startWriterLocked()
	c.mu.Unlock()
	return nil
}

// Close closes the connection with code and reason after the messages
// already queued for it are written, and returns without waiting. The client
// sees code and reason in its close event (partysocket apps use 4000–4999 to
// tell the client to stop retrying). A code of 0 means StatusNormalClosure; a
// reason longer than 123 bytes is cut. Closing a closed connection does
// nothing. OnClose runs once the client has answered or the socket is gone.
func (c *Connection) Close(code StatusCode, reason string) {
	c.closeAfterQueue(code, reason, nil, ClosedByServer)
}

// closeAfterQueue is Close, for the reason why (and err, for OnError).
func (c *Connection) closeAfterQueue(code StatusCode, reason string, err error, why CloseReason) {
	if c.remote != nil {
		c.remoteClose(code, reason, err, why)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.setClosingLocked(code, reason, err, why) {
		return
	}
	c.closeWrite = true
	c.startWriterLocked()
}

// abortCloseTimeout bounds the close handshake of an aborted connection.
const abortCloseTimeout = time.Second

// abort closes the connection now, dropping what is still queued. The close
// frame is attempted in the background; it cannot wait for a client that
// does not read.
func (c *Connection) abort(code StatusCode, reason string, err error, why CloseReason) {
	if c.remote != nil {
		c.remoteClose(code, reason, err, why)
		return
	}
	c.mu.Lock()
	c.setClosingLocked(code, reason, err, why)
	c.pendingMsgs -= len(c.queue)
	for _, m := range c.queue {
		c.pendingBytes -= len(m.Bytes())
	}
	clear(c.queue)
	c.queue = c.queue[:0]
	c.updateFlowLocked()
	c.closeWrite = false
	code, reason = c.code, c.reason
	started := c.goLocked(func() {
		if code == StatusAbnormalClosure {
			c.ws.CloseNow()
		} else {
			// A client that does not read holds the close frame back (a
			// write stuck behind it) and never answers it: coder/websocket
			// would wait 5s for the answer. Give both one second, then
			// close the socket under the handshake.
			c.sock.SetWriteDeadline(time.Now().Add(abortCloseTimeout))
			t := time.AfterFunc(abortCloseTimeout, func() { c.sock.CloseNow() })
			c.ws.Close(websocket.StatusCode(code), reason)
			t.Stop()
		}
	})
	c.mu.Unlock()
	if !started {
		c.ws.CloseNow()
	}
}

// setClosingLocked records the first close status, and why it came; it
// reports whether the connection was still open.
func (c *Connection) setClosingLocked(code StatusCode, reason string, err error, why CloseReason) bool {
	if c.closing.Load() {
		return false
	}
	if code == 0 {
		code = StatusNormalClosure
	}
	c.closing.Store(true)
	c.code, c.reason, c.err, c.why = code, truncateReason(reason), err, why
	c.updateFlowLocked() // a connection being closed holds nobody back
	return true
}

// setReadStatusLocked records the status found by the read loop, replacing
// one set by a write that failed because of it.
func (c *Connection) setReadStatusLocked(code StatusCode, reason string, err error, why CloseReason) bool {
	if c.writeFailed {
		c.writeFailed = false
		c.code, c.reason, c.err, c.why = code, truncateReason(reason), err, why
		return true
	}
	return c.setClosingLocked(code, reason, err, why)
}

func (c *Connection) isClosing() bool { return c.closing.Load() }

// failure returns why the connection failed, or nil if it closed cleanly.
func (c *Connection) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// goLocked starts f on a goroutine the connection waits for before it is
// gone. It reports false when the connection is already gone.
func (c *Connection) goLocked(f func()) bool {
	if c.finished {
		return false
	}
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		f()
	}()
	return true
}

// finish waits for the connection's goroutines once its socket is closed.
func (c *Connection) finish() {
	c.mu.Lock()
	c.finished = true
	c.mu.Unlock()
	c.workers.Wait()
}

// lastSeen returns when the client was last heard from, in unix
// nanoseconds: a message, a pong, or any bytes at all.
func (c *Connection) lastSeen() int64 {
	if c.sock == nil {
		return c.lastActive.Load()
	}
	return max(c.lastActive.Load(), c.sock.LastRead())
}

// queueLen returns how many messages and bytes are queued for the
// connection or being written.
func (c *Connection) queueLen() (msgs, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pendingMsgs, c.pendingBytes
}
