package storage

import (
	"cmp"
	"slices"
	"time"
)

// roomKey names one room of one party: the key of a store's rooms and
// alarms.
type roomKey struct{ party, room string }

// alarmTime normalises t to what an AlarmStore keeps of it: the instant
// only, or the zero Time.
func alarmTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(t.Unix(), int64(t.Nanosecond()))
}

// sortAlarms puts a in the order of AlarmStore.Alarms: soonest first, then
// by party and room.
func sortAlarms(a []RoomAlarm) {
	slices.SortFunc(a, func(x, y RoomAlarm) int {
		return cmp.Or(x.At.Compare(y.At), cmp.Compare(x.Party, y.Party), cmp.Compare(x.Room, y.Room))
	})
}
