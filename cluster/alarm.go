package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"party/storage"
)

// alarmValue is the JSON value of a room's alarm in the alarm bucket. A
// cleared alarm stays as a value with Set false, so that the token that
// cleared it keeps fencing older owners.
type alarmValue struct {
	Set   bool   `json:"set"`
	Sec   int64  `json:"sec,omitempty"`  // Unix seconds
	Nsec  int64  `json:"nsec,omitempty"` // and nanoseconds
	Token uint64 `json:"token"`          // the writer's fencing token
}

func (v alarmValue) time() time.Time {
	if !v.Set {
		return time.Time{}
	}
	return time.Unix(v.Sec, v.Nsec)
}

// Alarm returns the alarm time of room in party, or the zero Time if none is
// set. Any node reads any room's alarm.
func (s *Store) Alarm(party, room string) (time.Time, error) {
	key, err := roomKey(party, room)
	if err != nil {
		return time.Time{}, err
	}
	ctx, cancel := s.context()
	defer cancel()
	v, _, err := s.readAlarm(ctx, key)
	return v.time(), err
}

// readAlarm returns the alarm stored under key and its revision (0 and the
// zero value if there is none).
func (s *Store) readAlarm(ctx context.Context, key string) (alarmValue, uint64, error) {
	var v alarmValue
	e, err := s.alarms.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return v, 0, nil
	}
	if err != nil {
		return v, 0, fmt.Errorf("cluster: alarm of %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return v, 0, fmt.Errorf("cluster: alarm of %s: %w", key, err)
	}
	return v, e.Revision(), nil
}

// SetAlarm records at (its instant only) as the alarm of room in party; the
// zero Time clears it. With StoreConfig.Token set, it fails with an error
// wrapping ErrFenced if this node holds no lease on the room, or if the
// alarm was last written under a newer lease: each write is a compare-and-set
// on the alarm's revision that keeps the writer's token, so once a newer owner
// has written a room's alarm no older owner can change it.
func (s *Store) SetAlarm(party, room string, at time.Time) error {
	key, err := roomKey(party, room)
	if err != nil {
		return err
	}
	var token uint64
	if s.cfg.Token != nil {
		if token, err = s.cfg.Token(party, room); err != nil {
			return fmt.Errorf("%w: %w", ErrFenced, err)
		}
	}
	v := alarmValue{Token: token}
	if !at.IsZero() {
		v.Set, v.Sec, v.Nsec = true, at.Unix(), int64(at.Nanosecond())
	}
	data, _ := json.Marshal(v) // numbers and a bool
	ctx, cancel := s.context()
	defer cancel()
	for range 5 {
		old, rev, err := s.readAlarm(ctx, key)
		if err != nil {
			return err
		}
		if old.Token > token {
			return fmt.Errorf("%w: the alarm of room %q of party %q was set under token %d, above %d", ErrFenced, room, party, old.Token, token)
		}
		if rev == 0 {
			_, err = s.alarms.Create(ctx, key, data)
		} else {
			_, err = s.alarms.Update(ctx, key, data, rev)
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if err != nil {
				return fmt.Errorf("cluster: set alarm of %s: %w", key, err)
			}
			return nil
		}
	}
	return fmt.Errorf("cluster: set alarm of %s: the alarm kept changing", key)
}

// Alarms lists every room whose alarm is set, soonest first, whichever node
// set it. It returns the alarms it could read and an error naming those it
// could not.
func (s *Store) Alarms() ([]storage.RoomAlarm, error) {
	ctx, cancel := s.context()
	defer cancel()
	w, err := s.alarms.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("cluster: alarms: %w", err)
	}
	defer w.Stop()
	var out []storage.RoomAlarm
	var errs []error
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return sortAlarms(out), errors.Join(append(errs, fmt.Errorf("cluster: alarms: %w", ctx.Err()))...)
		}
		if e == nil { // the end of the values present
			return sortAlarms(out), errors.Join(errs...)
		}
		var v alarmValue
		party, room, err := splitRoomKey(e.Key())
		if err == nil {
			err = json.Unmarshal(e.Value(), &v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster: alarm %s: %w", e.Key(), err))
			continue
		}
		if v.Set {
			out = append(out, storage.RoomAlarm{Party: party, Room: room, At: v.time()})
		}
	}
}

// sortAlarms puts a in the order of AlarmStore.Alarms: soonest first, then
// by party and room.
func sortAlarms(a []storage.RoomAlarm) []storage.RoomAlarm {
	slices.SortFunc(a, func(x, y storage.RoomAlarm) int {
		return cmp.Or(x.At.Compare(y.At), cmp.Compare(x.Party, y.Party), cmp.Compare(x.Room, y.Room))
	})
	return a
}
