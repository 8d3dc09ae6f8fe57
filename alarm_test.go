package party_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"party"
)

// alarmed counts its alarms and sets the next one while count < repeat.
type alarmed struct {
	room   *party.Room
	rings  *atomic.Int32
	repeat int32
	inTurn bool
}

func (s *alarmed) OnRequest(w http.ResponseWriter, r *http.Request) {
	s.inTurn = true
	time.Sleep(20 * time.Millisecond)
	s.inTurn = false
}

func (s *alarmed) OnAlarm() {
	if s.inTurn {
		panic("OnAlarm ran during another handler")
	}
	if n := s.rings.Add(1); n < s.repeat {
		s.room.SetAlarm(time.Now().Add(10 * time.Millisecond))
	}
}

func TestAlarms(t *testing.T) {
	var rings atomic.Int32
	h := party.Handler(func(r *party.Room) party.Server { return &alarmed{room: r, rings: &rings, repeat: 3} })
	h.IdleTimeout = -1 // an idle room without an alarm is dropped at once
	serve(t, h)

	t.Run("fires, repeats, and keeps the idle room alive until done", func(t *testing.T) {
		rings.Store(0)
		err := h.Call(context.Background(), "main", "a", func(s party.Server) error {
			return s.(*alarmed).room.SetAlarm(time.Now().Add(30 * time.Millisecond))
		})
		if err != nil {
			t.Fatal(err)
		}
		if h.Room("main", "a") == nil {
			t.Fatal("the room was dropped while its alarm was set")
		}
		eventually(t, "three alarms", func() bool { return rings.Load() == 3 })
		eventually(t, "the room to be dropped after its last alarm", func() bool { return h.Room("main", "a") == nil })
	})
	t.Run("replaced and deleted alarms do not fire", func(t *testing.T) {
		rings.Store(0)
		var room *party.Room
		h.Call(context.Background(), "main", "b", func(s party.Server) error {
			room = s.(*alarmed).room
			room.SetAlarm(time.Now().Add(20 * time.Millisecond))
			room.SetAlarm(time.Now().Add(time.Hour)) // replaces the first
			return nil
		})
		at, ok := room.GetAlarm()
		if !ok || time.Until(at) < 50*time.Minute {
			t.Errorf("GetAlarm = %v, %v; want the replacing alarm in an hour", at, ok)
		}
		time.Sleep(60 * time.Millisecond)
		if n := rings.Load(); n != 0 {
			t.Errorf("a replaced alarm fired (%d rings)", n)
		}
		room.DeleteAlarm()
		if _, ok := room.GetAlarm(); ok {
			t.Error("GetAlarm reports an alarm after DeleteAlarm")
		}
		eventually(t, "the room to be dropped once its alarm is deleted", func() bool { return h.Room("main", "b") == nil })
		if err := room.SetAlarm(time.Now()); err != party.ErrRoomGone {
			t.Errorf("SetAlarm on a dropped room = %v, want ErrRoomGone", err)
		}
	})
	t.Run("runs one at a time with other handlers", func(t *testing.T) {
		rings.Store(0)
		h.Call(context.Background(), "main", "c", func(s party.Server) error {
			return s.(*alarmed).room.SetAlarm(time.Now().Add(5 * time.Millisecond))
		})
		for range 10 {
			resp, err := h.Fetch("main", "c", httptestRequest())
			if err == nil {
				resp.Body.Close()
			}
		}
		eventually(t, "the alarms", func() bool { return rings.Load() == 3 })
	})
}

func httptestRequest() *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://x/parties/main/c", nil)
	return r
}
