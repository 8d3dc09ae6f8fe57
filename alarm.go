package party

import (
	"errors"
	"time"
)

// OnAlarmHandler is implemented by a Server that wakes up on a timer, as
// PartyKit's onAlarm. OnAlarm runs in the room's turn, like every handler,
// after OnStart.
type OnAlarmHandler interface {
	OnAlarm()
}

// ErrRoomGone is returned when a room that has been dropped (idle, or by
// Shutdown) is asked to do something that needs it live.
var ErrRoomGone = errors.New("party: room is no longer live")

// SetAlarm sets the room's one alarm to go off at t, replacing any other
// (PartyKit's room.storage.setAlarm). When it goes off, the alarm is cleared
// and the Server's OnAlarm runs in the room's turn; OnAlarm may set the next
// one. A time in the past goes off at once. While an alarm is set, the room
// is not dropped for being idle. Safe to call from any goroutine.
func (r *Room) SetAlarm(t time.Time) error {
	r.life.Lock()
	defer r.life.Unlock()
	if r.dead {
		return ErrRoomGone
	}
	if r.alarmTimer == nil {
		r.refs++ // the alarm keeps the room live
	} else {
		r.alarmTimer.Stop()
	}
	r.alarmAt = t
	r.alarmGen++
	gen := r.alarmGen
	r.alarmTimer = time.AfterFunc(time.Until(t), func() { r.ring(gen) })
	return nil
}

// GetAlarm returns the time the room's alarm is set for, and false if none is.
func (r *Room) GetAlarm() (time.Time, bool) {
	r.life.Lock()
	defer r.life.Unlock()
	return r.alarmAt, r.alarmTimer != nil
}

// DeleteAlarm clears the room's alarm, if one is set.
func (r *Room) DeleteAlarm() {
	r.life.Lock()
	defer r.life.Unlock()
	r.clearAlarmLocked()
}

func (r *Room) clearAlarmLocked() {
	if r.alarmTimer == nil {
		return
	}
	r.alarmTimer.Stop()
	r.alarmTimer = nil
	r.alarmAt = time.Time{}
	r.releaseLocked()
}

// ring runs OnAlarm for alarm number gen, unless it was replaced or deleted
// meanwhile.
func (r *Room) ring(gen uint64) {
	h := r.host
	if !h.enter() {
		return // shutting down
	}
	defer h.leave()
	if err := r.lock(); err != nil {
		// OnStart failed: try again shortly, as the next request would.
		r.life.Lock()
		if r.alarmTimer != nil && r.alarmGen == gen {
			r.alarmTimer.Reset(time.Second)
		}
		r.life.Unlock()
		return
	}
	r.life.Lock()
	current := r.alarmTimer != nil && r.alarmGen == gen
	if current {
		r.alarmTimer = nil
		r.alarmAt = time.Time{} // the alarm's reference holds the room through OnAlarm
	}
	r.life.Unlock()
	if current {
		if on, ok := r.server.(OnAlarmHandler); ok {
			_ = r.call("OnAlarm", nil, on.OnAlarm)
		}
	}
	r.unlock()
	if current {
		r.release(false) // the alarm's reference: the room may now go idle
	}
}
