package party

import (
	"context"
	"errors"
	"io"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// serve reads the connection until it ends, then takes it out of its room.
func (c *Connection) serve(joined bool) {
	if !c.readLoop() {
		// The loop went idle after a read that grew this goroutine's
		// stack: it goes on on a fresh one, whose stack is the smallest.
		go c.serve(joined)
		return
	}
	defer c.room.host.leave()
	c.finish()
	c.ended(joined)
}

// readLoop reads messages until the connection closes and hands them to the
// room's OnMessage, one at a time. It reports false if it stopped, the
// connection still open, to go on on a fresh goroutine (see waitForBytes).
func (c *Connection) readLoop() bool {
	r := c.room
	stats := &r.factory.stats
	deep := false
	var owed time.Duration // Host.RateLimit: how long the last message put c over
	for {
		c.throttle(owed)
		r.flow.wait() // a member of the room is congested: read on once it is clear
		c.reading.Store(true)
		if !c.waitForBytes(deep) {
			return false
		}
		deep = true
		typ, data, err := c.ws.Read(context.Background())
		c.reading.Store(false)
		if err == nil && c.sock.Failed() {
			err = io.ErrUnexpectedEOF // the message was cut short (see socket)
		}
		if err != nil {
			c.readFailed(err)
			return true
		}
		now := time.Now()
		c.lastActive.Store(now.UnixNano())
		owed = c.rateDelay(len(data), now)
		stats.received(len(data))
		r.received.Add(1)
		if c.isClosing() {
			continue // closing: wait for the client's close frame, drop data
		}
		msg := Binary(data)
		if typ != websocket.MessageBinary {
			if !utf8.Valid(data) {
				c.closeAfterQueue(StatusInvalidPayload, "invalid UTF-8 in text message", errInvalidUTF8, ClosedInvalidUTF8)
				continue
			}
			msg = TextBytes(data)
		}
		r.handleMessage(c, msg)
	}
}

// handleMessage runs OnMessage for msg from c, in the room's turn, unless c
// has left (a newer connection with the same id may have replaced it).
func (r *Room) handleMessage(c *Connection, msg Message) {
	on := r.handlers.message
	if on == nil {
		return
	}
	r.turn.Lock()
	if !c.left {
		if err := r.runHandler(handlerOnMessage, c, func() { on.OnMessage(msg, c) }); err != nil {
			r.reportError(c, err)
		}
	}
	r.turn.Unlock()
}

// ended takes a connection whose socket (or far node) is done out of the
// room (OnClose, if it joined), counts it, and gives back its slot.
func (c *Connection) ended(joined bool) {
	r := c.room
	if joined {
		r.turn.Lock()
		r.leave(c)
		r.turn.Unlock()
	}
	c.mu.Lock()
	why := c.why
	c.mu.Unlock()
	r.factory.stats.connectionEnded(why)
	r.release(true)
}

// waitForBytes returns once the client has sent something for
// coder/websocket's Read, taking the pongs to the sweeper's pings out of the
// way itself. Read parks some 2.5 KiB deep, which costs a connection a 4 KiB
// stack; waiting here, an idle connection's read loop fits the smallest
// stack, 2 KiB. A goroutine's stack does not shrink back once grown, so a
// loop that has been into Read (deep) hands over to a fresh goroutine rather
// than park: waitForBytes reports false when it should. It returns at once
// where the socket cannot be waited on directly (wire.Socket.CanWait), or
// when Read has work without the socket: bytes in the reader's buffer, or
// those that came with the handshake.
//
// Only the read loop reads from the socket, except coder/websocket's Close,
// which reads the client's answer to a close frame and then closes the
// socket (behaviour 5 in internal/wire). Every caller of Close marks the connection closing under c.mu
// first, so that holding c.mu, and seeing it open, keeps Close from reading
// meanwhile; waiting for bytes holds nothing, and wakes when Close closes
// the socket.
func (c *Connection) waitForBytes(deep bool) bool {
	s := c.sock
	if !s.CanWait() || s.TakeEarly() {
		return true
	}
	for {
		c.mu.Lock()
		idle := !c.closing.Load() && s.Buffered() == 0
		handOver := idle && deep && !s.Readable()
		c.mu.Unlock()
		if handOver {
			return false
		}
		if !idle || !s.WaitReadable() {
			return true
		}
		c.mu.Lock()
		pong := !c.closing.Load() && s.TakePong()
		c.mu.Unlock()
		if !pong {
			return true
		}
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
		if c.setReadStatusLocked(StatusCode(ce.Code), ce.Reason, nil, ClosedByClient) && ce.Code == websocket.StatusNoStatusRcvd {
			c.code = StatusNoStatus
		}
		c.mu.Unlock()
	case errors.Is(err, websocket.ErrMessageTooBig):
		// coder/websocket has sent the 1009 close frame; Close drains the
		// rest of the message and waits for the client's answer.
		c.mu.Lock()
		c.setReadStatusLocked(StatusMessageTooBig, "message too big", err, ClosedTooBig)
		c.mu.Unlock()
		c.ws.Close(websocket.StatusMessageTooBig, "message too big")
	default:
		c.mu.Lock()
		c.setClosingLocked(StatusAbnormalClosure, "", err, ClosedBroken)
		c.mu.Unlock()
	}
	c.ws.CloseNow()
}
