package cluster

import (
	"errors"
	"testing"
	"time"

	"party/storage"
)

// TestStaleOwnerFenced: once a newer owner has opened a room, the old
// owner's writes (which carry the old token) are refused with ErrFenced and
// change nothing, and the old owner cannot open the room again.
func TestStaleOwnerFenced(t *testing.T) {
	ns := startServer(t, "")
	old := mustOpen(t, newStore(t, ns, 5, 0), "main", "r")
	mustPut(t, old, "k", "old owner's")
	mustPut(t, old, "j", "old owner's")
	newer := mustOpen(t, newStore(t, ns, 9, 0), "main", "r")
	wantValue(t, newer, "k", "old owner's", false)

	var b storage.Batch
	b.Put("k", []byte("stale"))
	b.Put("x", []byte("stale"))
	_, errDel := old.Delete("j")
	for i, err := range []error{old.Put("k", []byte("stale")), old.Write(&b), errDel, old.DeleteAll()} {
		t.Logf("stale write %d: %v", i, err)
		if !errors.Is(err, ErrFenced) {
			t.Fatalf("write %d by the stale owner: %v, want ErrFenced", i, err)
		}
	}
	mustPut(t, newer, "n", "new owner's")
	fresh := mustOpen(t, newStore(t, ns, 9, 0), "main", "r")
	for _, s := range []storage.Storage{newer, fresh} {
		wantValue(t, s, "k", "old owner's", false)
		wantValue(t, s, "j", "old owner's", false)
		wantValue(t, s, "x", "", true)
		wantValue(t, s, "n", "new owner's", false)
	}
	if _, err := newStore(t, ns, 5, 0).Open("main", "r"); !errors.Is(err, ErrFenced) {
		t.Fatalf("Open with the old token: %v, want ErrFenced", err)
	}
}

// TestStoreFollowsLease: with Owners.Token as the Store's token, a node
// writes while its lease is valid, is refused at once (before any other node
// can claim) when the lease is lost, and the next owner opens the room with
// everything the first one wrote.
func TestStoreFollowsLease(t *testing.T) {
	ns := startServer(t, "")
	nodes := make([]*Owners, 2)
	stores := make([]*Store, 2)
	for i, name := range []string{"a", "b"} {
		_, js := connect(t, ns)
		nodes[i] = newOwners(t, js, name, time.Second)
		s, err := NewStore(testCtx(t, 5*time.Second), js, StoreConfig{Token: nodes[i].Token})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	ctx := testCtx(t, 10*time.Second)
	if _, err := stores[0].Open("main", "r"); !errors.Is(err, ErrFenced) || !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Open without a lease: %v, want ErrFenced and ErrNoOwner", err)
	}
	la, err := nodes[0].Claim(ctx, "main", "r")
	if err != nil {
		t.Fatal(err)
	}
	ha := mustOpen(t, stores[0], "main", "r")
	mustPut(t, ha, "k", "a's")
	if err := stores[0].SetAlarm("main", "r", time.Unix(100, 0)); err != nil {
		t.Fatal(err)
	}
	nodes[0].dropRenewals.Store(true)
	<-la.Lost()
	if err := ha.Put("k", []byte("late")); !errors.Is(err, ErrFenced) {
		t.Fatalf("Put after the lease was lost: %v, want ErrFenced", err)
	}
	if err := stores[0].SetAlarm("main", "r", time.Unix(200, 0)); !errors.Is(err, ErrFenced) {
		t.Fatalf("SetAlarm after the lease was lost: %v, want ErrFenced", err)
	}
	waitFor(t, 5*time.Second, "b's claim", func() bool {
		_, err := nodes[1].Claim(ctx, "main", "r")
		return err == nil
	})
	hb := mustOpen(t, stores[1], "main", "r")
	wantValue(t, hb, "k", "a's", false)
	if at, err := stores[1].Alarm("main", "r"); err != nil || !at.Equal(time.Unix(100, 0)) {
		t.Fatalf("b reads the alarm a set: %v, %v", at, err)
	}
}

// TestAlarms: alarms set through one node are listed, soonest first, by
// another; a cleared alarm is not listed; an alarm written under a newer
// token cannot be changed under an older one.
func TestAlarms(t *testing.T) {
	ns := startServer(t, "")
	a, b := newStore(t, ns, 1, 0), newStore(t, ns, 1, 0)
	if got, err := b.Alarms(); err != nil || len(got) != 0 {
		t.Fatalf("Alarms of an empty bucket = %v, %v", got, err)
	}
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	set := func(s *Store, room string, at time.Time) {
		t.Helper()
		if err := s.SetAlarm("main", room, at); err != nil {
			t.Fatalf("SetAlarm(%q): %v", room, err)
		}
	}
	set(a, "late", t0.Add(time.Hour))
	set(a, "soon", t0)
	set(a, "a room.with/odd%20chars", t0.Add(time.Minute))
	set(a, "cleared", t0)
	set(a, "cleared", time.Time{})
	got, err := b.Alarms()
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.RoomAlarm{
		{Party: "main", Room: "soon", At: t0},
		{Party: "main", Room: "a room.with/odd%20chars", At: t0.Add(time.Minute)},
		{Party: "main", Room: "late", At: t0.Add(time.Hour)},
	}
	if len(got) != len(want) {
		t.Fatalf("Alarms = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Party != want[i].Party || got[i].Room != want[i].Room || !got[i].At.Equal(want[i].At) {
			t.Fatalf("Alarms[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if at, err := b.Alarm("main", "cleared"); err != nil || !at.IsZero() {
		t.Fatalf("Alarm of a cleared room = %v, %v", at, err)
	}
	if at, err := b.Alarm("main", "never"); err != nil || !at.IsZero() {
		t.Fatalf("Alarm of a room never set = %v, %v", at, err)
	}
	newer := newStore(t, ns, 2, 0)
	set(newer, "soon", t0.Add(time.Second))
	if err := a.SetAlarm("main", "soon", t0); !errors.Is(err, ErrFenced) {
		t.Fatalf("SetAlarm under an older token: %v, want ErrFenced", err)
	}
	if err := a.SetAlarm("main", "soon", time.Time{}); !errors.Is(err, ErrFenced) {
		t.Fatalf("clearing under an older token: %v, want ErrFenced", err)
	}
	if at, _ := b.Alarm("main", "soon"); !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("the alarm is %v after refused writes, want %v", at, t0.Add(time.Second))
	}
}
