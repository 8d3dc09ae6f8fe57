package party

import (
	"time"
)

// SetAlarm sets the room's one alarm to go off at t, replacing any other
// (PartyKit's room.storage.setAlarm); the zero Time deletes it, as
// DeleteAlarm. The time is kept in the Host's alarm store (see
// [Host.Storage]), so with a durable one it survives a restart (see
// [Host.ResumeAlarms]). When the alarm goes off, the Server's OnAlarm runs
// in the room's turn; the alarm is cleared from the store once OnAlarm
// returns, unless OnAlarm set the next one (so an alarm interrupted by a
// crash fires again after the restart). A time in the past goes off at once.
// While an alarm is set, the room is not dropped for being idle. Safe to call
// from any goroutine; it returns ErrRoomGone if the room is not live, and the
// store's error if the time could not be kept.
func (r *Room) SetAlarm(t time.Time) error {
	if t.IsZero() {
		return r.DeleteAlarm()
	}
	r.alarmMu.Lock()
	defer r.alarmMu.Unlock()
	if r.openedStorage() == nil || r.isDead() {
		return ErrRoomGone
	}
	_, alarms := r.host.stores()
	if err := alarms.SetAlarm(r.key.party, r.key.id, t); err != nil {
		return err
	}
	return r.scheduleAlarm(t)
}

// GetAlarm returns the time the room's alarm is set for, and false if none is.
func (r *Room) GetAlarm() (time.Time, bool) {
	r.life.Lock()
	defer r.life.Unlock()
	return r.alarmAt, r.alarmTimer != nil
}

// DeleteAlarm clears the room's alarm, if one is set, from the room and from
// the alarm store.
func (r *Room) DeleteAlarm() error {
	r.alarmMu.Lock()
	defer r.alarmMu.Unlock()
	if r.openedStorage() == nil {
		return ErrRoomGone
	}
	_, alarms := r.host.stores()
	err := alarms.SetAlarm(r.key.party, r.key.id, time.Time{})
	r.life.Lock()
	defer r.life.Unlock()
	r.clearAlarmLocked()
	return err
}

// scheduleAlarm arms the room's timer for t. A set alarm holds a reference on
// the room, so the room is not dropped while it waits. The caller holds
// alarmMu.
func (r *Room) scheduleAlarm(t time.Time) error {
	r.life.Lock()
	defer r.life.Unlock()
	if r.dead {
		return ErrRoomGone
	}
	if r.alarmTimer == nil {
		r.refs++
		if r.idleTimer != nil {
			r.idleTimer.Stop()
			r.idleTimer = nil
		}
	} else {
		r.alarmTimer.Stop()
	}
	r.alarmAt = t
	r.alarmGen++
	gen := r.alarmGen
	r.alarmTimer = time.AfterFunc(time.Until(t), func() { r.ring(gen) })
	return nil
}

func (r *Room) clearAlarmLocked() {
	if r.alarmTimer == nil {
		return
	}
	r.alarmTimer.Stop()
	r.alarmTimer = nil
	r.alarmAt = time.Time{}
	r.alarmGen++
	r.releaseLocked()
}

// ring runs OnAlarm for alarm number gen, unless it was replaced or deleted
// meanwhile.
func (r *Room) ring(gen uint64) {
	h := r.host
	if !h.enter() {
		return // shutting down; a durable alarm fires after the restart
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
		r.alarmTimer = nil // its reference holds the room through OnAlarm
		r.alarmAt = time.Time{}
	}
	r.life.Unlock()
	if !current {
		r.unlock()
		return
	}
	if on := r.handlers.alarm; on != nil {
		_ = r.runHandler(handlerOnAlarm, nil, on.OnAlarm)
	}
	r.alarmMu.Lock()
	r.life.Lock()
	rearmed := r.alarmGen != gen
	r.life.Unlock()
	if !rearmed {
		_, alarms := h.stores()
		if err := alarms.SetAlarm(r.key.party, r.key.id, time.Time{}); err != nil {
			h.logger().Error("party: clearing a fired alarm", "party", r.key.party, "room", r.key.id, "err", err)
		}
	}
	r.alarmMu.Unlock()
	r.unlock()
	r.release(false) // the alarm's reference: the room may now go idle
}

// ResumeAlarms wakes every room whose alarm is kept in the Host's alarm
// store: each is built and started (OnStart runs), and its alarm fires when
// due (at once if the time has passed), with OnAlarm in the room's turn.
// Call it once when the process starts, after setting Storage, so that
// alarms set before a restart fire without waiting for a request. It returns
// the first error met, after trying every room.
func (h *Host) ResumeAlarms() error {
	_, store := h.stores()
	alarms, err := store.Alarms()
	for _, a := range alarms {
		room, aerr := h.acquire(roomKey{a.Party, a.Room}, false)
		if aerr == nil {
			aerr = room.lock() // starting the room schedules its stored alarm
			if aerr == nil {
				room.unlock()
			}
			room.release(false)
		}
		if aerr != nil && err == nil {
			err = aerr
		}
	}
	return err
}
