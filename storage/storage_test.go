package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStorageList(t *testing.T) {
	keys := []string{"", "a", "a/1", "a/2", "a/3", "ab", "b", "b/1", "c", "\xff", "\xff\xff", "\xff\xffz"}
	tests := []struct {
		name string
		opts ListOptions
		want []string
	}{
		{"all", ListOptions{}, keys},
		{"prefix", ListOptions{Prefix: "a/"}, []string{"a/1", "a/2", "a/3"}},
		{"prefix that is a key", ListOptions{Prefix: "a"}, []string{"a", "a/1", "a/2", "a/3", "ab"}},
		{"prefix of 0xff bytes", ListOptions{Prefix: "\xff\xff"}, []string{"\xff\xff", "\xff\xffz"}},
		{"prefix without keys", ListOptions{Prefix: "zz"}, []string{}},
		{"start inclusive", ListOptions{Start: "a/2"}, []string{"a/2", "a/3", "ab", "b", "b/1", "c", "\xff", "\xff\xff", "\xff\xffz"}},
		{"end exclusive", ListOptions{End: "a/2"}, []string{"", "a", "a/1"}},
		{"start and end", ListOptions{Start: "a/1", End: "b/1"}, []string{"a/1", "a/2", "a/3", "ab", "b"}},
		{"start between keys", ListOptions{Start: "a/15", End: "a/25"}, []string{"a/2"}},
		{"start after end", ListOptions{Start: "c", End: "b"}, []string{}},
		{"start equals end", ListOptions{Start: "b", End: "b"}, []string{}},
		{"prefix and start", ListOptions{Prefix: "a/", Start: "a/2"}, []string{"a/2", "a/3"}},
		{"prefix and start before it", ListOptions{Prefix: "b", Start: "a"}, []string{"b", "b/1"}},
		{"prefix and end", ListOptions{Prefix: "a/", End: "a/3"}, []string{"a/1", "a/2"}},
		{"prefix and end after it", ListOptions{Prefix: "a/", End: "z"}, []string{"a/1", "a/2", "a/3"}},
		{"prefix outside start and end", ListOptions{Prefix: "c", Start: "a", End: "b"}, []string{}},
		{"limit", ListOptions{Limit: 3}, []string{"", "a", "a/1"}},
		{"limit over count", ListOptions{Prefix: "b", Limit: 10}, []string{"b", "b/1"}},
		{"negative limit", ListOptions{Prefix: "b", Limit: -1}, []string{"b", "b/1"}},
		{"reverse", ListOptions{Reverse: true}, reversed(keys)},
		{"reverse limit takes the greatest", ListOptions{Reverse: true, Limit: 2}, []string{"\xff\xffz", "\xff\xff"}},
		{"reverse prefix limit", ListOptions{Prefix: "a/", Reverse: true, Limit: 2}, []string{"a/3", "a/2"}},
		{"reverse start end", ListOptions{Start: "a/2", End: "b/1", Reverse: true}, []string{"b", "ab", "a/3", "a/2"}},
		{"limit with start", ListOptions{Start: "a/2", Limit: 2}, []string{"a/2", "a/3"}},
	}
	storeKinds(t, func(t *testing.T, p store, restart func() store) {
		s := mustOpen(t, p, "main", "list")
		for _, i := range rand.Perm(len(keys)) { // insertion order must not matter
			mustPut(t, s, keys[i], "v"+keys[i])
		}
		check := func(t *testing.T, s Storage) {
			for _, tt := range tests {
				got, err := s.List(tt.opts)
				if err != nil {
					t.Fatalf("%s: List(%+v): %v", tt.name, tt.opts, err)
				}
				if !slices.Equal(keysOf(got), tt.want) {
					t.Errorf("%s: List(%+v) = %q, want %q", tt.name, tt.opts, keysOf(got), tt.want)
				}
				for _, kv := range got {
					if string(kv.Value) != "v"+kv.Key {
						t.Errorf("%s: value of %q is %q, want %q", tt.name, kv.Key, kv.Value, "v"+kv.Key)
					}
				}
			}
		}
		check(t, s)
		// The same after a restart, read back from the log.
		s.Close()
		check(t, mustOpen(t, restart(), "main", "list"))
	})
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

// TestStorageListModel checks List against a plain map after random puts,
// deletes and batches, interleaved with lists (which reorder the index).
func TestStorageListModel(t *testing.T) {
	storeKinds(t, func(t *testing.T, p store, restart func() store) {
		s := mustOpen(t, p, "main", "model")
		rng := rand.New(rand.NewPCG(1, 2))
		model := map[string]string{}
		key := func() string { return fmt.Sprintf("%c%d", 'a'+rng.IntN(3), rng.IntN(40)) }
		ops := 600
		if _, ok := p.(*FileStore); ok {
			ops = 300 // each write is an fsync
		}
		for i := range ops {
			switch r := rng.IntN(10); {
			case r < 5:
				k, v := key(), fmt.Sprint(i)
				mustPut(t, s, k, v)
				model[k] = v
			case r < 8:
				k := key()
				_, want := model[k]
				got, err := s.Delete(k)
				if err != nil || got != want {
					t.Fatalf("Delete(%q) = %v, %v; want %v", k, got, err, want)
				}
				delete(model, k)
			case r < 9:
				var b Batch
				for range 1 + rng.IntN(4) {
					k := key()
					if rng.IntN(2) == 0 {
						b.Delete(k)
						delete(model, k)
					} else {
						b.Put(k, []byte(fmt.Sprint(i)))
						model[k] = fmt.Sprint(i)
					}
				}
				if err := s.Write(&b); err != nil {
					t.Fatal(err)
				}
			default:
				opts := ListOptions{Start: key(), End: key(), Reverse: rng.IntN(2) == 0, Limit: rng.IntN(5)}
				if rng.IntN(3) == 0 {
					opts.Prefix = key()[:1]
				}
				if rng.IntN(3) == 0 {
					opts.End = ""
				}
				got, err := s.List(opts)
				if err != nil {
					t.Fatal(err)
				}
				want := modelList(model, opts)
				if !slices.Equal(keysOf(got), want) {
					t.Fatalf("op %d: List(%+v) = %q, want %q", i, opts, keysOf(got), want)
				}
			}
		}
		want := modelDump(model)
		if got := dump(t, s); got != want {
			t.Fatalf("final state:\n%s\nwant:\n%s", got, want)
		}
		s.Close()
		if got := dump(t, mustOpen(t, restart(), "main", "model")); got != want {
			t.Fatalf("after restart:\n%s\nwant:\n%s", got, want)
		}
	})
}

func modelList(m map[string]string, o ListOptions) []string {
	keys := []string{}
	for k := range m {
		if strings.HasPrefix(k, o.Prefix) && k >= o.Start && (o.End == "" || k < o.End) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if o.Reverse {
		slices.Reverse(keys)
	}
	if o.Limit > 0 && len(keys) > o.Limit {
		keys = keys[:o.Limit]
	}
	return keys
}

func modelDump(m map[string]string) string {
	var b strings.Builder
	for _, k := range modelList(m, ListOptions{}) {
		fmt.Fprintf(&b, "%q=%q\n", k, m[k])
	}
	return b.String()
}

func TestStorageGetPutDelete(t *testing.T) {
	storeKinds(t, func(t *testing.T, p store, restart func() store) {
		s := mustOpen(t, p, "main", "basics")
		if v, err := s.Get("nope"); !errors.Is(err, ErrKeyNotFound) || v != nil {
			t.Errorf("Get of a missing key = %q, %v; want nil, ErrKeyNotFound", v, err)
		}
		in := []byte("hello")
		if err := s.Put("k", in); err != nil {
			t.Fatal(err)
		}
		in[0] = 'J' // Put copied it
		v, err := s.Get("k")
		if err != nil || string(v) != "hello" {
			t.Fatalf("Get = %q, %v; want hello", v, err)
		}
		v[0] = 'Y' // and Get returns a copy
		if v, _ := s.Get("k"); string(v) != "hello" {
			t.Fatalf("Get after modifying a returned value = %q", v)
		}
		if err := s.Put("empty", nil); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get("empty"); err != nil || v == nil || len(v) != 0 {
			t.Errorf("Get of a nil value = %#v, %v; want an empty, non-nil value", v, err)
		}
		mustPut(t, s, "k", "replaced")
		if ok, err := s.Delete("k"); !ok || err != nil {
			t.Errorf("Delete of a present key = %v, %v; want true", ok, err)
		}
		if ok, err := s.Delete("k"); ok || err != nil {
			t.Errorf("Delete of a deleted key = %v, %v; want false", ok, err)
		}
		if _, err := s.Get("k"); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("Get after Delete: %v, want ErrKeyNotFound", err)
		}

		// Limits.
		if err := s.Put(strings.Repeat("k", MaxKeyLen+1), nil); !errors.Is(err, ErrKeyTooLong) {
			t.Errorf("Put of a long key: %v, want ErrKeyTooLong", err)
		}
		if err := s.Put("big", make([]byte, MaxValueLen+1)); !errors.Is(err, ErrValueTooLarge) {
			t.Errorf("Put of a large value: %v, want ErrValueTooLarge", err)
		}
		mustPut(t, s, strings.Repeat("k", MaxKeyLen), "longest key")

		want := dump(t, s)
		s.Close()
		if _, err := s.Get("k"); !errors.Is(err, ErrStorageClosed) {
			t.Errorf("Get on a closed handle: %v, want ErrStorageClosed", err)
		}
		if err := s.Put("x", nil); !errors.Is(err, ErrStorageClosed) {
			t.Errorf("Put on a closed handle: %v, want ErrStorageClosed", err)
		}
		if err := s.Close(); !errors.Is(err, ErrStorageClosed) {
			t.Errorf("second Close: %v, want ErrStorageClosed", err)
		}
		s = mustOpen(t, restart(), "main", "basics")
		if got := dump(t, s); got != want {
			t.Errorf("after restart:\n%s\nwant:\n%s", got, want)
		}
		if err := s.DeleteAll(); err != nil {
			t.Fatal(err)
		}
		if got := dump(t, s); got != "" {
			t.Errorf("after DeleteAll: %s", got)
		}
		mustPut(t, s, "after", "deleteall")
		s.Close()
		if got, want := dump(t, mustOpen(t, restart(), "main", "basics")), `"after"="deleteall"`+"\n"; got != want {
			t.Errorf("after DeleteAll, Put and restart: %s, want %s", got, want)
		}
	})
}

func TestStorageJSON(t *testing.T) {
	storeKinds(t, func(t *testing.T, p store, restart func() store) {
		s := mustOpen(t, p, "main", "json")
		type doc struct {
			Count int      `json:"count"`
			Names []string `json:"names"`
		}
		if err := PutJSON(s, "doc", doc{3, []string{"a"}}); err != nil {
			t.Fatal(err)
		}
		var d doc
		if err := GetJSON(s, "doc", &d); err != nil || d.Count != 3 || len(d.Names) != 1 {
			t.Errorf("GetJSON = %+v, %v", d, err)
		}
		if err := GetJSON(s, "nodoc", &d); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("GetJSON of a missing key: %v, want ErrKeyNotFound", err)
		}
		if err := PutJSON(s, "bad", func() {}); err == nil {
			t.Error("PutJSON of a func: no error")
		}

		s.Close()
		d = doc{}
		if err := GetJSON(mustOpen(t, restart(), "main", "json"), "doc", &d); err != nil || d.Count != 3 || len(d.Names) != 1 {
			t.Errorf("GetJSON after restart = %+v, %v", d, err)
		}
	})
}

func TestStorageBatch(t *testing.T) {
	storeKinds(t, func(t *testing.T, p store, restart func() store) {
		s := mustOpen(t, p, "main", "batch")
		mustPut(t, s, "old", "1")
		mustPut(t, s, "gone", "1")
		var b Batch
		b.Put("a", []byte("1"))
		b.Put("b", []byte("1"))
		b.Delete("gone")
		b.Put("a", []byte("2")) // later operations win
		b.Delete("b")
		b.Put("c", []byte("3"))
		if b.Len() != 6 {
			t.Errorf("Len = %d, want 6", b.Len())
		}
		if err := s.Write(&b); err != nil {
			t.Fatal(err)
		}
		want := `"a"="2"` + "\n" + `"c"="3"` + "\n" + `"old"="1"` + "\n"
		if got := dump(t, s); got != want {
			t.Fatalf("after Write:\n%s\nwant:\n%s", got, want)
		}

		// A batch with one invalid operation applies none.
		for _, bad := range []func(*Batch){
			func(b *Batch) { b.Put(strings.Repeat("x", MaxKeyLen+1), nil) },
			func(b *Batch) { b.Delete(strings.Repeat("x", MaxKeyLen+1)) },
			func(b *Batch) { b.Put("big", make([]byte, MaxValueLen+1)) },
			func(b *Batch) {
				for i := range 5 {
					b.Put(fmt.Sprint("big", i), make([]byte, MaxValueLen))
				}
			},
		} {
			b.Reset()
			b.Put("new", []byte("1"))
			b.Delete("old")
			bad(&b)
			b.Put("after", []byte("1"))
			err := s.Write(&b)
			if !errors.Is(err, ErrKeyTooLong) && !errors.Is(err, ErrValueTooLarge) {
				t.Errorf("Write of an invalid batch: %v, want ErrKeyTooLong or ErrValueTooLarge", err)
			}
			if got := dump(t, s); got != want {
				t.Fatalf("after an invalid batch:\n%s\nwant it unchanged:\n%s", got, want)
			}
		}
		b.Reset()
		if b.Len() != 0 {
			t.Errorf("Len after Reset = %d", b.Len())
		}
		if err := s.Write(&b); err != nil {
			t.Errorf("Write of an empty batch: %v", err)
		}
		b.Put("d", []byte("4"))
		if err := s.Write(&b); err != nil {
			t.Fatalf("Write after Reset of an invalid batch: %v", err)
		}
		want = `"a"="2"` + "\n" + `"c"="3"` + "\n" + `"d"="4"` + "\n" + `"old"="1"` + "\n"
		s.Close()
		if got := dump(t, mustOpen(t, restart(), "main", "batch")); got != want {
			t.Errorf("after restart:\n%s\nwant:\n%s", got, want)
		}
	})
}

// TestStorageAlarm checks an AlarmStore: alarms of rooms opened or not, kept
// apart from the rooms' keys, listed soonest first, and removed by the zero
// Time, across a restart.
func TestStorageAlarm(t *testing.T) {
	storeKinds(t, func(t *testing.T, p store, restart func() store) {
		if at, err := p.Alarm("main", "alarm"); err != nil || !at.IsZero() {
			t.Fatalf("Alarm of a new room = %v, %v; want the zero Time", at, err)
		}
		when := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3600))
		if err := p.SetAlarm("main", "alarm", when); err != nil {
			t.Fatal(err)
		}
		if at, _ := p.Alarm("main", "alarm"); !at.Equal(when) {
			t.Errorf("Alarm = %v, want %v", at, when)
		}
		// Odd names, and a room with an alarm but no storage ever opened.
		if err := p.SetAlarm("Other Party", "Room%2F1", when.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		s := mustOpen(t, p, "main", "alarm")
		mustPut(t, s, "key", "value") // keys and alarm are independent
		if err := s.DeleteAll(); err != nil {
			t.Fatal(err)
		}
		if at, _ := p.Alarm("main", "alarm"); !at.Equal(when) {
			t.Errorf("Alarm after DeleteAll = %v, want it kept (%v)", at, when)
		}
		s.Close()

		p = restart()
		alarms, err := p.Alarms()
		if err != nil {
			t.Fatal(err)
		}
		want := []RoomAlarm{{"Other Party", "Room%2F1", when.Add(-time.Hour)}, {"main", "alarm", when}}
		if len(alarms) != len(want) {
			t.Fatalf("Alarms = %v, want %v", alarms, want)
		}
		for i := range want {
			if alarms[i].Party != want[i].Party || alarms[i].Room != want[i].Room || !alarms[i].At.Equal(want[i].At) {
				t.Errorf("Alarms[%d] = %v, want %v", i, alarms[i], want[i])
			}
		}
		if at, _ := p.Alarm("main", "alarm"); !at.Equal(when) || at.Nanosecond() != 123456789 {
			t.Errorf("Alarm after restart = %v, want %v", at, when)
		}
		for i := range 2 { // removing twice is no error
			if err := p.SetAlarm("main", "alarm", time.Time{}); err != nil {
				t.Fatalf("SetAlarm of the zero Time, #%d: %v", i+1, err)
			}
		}
		if err := p.SetAlarm("Other Party", "Room%2F1", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if at, err := p.Alarm("main", "alarm"); err != nil || !at.IsZero() {
			t.Errorf("Alarm after removing it = %v, %v; want the zero Time", at, err)
		}
		if alarms, err := restart().Alarms(); err != nil || len(alarms) != 0 {
			t.Errorf("Alarms after removing both = %v, %v; want none", alarms, err)
		}
	})
}

// TestStorageHandles checks that handles of one room share it, that rooms do
// not, and that concurrent use with handles opening and closing loses no
// acknowledged write (run with -race).
func TestStorageHandles(t *testing.T) {
	storeKinds(t, func(t *testing.T, p store, restart func() store) {
		a := mustOpen(t, p, "main", "shared")
		b := mustOpen(t, p, "main", "shared")
		other := mustOpen(t, p, "other", "shared")
		mustPut(t, a, "k", "from a")
		if v, err := b.Get("k"); err != nil || string(v) != "from a" {
			t.Errorf("second handle Get = %q, %v; want the first handle's write", v, err)
		}
		if _, err := other.Get("k"); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("another party's room sees the key: %v", err)
		}
		a.Close()
		if v, err := b.Get("k"); err != nil || string(v) != "from a" {
			t.Errorf("Get after the other handle closed = %q, %v", v, err)
		}
		b.Close()

		const workers, writes = 4, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range writes {
					// Each write through a handle of its own, so the
					// room's store is closed and reopened meanwhile.
					s, err := p.Open("main", "churn")
					if err != nil {
						errs <- err
						return
					}
					key := fmt.Sprintf("w%d/%03d", w, i)
					if err := s.Put(key, []byte(key)); err != nil {
						errs <- err
						return
					}
					if _, err := s.List(ListOptions{Prefix: fmt.Sprintf("w%d/", w)}); err != nil {
						errs <- err
						return
					}
					s.Close()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		s := mustOpen(t, restart(), "main", "churn")
		all, err := s.List(ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != workers*writes {
			t.Fatalf("%d keys after concurrent writes, want %d", len(all), workers*writes)
		}
		for _, kv := range all {
			if kv.Key != string(kv.Value) {
				t.Errorf("%q = %q", kv.Key, kv.Value)
			}
		}
	})
}

func TestMemoryStoreForgetsEmptyRooms(t *testing.T) {
	m := NewMemoryStore()
	for i := range 100 {
		s, _ := m.Open("main", fmt.Sprint(i))
		if i%10 == 0 {
			mustPut(t, s, "k", "v")
		}
		if i == 5 {
			m.SetAlarm("main", "5", time.Now().Add(time.Hour)) // an alarm holds no room
		}
		s.Close()
	}
	m.mu.Lock()
	n, alarms := len(m.rooms), len(m.alarms)
	m.mu.Unlock()
	if n != 10 || alarms != 1 {
		t.Errorf("%d rooms and %d alarms kept, want the 10 rooms that hold data and 1 alarm", n, alarms)
	}
	m.SetAlarm("main", "5", time.Time{})
	if at, _ := m.Alarm("main", "5"); !at.IsZero() || len(m.alarms) != 0 {
		t.Errorf("after removing the alarm: Alarm = %v, %d alarms kept; want none", at, len(m.alarms))
	}
}

func TestStorageValuesAreBytes(t *testing.T) {
	storeKinds(t, func(t *testing.T, p store, restart func() store) {
		s := mustOpen(t, p, "main", "bytes")
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		if err := s.Put("\x00binary\xff", all); err != nil {
			t.Fatal(err)
		}
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		if err := s.Put("big", big); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = mustOpen(t, restart(), "main", "bytes")
		if v, err := s.Get("\x00binary\xff"); err != nil || !bytes.Equal(v, all) {
			t.Errorf("binary value after restart = %q, %v", v, err)
		}
		if v, err := s.Get("big"); err != nil || !bytes.Equal(v, big) {
			t.Errorf("1 MiB value after restart: %d bytes, %v", len(v), err)
		}
	})
}
