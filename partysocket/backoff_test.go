package partysocket

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"party"
)

func TestDelay(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		o    Options
		want []time.Duration // for attempts 0, 1, 2, ...
	}{
		{"partysocket's defaults", Options{},
			[]time.Duration{0, 3000 * ms, 3900 * ms, 5070 * ms, 6591 * ms, 8568300 * time.Microsecond, 10000 * ms, 10000 * ms}},
		{"growth 2 capped", Options{MinReconnectDelay: 10 * ms, ReconnectGrowth: 2, MaxReconnectDelay: 50 * ms},
			[]time.Duration{0, 10 * ms, 20 * ms, 40 * ms, 50 * ms, 50 * ms}},
		{"constant", Options{MinReconnectDelay: 7 * ms, ReconnectGrowth: 1},
			[]time.Duration{0, 7 * ms, 7 * ms, 7 * ms}},
		{"no wait", Options{MinReconnectDelay: -1},
			[]time.Duration{0, 0, 0}},
		{"no upper bound", Options{MinReconnectDelay: time.Second, ReconnectGrowth: 2, MaxReconnectDelay: -1},
			[]time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Host, tc.o.Room = "h", "r"
			c, err := tc.o.config()
			if err != nil {
				t.Fatal(err)
			}
			for attempt, want := range tc.want {
				// 1.3 is not exact in binary: allow a microsecond.
				if got := c.delay(attempt); got < want-time.Microsecond || got > want+time.Microsecond {
					t.Errorf("delay(%d) = %v, want %v", attempt, got, want)
				}
			}
		})
	}
	huge, _ := Options{Host: "h", Room: "r", MinReconnectDelay: time.Second, ReconnectGrowth: 2, MaxReconnectDelay: -1}.config()
	if d := huge.delay(10000); d != math.MaxInt64 {
		t.Errorf("delay(10000) without a bound = %v, want the largest Duration", d)
	}
	capped, _ := Options{Host: "h", Room: "r"}.config()
	if d := capped.delay(1 << 30); d != DefaultMaxReconnectDelay {
		t.Errorf("delay(2^30) = %v, want %v", d, DefaultMaxReconnectDelay)
	}
}

// fakeClock records the delays the Socket asks for without waiting, and
// lets the test move time on (for MinUptime).
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps chan time.Duration
}

func (c *fakeClock) clock() clock {
	return clock{
		now: func() time.Time {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.t
		},
		sleep: func(ctx context.Context, d time.Duration) error {
			c.sleeps <- d
			return ctx.Err()
		},
	}
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The delays before each attempt grow by the factor while attempts fail,
// keep growing when a connection closes before MinUptime, and start again
// from MinReconnectDelay once a connection stayed up for MinUptime: against
// a real party server, with the clock recorded.
func TestBackoffGrowsAndResets(t *testing.T) {
	var refuse atomic.Int64
	refuse.Store(5) // the first five attempts fail
	h := party.Handler(func(*party.Room) party.Server { return struct{}{} })
	h.IdleTimeout = -1
	h.BeforeConnect = func(r *http.Request, _, _ string) (*http.Request, error) {
		if refuse.Add(-1) >= 0 {
			return nil, &party.HTTPError{Status: http.StatusServiceUnavailable, Message: "not yet"}
		}
		return r, nil
	}
	srv := httptest.NewServer(h)
	defer func() {
		h.Shutdown(context.Background())
		srv.Close()
	}()

	fc := &fakeClock{t: time.Unix(1e9, 0), sleeps: make(chan time.Duration, 100)}
	opened := make(chan struct{}, 10)
	cfg, err := Options{
		Host: strings.TrimPrefix(srv.URL, "http://"), Room: "r", ID: "b",
		MinReconnectDelay: 10 * time.Millisecond,
		ReconnectGrowth:   2,
		MaxReconnectDelay: time.Second,
		MinUptime:         time.Minute,
		OnOpen:            func(*Socket) { opened <- struct{}{} },
	}.config()
	if err != nil {
		t.Fatal(err)
	}
	s := start(cfg, fc.clock())
	defer s.Close()

	expect := func(want ...time.Duration) {
		t.Helper()
		for i, w := range want {
			select {
			case d := <-fc.sleeps:
				if d != w*time.Millisecond {
					t.Fatalf("wait %d: got %v, want %v", i, d, w*time.Millisecond)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("wait %d: the Socket asked for none", i)
			}
		}
		select {
		case <-opened:
		case <-time.After(10 * time.Second):
			t.Fatal("no connection opened")
		}
	}
	var last *party.Connection
	closeServerSide := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var c *party.Connection
			if r := h.Room(party.DefaultParty, "r"); r != nil {
				c = r.GetConnection("b")
			}
			if c != nil && c != last {
				last = c
				c.Close(4000, "again")
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the server has no new connection")
			}
			time.Sleep(time.Millisecond)
		}
	}

	expect(0, 10, 20, 40, 80, 160) // first connection: no wait; then five failures
	closeServerSide()              // up for less than MinUptime: a failure
	expect(320)
	fc.advance(time.Minute) // up for MinUptime: the count starts again
	closeServerSide()
	expect(10)
	refuse.Store(2)
	closeServerSide()
	expect(20, 40, 80)
}
