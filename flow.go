package party

import (
	"sync"
	"sync/atomic"
	"time"
)

// Flow control: what keeps one fast sender from emptying its room.
//
// Back-pressure. A connection whose queue holds more than its high-water
// mark (a quarter of SendQueueMessages or of SendQueueBytes) is congested.
// While any member of a room is congested, the room reads no further
// message from any of its members: each read loop, having handled a
// message, waits until the room is clear again before it reads the next.
// The kernel's buffers then fill and TCP slows every sender to the pace of
// the room's readers. A congested connection is clear again once its queue
// is back under half its high-water mark, or once it is closing (a
// connection being closed holds nobody back).
//
// What it bounds. Each sender adds at most the broadcasts of one message
// past a member's high-water mark before it waits, so a reader's queue
// stays under the high-water mark plus one message per sender of its room.
// Messages sent from outside the room's handlers (a background job's
// Broadcast, another room's Call) are not held back: the hard bounds,
// SendQueueMessages and SendQueueBytes, still close a connection whose
// queue would pass them.
//
// Across nodes (placement.go): a socket held by a relay room tells its
// Relay when it is congested and when it is clear again, and the node where
// the room runs marks the matching remote connection with
// Remote.Congested, so that the room holds its members back there too; a
// remote connection's own queue is its node's, and so is judging it slow.
//
// Slow clients are judged on their own: a connection that stays congested
// for longer than Host.SlowClientTimeout (it reads, but slower than its
// room's traffic, or not at all) is closed with 1008, reason "slow
// consumer", and its room goes on at the pace of the others.
//
// Rate limits (Host.RateLimit, off by default) slow a sender that goes over
// them: its read loop waits before reading on; it is never closed for it.

// flow is a room's count of congested members, with a channel closed when
// the count falls back to zero, for the read loops that wait.
type flow struct {
	congested atomic.Int32 // read without the lock on every message
	mu        sync.Mutex   // a leaf: taken under Connection.mu
	clear     chan struct{}
}

func (f *flow) congest() {
	f.mu.Lock()
	if f.congested.Add(1) == 1 {
		f.clear = make(chan struct{})
	}
	f.mu.Unlock()
}

func (f *flow) decongest() {
	f.mu.Lock()
	if f.congested.Add(-1) == 0 {
		close(f.clear)
		f.clear = nil
	}
	f.mu.Unlock()
}

// wait returns once no member of the room is congested.
func (f *flow) wait() {
	if f.congested.Load() == 0 {
		return
	}
	f.mu.Lock()
	ch := f.clear
	f.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// updateFlowLocked marks c congested or clear from its queue, with
// hysteresis (over the high-water mark: congested; under half of it, or
// closing: clear). The caller holds c.mu.
func (c *Connection) updateFlowLocked() {
	if c.remote != nil {
		// Its queue is on its node, which says when it is congested
		// (Remote.Congested); closing clears it here too.
		if c.closing.Load() {
			c.setCongestedLocked(false)
		}
		return
	}
	h := c.room.host
	highMsgs, highBytes := h.sendQueueMessages()/4, h.sendQueueBytes()/4
	switch {
	case !c.congested && !c.closing.Load() && (c.pendingMsgs > highMsgs || c.pendingBytes > highBytes):
		c.setCongestedLocked(true)
	case c.congested && (c.closing.Load() || c.pendingMsgs <= highMsgs/2 && c.pendingBytes <= highBytes/2):
		c.setCongestedLocked(false)
	}
}

// setCongestedLocked marks c congested or clear, counting it in its room's
// flow, and tells the room's Relay, if it has one (so that the room where
// it runs holds back too). The caller holds c.mu.
func (c *Connection) setCongestedLocked(congested bool) {
	if c.congested == congested {
		return
	}
	c.congested = congested
	if congested {
		c.congestedSince.Store(time.Now().UnixNano())
		c.room.flow.congest()
	} else {
		c.congestedSince.Store(0)
		c.room.flow.decongest()
	}
	if rl := c.room.relay; rl != nil {
		rl.Congested(c, congested)
	}
}

// RateLimit bounds what one connection may send: at most
// MessagesPerSecond messages and BytesPerSecond bytes of payload a second,
// on average, with bursts of up to Burst's worth of each. A connection over
// its limit is slowed, never closed: its read loop waits until it is back
// under, and TCP slows the client. The zero value means no limit.
type RateLimit struct {
	MessagesPerSecond float64 // zero: no limit on messages
	BytesPerSecond    float64 // zero: no limit on bytes
	// Burst is how much of each rate may arrive at once: a burst of
	// Burst×MessagesPerSecond messages and Burst×BytesPerSecond bytes.
	// Zero means one second.
	Burst time.Duration
}

// limiter is a connection's token buckets for Host.RateLimit; only its read
// loop uses it.
type limiter struct {
	msgs, bytes float64 // tokens left; negative: owed
	last        time.Time
}

// delay takes one message of n bytes from the buckets and returns how long
// the sender must wait before its next message is read.
func (l *limiter) delay(limit RateLimit, n int, now time.Time) time.Duration {
	burst := limit.Burst
	if burst <= 0 {
		burst = time.Second
	}
	if l.last.IsZero() {
		l.msgs, l.bytes = limit.MessagesPerSecond*burst.Seconds(), limit.BytesPerSecond*burst.Seconds()
		l.last = now
	}
	elapsed := now.Sub(l.last).Seconds()
	l.last = now
	var wait float64
	refill := func(tokens *float64, rate, spent float64) {
		if rate <= 0 {
			return
		}
		*tokens = min(*tokens+elapsed*rate, rate*burst.Seconds()) - spent
		if *tokens < 0 {
			wait = max(wait, -*tokens/rate)
		}
	}
	refill(&l.msgs, limit.MessagesPerSecond, 1)
	refill(&l.bytes, limit.BytesPerSecond, float64(n))
	return time.Duration(wait * float64(time.Second))
}

// rateDelay takes a message of n bytes from c's rate limit and returns how
// long to wait before reading the next one: zero without a limit.
func (c *Connection) rateDelay(n int, now time.Time) time.Duration {
	limit := c.room.host.RateLimit
	if limit == (RateLimit{}) {
		return 0
	}
	return c.limiter.delay(limit, n, now)
}

// rateLimitStep bounds one wait of a rate-limited read loop, so that a
// connection being closed is noticed.
const rateLimitStep = 100 * time.Millisecond

// throttle waits d, in steps, unless c is closing.
func (c *Connection) throttle(d time.Duration) {
	for d > 0 && !c.isClosing() {
		step := min(d, rateLimitStep)
		time.Sleep(step)
		d -= step
	}
}
