package party_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"party"
	"party/storage"
)

// tally keeps a counter in its room's Storage and shows it to every
// connection; "+" adds one. It logs its lifecycle to ev.
type tally struct {
	room *party.Room
	ev   *events
}

func (s *tally) count() int {
	b, err := s.room.Storage().Get("count")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(string(b))
	return n
}

func (s *tally) OnStart() error {
	s.ev.add(fmt.Sprintf("start %s count=%d", s.room.ID(), s.count()))
	return nil
}

func (s *tally) OnConnect(c *party.Connection, _ *http.Request) {
	c.Send(party.Text(strconv.Itoa(s.count())))
}

func (s *tally) OnMessage(m party.Message, c *party.Connection) {
	switch m.String() {
	case "+":
		if err := s.room.Storage().Put("count", []byte(strconv.Itoa(s.count()+1))); err != nil {
			c.Send(party.Text("error " + err.Error()))
			return
		}
		s.room.Broadcast(party.Text(strconv.Itoa(s.count())))
	case "alarm":
		if err := s.room.SetAlarm(time.Now().Add(300 * time.Millisecond)); err != nil {
			c.Send(party.Text("error " + err.Error()))
			return
		}
		c.Send(party.Text("alarm set"))
	}
}

func (s *tally) OnAlarm() { s.ev.add(fmt.Sprintf("alarm %s count=%d", s.room.ID(), s.count())) }

func newTallyHost(store storage.Provider, ev *events) *party.Host {
	h := party.Handler(func(r *party.Room) party.Server { return &tally{room: r, ev: ev} })
	h.IdleTimeout = -1
	h.Storage = store
	return h
}

func TestStorageSurvivesEviction(t *testing.T) {
	file, err := storage.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, store := range map[string]storage.Provider{"memory (default)": nil, "file": file} {
		t.Run(name, func(t *testing.T) {
			ev := &events{}
			h := newTallyHost(store, ev)
			ws, _ := serve(t, h)
			c := dial(t, ws+"/party/evict")
			c.expect("0")
			c.send("+")
			c.expect("1")
			c.send("+")
			c.expect("2")
			c.close()
			eventually(t, "the room to be dropped", func() bool { return h.Room("main", "evict") == nil })
			c = dial(t, ws+"/party/evict")
			defer c.close()
			c.expect("2")
			if got := ev.list(); len(got) != 2 || got[1] != "start evict count=2" {
				t.Errorf("lifecycle %q: want the room rebuilt with its count", got)
			}
		})
	}
}

// An alarm set before a restart fires after it: the room is started (OnStart
// runs), then OnAlarm, and the stored values are there.
func TestDurableAlarmAfterRestart(t *testing.T) {
	dir := t.TempDir()
	ev := &events{}

	store1, err := storage.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	h1 := newTallyHost(store1, ev)
	ws, srv := serve(t, h1)
	c := dial(t, ws+"/party/wake")
	c.expect("0")
	c.send("+")
	c.expect("1")
	c.send("alarm")
	c.expect("alarm set")
	c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h1.Shutdown(ctx); err != nil { // the process "stops" before the alarm is due
		t.Fatal(err)
	}
	srv.Close()
	if ev.has("alarm wake count=1") {
		t.Fatal("the alarm fired before the restart")
	}

	store2, err := storage.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	h2 := newTallyHost(store2, ev)
	serve(t, h2)
	if err := h2.ResumeAlarms(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the alarm to fire after the restart", func() bool { return ev.has("alarm wake count=1") })
	got := ev.list()
	want := []string{"start wake count=0", "start wake count=1", "alarm wake count=1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lifecycle %q, want %q", got, want)
	}
	alarms, err := store2.Alarms()
	if err != nil || len(alarms) != 0 {
		t.Errorf("alarms left in storage after firing: %v %v", alarms, err)
	}
	eventually(t, "the room to be dropped after its alarm", func() bool { return h2.Room("main", "wake") == nil })
}

// A Provider that keeps no alarms (not a storage.AlarmStore) still gets
// alarms that fire: the Host keeps them in memory, and the provider's store
// sees none. The room's Storage refuses Close, and SetAlarm with the zero
// Time deletes the alarm rather than firing it.
func TestAlarmsWithoutAlarmStore(t *testing.T) {
	file, err := storage.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	h := newTallyHost(struct{ storage.Provider }{file}, ev) // only Open
	serve(t, h)
	var st storage.Storage
	err = h.Call(context.Background(), "main", "kv-only", func(s party.Server) error {
		room := s.(*tally).room
		st = room.Storage()
		if err := room.SetAlarm(time.Now().Add(time.Hour)); err != nil {
			return err
		}
		if err := room.SetAlarm(time.Time{}); err != nil {
			return err
		}
		if at, set := room.GetAlarm(); set {
			return fmt.Errorf("SetAlarm(zero Time) left the alarm set for %v", at)
		}
		return room.SetAlarm(time.Now().Add(20 * time.Millisecond))
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the alarm kept in memory to fire", func() bool { return ev.has("alarm kv-only count=0") })
	if alarms, err := file.Alarms(); err != nil || len(alarms) != 0 {
		t.Errorf("the FileStore, used only as a Provider, holds alarms %v (err %v)", alarms, err)
	}
	if err := st.Close(); err == nil {
		t.Error("a Server could close its room's Storage")
	}
}
