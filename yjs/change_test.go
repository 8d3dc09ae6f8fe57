package yjs

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"time"

	"party/storage"
)

// fakeClock is a clock whose time moves only when a test advances it; timers
// due by then run on the test's goroutine, in order.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
	clock   *fakeClock
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f, clock: c}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// advance moves time on by d, running each timer that falls due, at its time.
func (c *fakeClock) advance(d time.Duration) {
	end := c.Now().Add(d)
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.stopped && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		next.stopped = true
		c.now = next.at
		c.mu.Unlock()
		next.f()
	}
}

func TestDebounce(t *testing.T) {
	clock := newFakeClock()
	start := clock.Now()
	var fired []time.Duration // since start
	d := &debouncer{wait: 2 * time.Second, maxWait: 10 * time.Second, clock: clock,
		fire: func() { fired = append(fired, clock.Now().Sub(start)) }}
	expect := func(what string, want ...time.Duration) {
		t.Helper()
		if !slices.Equal(fired, want) {
			t.Fatalf("%s: fired at %v, want %v", what, fired, want)
		}
	}

	d.touch() // 0s
	clock.advance(1900 * time.Millisecond)
	d.touch() // 1.9s: the wait starts again
	clock.advance(1900 * time.Millisecond)
	expect("changes 1.9s apart")
	clock.advance(100 * time.Millisecond)
	expect("2s after the last change", 3900*time.Millisecond)

	// Changes every second never pause for 2s: maxWait fires 10s after the
	// first unreported one, then again 10s later.
	fired = nil
	begin := clock.Now().Sub(start)
	for range 25 {
		d.touch()
		clock.advance(time.Second)
	}
	// The last change came at begin+24s; it is now begin+25s.
	expect("a change every second", begin+10*time.Second, begin+20*time.Second)
	clock.advance(time.Second)
	expect("…then a pause", begin+10*time.Second, begin+20*time.Second, begin+26*time.Second)

	// flush fires at once, and the timer then does nothing.
	fired = nil
	d.touch()
	d.flush()
	now := clock.Now().Sub(start)
	clock.advance(time.Minute)
	d.flush()
	expect("flush", now)
}

func TestOnChange(t *testing.T) {
	clock := newFakeClock()
	docs := make(chan []byte, 10)
	opts := &Options{OnChange: func(doc []byte) { docs <- doc }, clock: clock}
	store := storage.NewMemoryStore()
	h := serveRooms(t, opts, store)
	a, _ := h.dial("r")
	ups := edits(1, 3)
	for _, u := range ups {
		a.send(syncMsg(syncUpdate, u))
	}
	a.fence()
	select {
	case doc := <-docs:
		t.Fatalf("OnChange called before the wait: %x", doc)
	default:
	}
	clock.advance(DefaultOnChangeWait) // runs the timer here, and OnChange with it
	select {
	case doc := <-docs:
		sameDocument(t, "OnChange's document", doc, mustMerge(t, ups...))
	default:
		t.Fatal("OnChange not called 2s after the last change")
	}

	// The last connection leaving makes the pending call at once.
	more := typing(1, 3, "!")
	a.send(syncMsg(syncUpdate, more))
	a.fence()
	a.close()
	select {
	case doc := <-docs:
		sameDocument(t, "OnChange's document at the last leave", doc, mustMerge(t, append(ups, more)...))
	case <-time.After(5 * time.Second):
		t.Fatal("OnChange not called within 5s of the last connection leaving")
	}
	h.dropped("r")
	clock.advance(time.Hour)
	select {
	case doc := <-docs:
		t.Fatalf("OnChange called again with nothing new: %x", doc)
	default:
	}
}

// OnChange with real timers: a burst of changes is reported once, with all
// of them, within the wait.
func TestOnChangeTimed(t *testing.T) {
	docs := make(chan []byte, 10)
	opts := &Options{OnChange: func(doc []byte) { docs <- doc }, OnChangeWait: 20 * time.Millisecond, OnChangeMaxWait: time.Second}
	h := serveRooms(t, opts, nil)
	a, _ := h.dial("r")
	ups := edits(1, 10)
	for _, u := range ups {
		a.send(syncMsg(syncUpdate, u))
	}
	a.fence()
	want := mustMerge(t, ups...)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case doc := <-docs:
			if merged := mustMerge(t, doc, want); bytes.Equal(merged, normalized(t, doc)) {
				return // doc holds every update
			}
		case <-deadline:
			t.Fatal("OnChange did not report the burst within 5s")
		}
	}
}
