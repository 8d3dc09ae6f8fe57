package party

import "time"

// keepalive pings the Host's idle connections: one goroutine per Host,
// started with the first connection and stopped by Shutdown, rather than a
// timer per connection.
type keepalive struct {
	stop chan struct{}
	done chan struct{}
}

func (h *Host) ensureKeepalive() {
	if h.pingInterval() < 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.keepalive != nil || h.closing.Load() {
		return
	}
	k := &keepalive{stop: make(chan struct{}), done: make(chan struct{})}
	h.keepalive = k
	go h.runKeepalive(k)
}

func (h *Host) runKeepalive(k *keepalive) {
	defer close(k.done)
	interval, timeout := h.pingInterval(), h.pingTimeout()
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case now := <-t.C:
			cutoff := now.Add(-interval).UnixNano()
			h.eachConnection(func(c *Connection) {
				// A connection busy in a handler is not reading, so it could
				// not see the pong: it is not pinged.
				if c.reading.Load() && c.lastActive.Load() < cutoff && !c.isClosing() && c.pinging.CompareAndSwap(false, true) {
					c.ping(timeout)
				}
			})
		}
	}
}

func (h *Host) stopKeepalive() {
	h.mu.Lock()
	k := h.keepalive
	h.keepalive = nil
	h.mu.Unlock()
	if k != nil {
		close(k.stop)
		<-k.done
	}
}
