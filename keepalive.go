package party

import "time"

// sweeper is the Host's one maintenance goroutine, started with the first
// connection and stopped by Shutdown (rather than a timer per connection):
// it pings connections that have been silent for PingInterval, drops
// connections whose current write has taken longer than WriteTimeout, and
// closes those that stayed over their high-water mark for
// SlowClientTimeout (flow.go).
type sweeper struct {
	stop chan struct{}
	done chan struct{}
}

func (h *Host) ensureSweeper() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sweeper != nil || h.closing.Load() {
		return
	}
	k := &sweeper{stop: make(chan struct{}), done: make(chan struct{})}
	h.sweeper = k
	go h.sweep(k)
}

func (h *Host) sweep(k *sweeper) {
	defer close(k.done)
	interval, timeout, writeTimeout, slowTimeout := h.pingInterval(), h.pingTimeout(), h.writeTimeout(), h.slowClientTimeout()
	tick := min(writeTimeout, slowTimeout) / 2
	if interval > 0 {
		tick = min(tick, interval/2, timeout/2)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case now := <-t.C:
			silent := now.Add(-interval).UnixNano()
			stuck := now.Add(-writeTimeout).UnixNano()
			slow := now.Add(-slowTimeout).UnixNano()
			h.eachConnection(func(c *Connection) {
				if c.isClosing() || c.remote != nil { // a remote socket is its node's to watch
					return
				}
				if since := c.writeSince.Load(); since != 0 && since < stuck {
					c.abort(StatusAbnormalClosure, "write timeout", errWriteStuck, ClosedWriteTimeout)
					return
				}
				if since := c.congestedSince.Load(); since != 0 && since < slow {
					c.abort(StatusPolicyViolation, "slow consumer", errSlowClient, ClosedSlow)
					return
				}
				if interval <= 0 || !c.reading.Load() {
					// A connection busy in a handler is not reading, so its
					// pong could not be seen: it is left alone until it reads.
					return
				}
				seen := c.lastSeen()
				if sent := c.pingSent.Load(); sent != 0 {
					switch {
					case seen >= sent: // answered, or bytes arriving (a long frame, the pong behind it)
						c.pingSent.CompareAndSwap(sent, 0)
					case now.UnixNano()-sent > int64(timeout):
						c.abort(StatusAbnormalClosure, "keepalive timeout", errKeepalive, ClosedKeepalive)
					}
					return
				}
				if seen < silent {
					c.ping(now.UnixNano())
				}
			})
		}
	}
}

func (h *Host) stopSweeper() {
	h.mu.Lock()
	k := h.sweeper
	h.sweeper = nil
	h.mu.Unlock()
	if k != nil {
		close(k.stop)
		<-k.done
	}
}
