package party

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// StatusCode is a WebSocket close code.
type StatusCode int

// Close codes the package sends or reports, and why.
const (
	StatusNormalClosure   StatusCode = 1000 // Close with code 0, or the client's own normal close
	StatusGoingAway       StatusCode = 1001
	StatusNoStatus        StatusCode = 1005 // the client's close frame carried no code
	StatusAbnormalClosure StatusCode = 1006 // never sent: the socket broke, or missed the keepalive
	StatusInvalidPayload  StatusCode = 1007 // a text message that is not valid UTF-8
	StatusPolicyViolation StatusCode = 1008 // the connection's send queue overflowed (a client that stopped reading)
	StatusMessageTooBig   StatusCode = 1009 // a message over Host.ReadLimit
	StatusInternalError   StatusCode = 1011 // OnStart failed, or OnStart/OnConnect panicked
	StatusServiceRestart  StatusCode = 1012 // Host.Shutdown: partysocket reconnects
	StatusReplaced        StatusCode = 4409 // a newer connection arrived with the same id (like HTTP 409 Conflict)
)

// maxReasonLength is the longest close reason a close frame can carry.
const maxReasonLength = 123

var (
	errInvalidUTF8 = errors.New("party: text message is not valid UTF-8")
	errKeepalive   = errors.New("party: keepalive timeout: no pong within Host.PingTimeout")
	errWriteStuck  = errors.New("party: write timeout: a write took longer than Host.WriteTimeout")
	errPartialPing = errors.New("party: the kernel took only part of a ping frame")
)

// Connection is one WebSocket connection in a room. Its methods are safe to
// call from any goroutine.
type Connection struct {
	id   string
	uri  string
	tags []string
	room *Room
	ws   *websocket.Conn
	sock *socket

	mu           sync.Mutex
	queue        []Message // accepted, not yet taken by the writer
	spare        []Message // the writer's last batch, reused
	pendingMsgs  int       // queued or being written
	pendingBytes int
	writing      bool // a writer goroutine runs
	closeWrite   bool // the writer sends the close frame once the queue is empty
	pingDue      bool // the writer sends a ping frame
	finished     bool // the connection is gone: no new goroutines
	code         StatusCode
	reason       string
	err          error // why the connection failed, for OnError
	writeFailed  bool  // code, reason and err come from a failed write: the read loop's account replaces them
	state        any

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
	h := c.room.host
	n := len(msg.data)
	c.mu.Lock()
	if c.closing.Load() {
		c.mu.Unlock()
		return ErrConnectionClosed
	}
	if c.pendingMsgs > 0 && (c.pendingMsgs >= h.sendQueueMessages() || c.pendingBytes+n > h.sendQueueBytes()) {
		c.mu.Unlock()
		c.abort(StatusPolicyViolation, "send queue full", ErrSendQueueFull)
		return ErrSendQueueFull
	}
	c.queue = append(c.queue, msg)
	c.pendingMsgs++
	c.pendingBytes += n
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
	c.closeAfterQueue(code, reason, nil)
}

func (c *Connection) closeAfterQueue(code StatusCode, reason string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.setClosingLocked(code, reason, err) {
		return
	}
	c.closeWrite = true
	c.startWriterLocked()
}

// abort closes the connection now, dropping what is still queued. The close
// frame is attempted in the background; it cannot wait for a client that
// does not read.
func (c *Connection) abort(code StatusCode, reason string, err error) {
	c.mu.Lock()
	c.setClosingLocked(code, reason, err)
	c.pendingMsgs -= len(c.queue)
	for _, m := range c.queue {
		c.pendingBytes -= len(m.data)
	}
	clear(c.queue)
	c.queue = c.queue[:0]
	c.closeWrite = false
	code, reason = c.code, c.reason
	started := c.goLocked(func() {
		if code == StatusAbnormalClosure {
			c.ws.CloseNow()
		} else {
			// A write stuck on a client that does not read would hold the
			// close frame back for coder/websocket's 5s: give it 1s.
			c.sock.SetWriteDeadline(time.Now().Add(time.Second))
			c.ws.Close(websocket.StatusCode(code), reason)
		}
	})
	c.mu.Unlock()
	if !started {
		c.ws.CloseNow()
	}
}

// setClosingLocked records the first close status; it reports whether the
// connection was still open.
func (c *Connection) setClosingLocked(code StatusCode, reason string, err error) bool {
	if c.closing.Load() {
		return false
	}
	if code == 0 {
		code = StatusNormalClosure
	}
	c.closing.Store(true)
	c.code, c.reason, c.err = code, truncateReason(reason), err
	return true
}

// setReadStatusLocked records the status found by the read loop, replacing
// one set by a write that failed because of it.
func (c *Connection) setReadStatusLocked(code StatusCode, reason string, err error) bool {
	if c.writeFailed {
		c.writeFailed = false
		c.code, c.reason, c.err = code, truncateReason(reason), err
		return true
	}
	return c.setClosingLocked(code, reason, err)
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

// startWriterLocked starts the writer goroutine unless one runs. The writer
// exists only while there is something to write, so an idle connection holds
// no writer stack.
func (c *Connection) startWriterLocked() {
	if c.writing || c.finished {
		return
	}
	c.writing = true
	c.workers.Add(1)
	go c.writeLoop()
}

// writeLoop writes the queue in batches until it is empty. Writes take no
// context: the Host's sweeper drops a connection whose batch has been
// writing for longer than WriteTimeout (see writeSince).
func (c *Connection) writeLoop() {
	defer c.workers.Done()
	for {
		c.mu.Lock()
		ping := c.pingDue && !c.closing.Load()
		c.pingDue = false
		if len(c.queue) == 0 && !ping {
			if c.closeWrite {
				c.closeWrite = false
				code, reason := c.code, c.reason
				c.mu.Unlock()
				c.ws.Close(websocket.StatusCode(code), reason)
				continue
			}
			c.writing = false
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue = c.spare[:0]
		c.spare = nil
		c.mu.Unlock()

		c.writeSince.Store(time.Now().UnixNano())
		var err error
		if len(batch) > 0 {
			c.sock.beginBatch() // the batch's frames leave in one write
		}
		if ping {
			// Only this goroutine writes data frames, and coder/websocket
			// writes each control frame in one Write: between two messages
			// no frame is half written, so the ping can go in as is.
			_, err = c.sock.Write(pingFrame)
		}
		for _, m := range batch {
			if err != nil {
				break
			}
			if err = c.sock.writeMessage(m); err != nil {
				break
			}
		}
		if len(batch) > 0 {
			if ferr := c.sock.endBatch(); err == nil {
				err = ferr
			}
		}
		c.writeSince.Store(0)

		c.mu.Lock()
		c.pendingMsgs -= len(batch)
		for _, m := range batch {
			c.pendingBytes -= len(m.data)
		}
		clear(batch)
		c.spare = batch[:0]
		if err != nil {
			c.writing = false
			// A write also fails when the read loop has just answered the
			// client's close frame (or sent 1009): that status, which the
			// read loop records next, is the true one.
			first := c.setClosingLocked(StatusAbnormalClosure, "write failed", err)
			c.writeFailed = first
			c.mu.Unlock()
			if first {
				c.abort(StatusAbnormalClosure, "write failed", err)
			} else {
				c.ws.CloseNow()
			}
			return
		}
		c.mu.Unlock()
	}
}

// readLoop reads messages until the connection closes and hands them to the
// room's OnMessage, one at a time. It reports false if it stopped, the
// connection still open, to go on on a fresh goroutine (see waitForBytes).
func (c *Connection) readLoop() bool {
	r := c.room
	deep := false
	for {
		c.reading.Store(true)
		if !c.waitForBytes(deep) {
			return false
		}
		deep = true
		typ, data, err := c.ws.Read(context.Background())
		c.reading.Store(false)
		if err == nil && c.sock.failed.Load() {
			err = io.ErrUnexpectedEOF // the message was cut short (see socket)
		}
		if err != nil {
			c.readFailed(err)
			return true
		}
		c.lastActive.Store(time.Now().UnixNano())
		if c.isClosing() {
			continue // closing: wait for the client's close frame, drop data
		}
		msg := Message{data: data, binary: typ == websocket.MessageBinary}
		if !msg.binary && !utf8.Valid(data) {
			c.closeAfterQueue(StatusInvalidPayload, "invalid UTF-8 in text message", errInvalidUTF8)
			continue
		}
		if r.handlers.message == nil {
			continue
		}
		r.turn.Lock()
		if !c.left { // a newer connection with the same id may have replaced c meanwhile
			if err := r.call("OnMessage", c, func() { r.handlers.message.OnMessage(msg, c) }); err != nil {
				r.reportError(c, err)
			}
		}
		r.turn.Unlock()
	}
}

// waitForBytes returns once the client has sent something for
// coder/websocket's Read, taking the pongs to the sweeper's pings out of the
// way itself. Read parks some 2.5 KiB deep, which costs a connection a 4 KiB
// stack; waiting here, an idle connection's read loop fits the smallest
// stack, 2 KiB. A goroutine's stack does not shrink back once grown, so a
// loop that has been into Read (deep) hands over to a fresh goroutine rather
// than park: waitForBytes reports false when it should. It returns at once
// where the socket cannot be waited on directly (see rawConn), or when Read
// has work without the socket: bytes in the reader's buffer, or those that
// came with the handshake.
//
// Only the read loop reads from the socket, except coder/websocket's Close,
// which reads the client's answer to a close frame and then closes the
// socket. Every caller of Close marks the connection closing under c.mu
// first, so that holding c.mu, and seeing it open, keeps Close from reading
// meanwhile; waiting for bytes holds nothing, and wakes when Close closes
// the socket.
func (c *Connection) waitForBytes(deep bool) bool {
	s := c.sock
	if s.raw == nil {
		return true
	}
	if s.early {
		s.early = false
		return true
	}
	for {
		c.mu.Lock()
		idle := !c.closing.Load() && s.br.Buffered() == 0
		handOver := idle && deep && !readable(s.raw)
		c.mu.Unlock()
		if handOver {
			return false
		}
		if !idle || !waitReadable(s.raw) {
			return true
		}
		c.mu.Lock()
		pong := !c.closing.Load() && takePong(s.raw)
		c.mu.Unlock()
		if !pong {
			return true
		}
		s.lastRead.Store(time.Now().UnixNano())
	}
}

// readFailed records how the connection ended, given the error that ended
// its read loop, and finishes the close handshake.
func (c *Connection) readFailed(err error) {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		// The client's close frame; coder/websocket has answered it with the
		// same code and reason.
		c.mu.Lock()
		if c.setReadStatusLocked(StatusCode(ce.Code), ce.Reason, nil) && ce.Code == websocket.StatusNoStatusRcvd {
			c.code = StatusNoStatus
		}
		c.mu.Unlock()
	case errors.Is(err, websocket.ErrMessageTooBig):
		// coder/websocket has sent the 1009 close frame; Close drains the
		// rest of the message and waits for the client's answer.
		c.mu.Lock()
		c.setReadStatusLocked(StatusMessageTooBig, "message too big", err)
		c.mu.Unlock()
		c.ws.Close(websocket.StatusMessageTooBig, "message too big")
	default:
		c.mu.Lock()
		c.setClosingLocked(StatusAbnormalClosure, "", err)
		c.mu.Unlock()
	}
	c.ws.CloseNow()
}

// finish waits for the connection's goroutines once its socket is closed.
func (c *Connection) finish() {
	c.mu.Lock()
	c.finished = true
	c.mu.Unlock()
	c.workers.Wait()
}

// pingFrame is an unmasked ping with no payload, as a server sends it.
var pingFrame = []byte{0x89, 0x00}

// ping sends a ping frame. The client's pong, like any bytes from it,
// updates the socket's lastRead, which the sweeper watches: no goroutine,
// timer or context per ping. When no writer runs, the caller (the sweeper)
// takes the writer's role for one non-blocking write of the 2-byte frame, so
// pinging an idle connection starts no goroutine and allocates no buffer;
// only if the kernel will not take the frame at once (or the socket is not
// plain TCP, such as TLS) does the writer goroutine send it.
func (c *Connection) ping(now int64) {
	c.mu.Lock()
	if c.closing.Load() {
		c.mu.Unlock()
		return
	}
	c.pingSent.Store(now)
	if c.writing || c.finished {
		c.pingDue = true
		c.startWriterLocked()
		c.mu.Unlock()
		return
	}
	c.writing = true // Send and Close only queue meanwhile
	c.mu.Unlock()
	n := c.sock.writeNow(pingFrame)
	c.mu.Lock()
	c.writing = false
	if n > 0 && n < len(pingFrame) {
		// Half a frame on the wire (the kernel short of memory): the stream
		// cannot go on.
		c.mu.Unlock()
		c.abort(StatusAbnormalClosure, "write failed", errPartialPing)
		return
	}
	c.pingDue = n == 0 // the kernel would not take it at once: the writer sends it
	if c.pingDue || len(c.queue) > 0 || c.closeWrite {
		c.startWriterLocked()
	}
	c.mu.Unlock()
}

// lastSeen returns when the client was last heard from, in unix
// nanoseconds: a message, a pong, or any bytes at all.
func (c *Connection) lastSeen() int64 { return max(c.lastActive.Load(), c.sock.lastRead.Load()) }

func truncateReason(s string) string {
	if len(s) <= maxReasonLength {
		return s
	}
	s = s[:maxReasonLength]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
