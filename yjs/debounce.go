package yjs

import (
	"sync"
	"time"
)

// debouncer runs fire after changes have paused for wait, or maxWait after
// the first change it has not reported, whichever comes first (lodash's
// debounce with maxWait, trailing edge, as y-partykit's callback uses it).
// fire runs on the timer's goroutine, or on flush's caller, never two at a
// time.
type debouncer struct {
	wait, maxWait time.Duration
	fire          func()
	clock         clock

	mu      sync.Mutex
	pending bool      // a change is not reported yet
	first   time.Time // when the first unreported change came
	timer   stopper
	gen     uint64 // numbers timers: one replaced that fires anyway does nothing

	firing sync.Mutex // held while fire runs
}

// clock is time for the debouncer; tests give a fake one.
type clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) stopper
}

// stopper is a *time.Timer, or a test's fake.
type stopper interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) stopper {
	return time.AfterFunc(d, f)
}

// touch records a change.
func (d *debouncer) touch() {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clock.Now()
	if !d.pending {
		d.pending, d.first = true, now
	}
	if d.timer != nil {
		d.timer.Stop()
	}
	delay := min(d.wait, d.first.Add(d.maxWait).Sub(now))
	d.gen++
	gen := d.gen
	d.timer = d.clock.AfterFunc(max(delay, 0), func() { d.expire(gen) })
}

// expire is a timer going off: it fires unless a later touch or a flush
// replaced it.
func (d *debouncer) expire(gen uint64) {
	d.mu.Lock()
	if gen != d.gen || !d.pending {
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	d.flush()
}

// flush fires now if a change is unreported, and waits for it.
func (d *debouncer) flush() {
	d.firing.Lock()
	defer d.firing.Unlock()
	d.mu.Lock()
	if !d.pending {
		d.mu.Unlock()
		return
	}
	d.pending = false
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.mu.Unlock()
	d.fire()
}
