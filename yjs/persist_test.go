package yjs

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"party"
	"party/storage"
)

// edits returns n updates of client typing one letter each.
func edits(client uint64, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = typing(client, uint64(i), string(rune('a'+i%26)))
	}
	return out
}

// readBack connects to room and returns the document its Server sends a
// client that has nothing, with the state vector of its step 1.
func readBack(h *testHost, room string) (doc, sv []byte) {
	h.t.Helper()
	c, sv := h.dial(room)
	c.send(syncMsg(syncStep1, []byte{0}))
	doc = c.expectSync(syncStep2)
	c.close()
	return doc, sv
}

func TestPersistAcrossRoomDrop(t *testing.T) {
	for _, mode := range []Persistence{PersistSnapshot, PersistHistory} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			store := storage.NewMemoryStore()
			h := serveRooms(t, &Options{Persistence: mode}, store)
			a, _ := h.dial("r")
			ups := edits(1, 5)
			for _, u := range ups {
				a.send(syncMsg(syncUpdate, u))
			}
			a.fence()
			a.close()
			h.dropped("r")

			chunks, logged := countKeys(storedKeys(t, store, "r"))
			if mode == PersistSnapshot && (chunks != 1 || logged != 0) {
				t.Fatalf("snapshot mode, room left: %d chunks and %d log entries stored, want 1 and 0", chunks, logged)
			}
			if mode == PersistHistory && (chunks != 0 || logged != 5) {
				t.Fatalf("history mode, room left: %d chunks and %d log entries stored, want 0 and 5", chunks, logged)
			}
			want := mustMerge(t, ups...)
			doc, sv := readBack(h, "r")
			sameDocument(t, "document after the room was dropped", doc, want)
			if wantSV, _ := EncodeStateVectorFromUpdate(want); !bytes.Equal(sv, wantSV) {
				t.Fatalf("step 1 after the room was dropped: %x, want %x", sv, wantSV)
			}
		})
	}
}

func (p Persistence) String() string {
	if p == PersistHistory {
		return "history"
	}
	return "snapshot"
}

func TestPersistAcrossRestart(t *testing.T) {
	for _, mode := range []Persistence{PersistSnapshot, PersistHistory} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			dir := t.TempDir()
			open := func() *storage.FileStore {
				fs, err := storage.OpenFileStore(dir)
				if err != nil {
					t.Fatal(err)
				}
				return fs
			}
			opts := &Options{Persistence: mode, MaxLogUpdates: 4}
			h := serveRooms(t, opts, open())
			a, _ := h.dial("r")
			b, _ := h.dial("r")
			ups := append(edits(1, 6), edits(2, 3)...)
			for i, u := range ups {
				from, to := a, b
				if i%2 == 1 {
					from, to = b, a
				}
				from.send(syncMsg(syncUpdate, u))
				to.expectSync(syncUpdate)
			}
			// The Host goes down with both clients connected: what was
			// acknowledged is on disk, whether compacted or logged.
			a.discard()
			b.discard()
			h.shutdown()

			h2 := serveRooms(t, opts, open())
			doc, _ := readBack(h2, "r")
			sameDocument(t, "document after a restart", doc, mustMerge(t, ups...))
		})
	}
}

func TestCompaction(t *testing.T) {
	cases := []struct {
		name               string
		opts               Options
		sent               int
		chunks, logged     int // stored while the client is connected
		leftChunks, leftLg int // stored once it left
	}{
		{"snapshot under the limits", Options{}, 5, 0, 5, 1, 0},
		{"snapshot past MaxLogUpdates", Options{MaxLogUpdates: 3}, 5, 1, 1, 1, 0},
		{"history under the limits", Options{Persistence: PersistHistory}, 5, 0, 5, 0, 5},
		{"history past MaxLogUpdates", Options{Persistence: PersistHistory, MaxLogUpdates: 3}, 5, 1, 1, 1, 1},
		{"history past MaxLogBytes", Options{Persistence: PersistHistory, MaxLogBytes: 50}, 5, 1, 0, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := storage.NewMemoryStore()
			h := serveRooms(t, &tc.opts, store)
			a, _ := h.dial("r")
			ups := edits(1, tc.sent)
			for _, u := range ups {
				a.send(syncMsg(syncUpdate, u))
			}
			a.fence()
			if c, l := countKeys(storedKeys(t, store, "r")); c != tc.chunks || l != tc.logged {
				t.Fatalf("connected: %d chunks and %d log entries, want %d and %d", c, l, tc.chunks, tc.logged)
			}
			a.close()
			h.dropped("r")
			if c, l := countKeys(storedKeys(t, store, "r")); c != tc.leftChunks || l != tc.leftLg {
				t.Fatalf("left: %d chunks and %d log entries, want %d and %d", c, l, tc.leftChunks, tc.leftLg)
			}
			doc, _ := readBack(h, "r")
			sameDocument(t, "document read back", doc, mustMerge(t, ups...))
		})
	}
}

// A compaction cut short after its snapshot (the log entries it holds are
// still there), and a snapshot in several chunks, read back whole.
func TestReplay(t *testing.T) {
	ups := edits(1, 6)
	all := mustMerge(t, ups...)
	store := storage.NewMemoryStore()
	st, err := store.Open(party.DefaultParty, "r")
	if err != nil {
		t.Fatal(err)
	}
	var b storage.Batch
	b.Put(chunkKey(0), all[:len(all)/2])
	b.Put(chunkKey(1), all[len(all)/2:])
	for i, u := range ups[3:] {
		b.Put(logKey(uint64(i+1)), u)
	}
	if err := st.Write(&b); err != nil {
		t.Fatal(err)
	}
	st.Close()

	h := serveRooms(t, nil, store)
	a, _ := h.dial("r")
	more := typing(1, 6, "z")
	a.send(syncMsg(syncUpdate, more))
	a.fence()
	if got := storedKeys(t, store, "r"); !strings.HasSuffix(got[len(got)-1], "0000000000000004") {
		t.Fatalf("the next log entry after 3: %v", got)
	}
	sameDocument(t, "document", h.document("r"), mustMerge(t, all, more))
	a.close()
	h.dropped("r")
	doc, _ := readBack(h, "r")
	sameDocument(t, "document after compaction", doc, mustMerge(t, all, more))
}

func TestStorageRefusesNonYjsKeys(t *testing.T) {
	store := storage.NewMemoryStore()
	st, _ := store.Open(party.DefaultParty, "r")
	st.Put(StoragePrefix+"other", []byte{1})
	st.Put("app/own", []byte{1}) // the app's keys are left alone
	st.Close()
	h := serveRooms(t, nil, store)
	c := h.connect("r")
	if ce := c.closed(); ce.Code != 1011 || !strings.Contains(ce.Reason, "yjs/other") {
		t.Fatalf("a room with a foreign key under yjs/: closed with %d %q, want 1011 naming the key", ce.Code, ce.Reason)
	}
}

func TestStoreBeforeSend(t *testing.T) {
	errs := make(chan error, 4)
	store := &flakyStore{MemoryStore: storage.NewMemoryStore()}
	h := serveRooms(t, &Options{OnError: func(c *party.Connection, err error) { errs <- err }}, store)
	a, _ := h.dial("r")
	b, _ := h.dial("r")
	first := typing(1, 0, "one")
	a.send(syncMsg(syncUpdate, first))
	b.expectSync(syncUpdate)
	if n := store.puts.Load(); n != 1 {
		t.Fatalf("%d Puts when the update reached b, want 1 (stored before it is sent)", n)
	}

	store.fail.Store(true)
	a.send(syncMsg(syncUpdate, typing(1, 3, "two")))
	if ce := a.closed(); ce.Code != 1011 {
		t.Fatalf("an update that could not be stored closed its connection with %d %q, want 1011", ce.Code, ce.Reason)
	}
	if err := <-errs; !errors.Is(err, errDiskOnFire) {
		t.Fatalf("OnError got %v, want the storage's error", err)
	}
	b.fence() // b did not get it
	if got := h.document("r"); !bytes.Equal(got, first) {
		t.Fatalf("document %x, want %x (the update not stored is not applied)", got, first)
	}
}

func TestLoad(t *testing.T) {
	initial := typing(9, 0, "from the database")
	calls := 0
	fail := true
	opts := &Options{Load: func() ([]byte, error) {
		calls++
		if fail {
			return nil, errors.New("database down")
		}
		return initial, nil
	}}
	store := storage.NewMemoryStore()
	h := serveRooms(t, opts, store)
	if ce := h.connect("r").closed(); ce.Code != 1011 || !strings.Contains(ce.Reason, "database down") {
		t.Fatalf("a failed Load: closed with %d %q, want 1011 with Load's error", ce.Code, ce.Reason)
	}
	fail = false
	doc, _ := readBack(h, "r")
	sameDocument(t, "loaded document", doc, initial)
	h.dropped("r")
	doc, _ = readBack(h, "r")
	sameDocument(t, "document after a drop", doc, initial)
	if calls != 2 {
		t.Fatalf("Load called %d times, want 2 (a failure, then once: its result is stored)", calls)
	}

	bad := serveRooms(t, &Options{Load: func() ([]byte, error) { return []byte{1, 2, 3}, nil }}, nil)
	if ce := bad.connect("r").closed(); ce.Code != 1011 || !strings.Contains(ce.Reason, "Load") {
		t.Fatalf("a malformed Load: closed with %d %q, want 1011", ce.Code, ce.Reason)
	}
	empty := serveRooms(t, &Options{Load: func() ([]byte, error) { return nil, nil }}, nil)
	if _, sv := readBack(empty, "r"); !bytes.Equal(sv, []byte{0}) {
		t.Fatalf("an empty Load: state vector %x, want 00", sv)
	}
}
