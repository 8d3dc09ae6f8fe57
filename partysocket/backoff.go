package partysocket

import (
	"context"
	"math"
	"time"
)

// delay returns the wait before connection attempt number attempt, counted
// as partysocket counts it: 0 is the first connection (no wait), 1 the
// first reconnection after a close (MinReconnectDelay), and each further
// attempt waits growth times longer, up to MaxReconnectDelay.
func (c *config) delay(attempt int) time.Duration {
	if attempt <= 0 {
		return 0
	}
	d := float64(c.MinReconnectDelay) * math.Pow(c.growth, float64(attempt-1))
	if c.MaxReconnectDelay > 0 && d > float64(c.MaxReconnectDelay) {
		return c.MaxReconnectDelay
	}
	if d >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(d)
}

// clock is the Socket's view of time, replaced in tests to record the
// delays without waiting for them.
type clock struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// sleep waits for d, or until ctx ends (returning its error).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
