package party

import (
	"time"

	"github.com/coder/websocket"
)

// The writer: one goroutine per connection, started when there is something
// to write (a message, a close frame, a ping) and gone when the queue is
// empty, so an idle connection holds no writer stack.

// startWriterLocked starts the writer goroutine unless one runs.
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
	stats := &c.room.factory.stats
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
		err := c.writeBatch(batch, ping)
		c.writeSince.Store(0)

		n := 0
		for _, m := range batch {
			n += len(m.Bytes())
		}
		if err == nil && len(batch) > 0 {
			stats.sent(len(batch), n)
		}
		c.mu.Lock()
		c.pendingMsgs -= len(batch)
		c.pendingBytes -= n
		c.updateFlowLocked()
		clear(batch)
		c.spare = batch[:0]
		if err != nil {
			c.writing = false
			// A write also fails when the read loop has just answered the
			// client's close frame (or sent 1009): that status, which the
			// read loop records next, is the true one.
			first := c.setClosingLocked(StatusAbnormalClosure, "write failed", err, ClosedBroken)
			c.writeFailed = first
			c.mu.Unlock()
			if first {
				c.abort(StatusAbnormalClosure, "write failed", err, ClosedBroken)
			} else {
				c.ws.CloseNow()
			}
			return
		}
		c.mu.Unlock()
	}
}

// writeBatch writes a ping if asked, then the batch's messages, in one
// write where the socket can.
func (c *Connection) writeBatch(batch []Message, ping bool) (err error) {
	if len(batch) > 0 {
		c.sock.BeginBatch()
		defer func() {
			if ferr := c.sock.EndBatch(); err == nil {
				err = ferr
			}
		}()
	}
	if ping {
		if err := c.sock.Ping(); err != nil {
			return err
		}
	}
	for _, m := range batch {
		if err := c.sock.WriteMessage(m); err != nil {
			return err
		}
	}
	return nil
}

// ping sends a ping frame. The client's pong, like any bytes from it,
// updates the socket's LastRead, which the sweeper watches: no goroutine,
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
	sent, err := c.sock.TryPing()
	c.mu.Lock()
	c.writing = false
	if err != nil {
		// Half a frame on the wire (the kernel short of memory): the stream
		// cannot go on.
		c.mu.Unlock()
		c.abort(StatusAbnormalClosure, "write failed", err, ClosedBroken)
		return
	}
	c.pingDue = !sent // the kernel would not take it at once: the writer sends it
	if c.pingDue || len(c.queue) > 0 || c.closeWrite {
		c.startWriterLocked()
	}
	c.mu.Unlock()
}
