package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"party/storage"
)

// newStore opens a Store on its own connection to ns, writing with token
// (as a node holding that lease would); CompactEvery 0 keeps the default.
func newStore(t testing.TB, ns *server.Server, token uint64, compactEvery int) *Store {
	t.Helper()
	_, js := connect(t, ns)
	s, err := NewStore(testCtx(t, 5*time.Second), js, StoreConfig{
		Token:        func(string, string) (uint64, error) { return token, nil },
		CompactEvery: compactEvery,
		Timeout:      5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustOpen(t testing.TB, p storage.Provider, party, room string) storage.Storage {
	t.Helper()
	s, err := p.Open(party, room)
	if err != nil {
		t.Fatalf("Open(%q, %q): %v", party, room, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustPut(t testing.TB, s storage.Storage, key, value string) {
	t.Helper()
	if err := s.Put(key, []byte(value)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// wantValue fails unless key holds value ("" with absent: no value).
func wantValue(t testing.TB, s storage.Storage, key, value string, absent bool) {
	t.Helper()
	got, err := s.Get(key)
	switch {
	case absent && !errors.Is(err, storage.ErrKeyNotFound):
		t.Fatalf("Get(%q) = %q, %v; want ErrKeyNotFound", key, got, err)
	case !absent && (err != nil || string(got) != value):
		t.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, value)
	}
}

func keysOf(kvs []storage.KeyValue) []string {
	out := []string{}
	for _, kv := range kvs {
		out = append(out, kv.Key)
	}
	return out
}

// contract is one check of storage.Storage's documented behaviour: it writes
// through s, checks, and (if it has one) checks again with after on the
// same room reopened on another connection.
type contract struct {
	name  string
	check func(t *testing.T, s storage.Storage)
	after func(t *testing.T, s storage.Storage)
}

var listKeys = []string{"", "a", "a/1", "a/2", "a/3", "ab", "b", "b/1", "c", "\xff", "\xff\xff", "\xff\xffz"}

// listCases are List's options and the keys of listKeys they select.
var listCases = []struct {
	opts storage.ListOptions
	want []string
}{
	{storage.ListOptions{}, listKeys},
	{storage.ListOptions{Prefix: "a/"}, []string{"a/1", "a/2", "a/3"}},
	{storage.ListOptions{Prefix: "a"}, []string{"a", "a/1", "a/2", "a/3", "ab"}},
	{storage.ListOptions{Prefix: "\xff\xff"}, []string{"\xff\xff", "\xff\xffz"}},
	{storage.ListOptions{Prefix: "q"}, []string{}},
	{storage.ListOptions{Start: "b"}, []string{"b", "b/1", "c", "\xff", "\xff\xff", "\xff\xffz"}},
	{storage.ListOptions{End: "a/2"}, []string{"", "a", "a/1"}},
	{storage.ListOptions{Start: "a/15", End: "a/25"}, []string{"a/2"}},
	{storage.ListOptions{Start: "c", End: "b"}, []string{}},
	{storage.ListOptions{Prefix: "b", Start: "a"}, []string{"b", "b/1"}},
	{storage.ListOptions{Prefix: "a/", End: "a/3"}, []string{"a/1", "a/2"}},
	{storage.ListOptions{Limit: 2}, []string{"", "a"}},
	{storage.ListOptions{Prefix: "b", Limit: -1}, []string{"b", "b/1"}},
	{storage.ListOptions{Reverse: true, Limit: 2}, []string{"\xff\xffz", "\xff\xff"}},
	{storage.ListOptions{Start: "a/2", End: "b/1", Reverse: true}, []string{"b", "ab", "a/3", "a/2"}},
}

func checkList(t *testing.T, s storage.Storage) {
	for _, c := range listCases {
		got, err := s.List(c.opts)
		if err != nil {
			t.Fatalf("List(%+v): %v", c.opts, err)
		}
		if !slices.Equal(keysOf(got), c.want) {
			t.Errorf("List(%+v) = %q, want %q", c.opts, keysOf(got), c.want)
		}
		for _, kv := range got {
			if string(kv.Value) != "v"+kv.Key {
				t.Errorf("List(%+v): %q holds %q, want %q", c.opts, kv.Key, kv.Value, "v"+kv.Key)
			}
		}
	}
}

var contracts = []contract{
	{name: "get put delete", check: func(t *testing.T, s storage.Storage) {
		wantValue(t, s, "k", "", true)
		mustPut(t, s, "k", "one")
		mustPut(t, s, "k", "two")
		wantValue(t, s, "k", "two", false)
		if err := s.Put("empty", nil); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get("empty"); err != nil || v == nil || len(v) != 0 {
			t.Fatalf("Get of a nil Put = %v, %v; want an empty, non-nil value", v, err)
		}
		mustPut(t, s, "gone", "x")
		if ok, err := s.Delete("gone"); !ok || err != nil {
			t.Fatalf("Delete of a key = %v, %v", ok, err)
		}
		if ok, err := s.Delete("gone"); ok || err != nil {
			t.Fatalf("Delete of no key = %v, %v", ok, err)
		}
		in := []byte("mine")
		_ = s.Put("copy", in)
		in[0] = 'X'
		out, _ := s.Get("copy")
		out[1] = 'X'
		wantValue(t, s, "copy", "mine", false)
	}, after: func(t *testing.T, s storage.Storage) {
		wantValue(t, s, "k", "two", false)
		wantValue(t, s, "empty", "", false)
		wantValue(t, s, "gone", "", true)
		wantValue(t, s, "copy", "mine", false)
	}},
	{name: "list", check: func(t *testing.T, s storage.Storage) {
		for _, i := range []int{5, 0, 11, 3, 8, 1, 10, 2, 9, 4, 7, 6} {
			mustPut(t, s, listKeys[i], "v"+listKeys[i])
		}
		checkList(t, s)
	}, after: checkList},
	{name: "batch applies all", check: func(t *testing.T, s storage.Storage) {
		mustPut(t, s, "b", "old")
		mustPut(t, s, "d", "old")
		var b storage.Batch
		b.Put("a", []byte("1"))
		b.Delete("b")
		b.Put("c", []byte("1"))
		b.Delete("c")
		b.Delete("d")
		b.Put("d", []byte("new"))
		b.Put("a", []byte("2"))
		b.Delete("nothing")
		if err := s.Write(&b); err != nil {
			t.Fatal(err)
		}
		checkBatch(t, s)
		if err := s.Write(&storage.Batch{}); err != nil {
			t.Fatalf("empty batch: %v", err)
		}
	}, after: checkBatch},
	{name: "invalid batch applies nothing", check: func(t *testing.T, s storage.Storage) {
		mustPut(t, s, "a", "old")
		var b storage.Batch
		b.Put("a", []byte("new"))
		b.Put(strings.Repeat("k", storage.MaxKeyLen+1), nil)
		if err := s.Write(&b); !errors.Is(err, storage.ErrKeyTooLong) {
			t.Fatalf("Write of a batch with a long key: %v, want ErrKeyTooLong", err)
		}
		b.Reset()
		b.Delete("a")
		b.Put("big", make([]byte, storage.MaxValueLen+1))
		if err := s.Write(&b); !errors.Is(err, storage.ErrValueTooLarge) {
			t.Fatalf("Write of a batch with a large value: %v, want ErrValueTooLarge", err)
		}
		wantValue(t, s, "a", "old", false)
		wantValue(t, s, "big", "", true)
	}, after: func(t *testing.T, s storage.Storage) {
		wantValue(t, s, "a", "old", false)
	}},
	{name: "limits", check: func(t *testing.T, s storage.Storage) {
		if err := s.Put(strings.Repeat("k", storage.MaxKeyLen+1), nil); !errors.Is(err, storage.ErrKeyTooLong) {
			t.Fatalf("Put of a long key: %v", err)
		}
		if err := s.Put("v", make([]byte, storage.MaxValueLen+1)); !errors.Is(err, storage.ErrValueTooLarge) {
			t.Fatalf("Put of a large value: %v", err)
		}
		mustPut(t, s, strings.Repeat("k", storage.MaxKeyLen), "longest")
	}, after: func(t *testing.T, s storage.Storage) {
		wantValue(t, s, strings.Repeat("k", storage.MaxKeyLen), "longest", false)
	}},
	{name: "delete all", check: func(t *testing.T, s storage.Storage) {
		mustPut(t, s, "a", "1")
		mustPut(t, s, "b", "2")
		if err := s.DeleteAll(); err != nil {
			t.Fatal(err)
		}
		if kvs, err := s.List(storage.ListOptions{}); err != nil || kvs != nil {
			t.Fatalf("List after DeleteAll = %q, %v", keysOf(kvs), err)
		}
		mustPut(t, s, "c", "3")
	}, after: func(t *testing.T, s storage.Storage) {
		kvs, err := s.List(storage.ListOptions{})
		if err != nil || !slices.Equal(keysOf(kvs), []string{"c"}) {
			t.Fatalf("List after DeleteAll and a Put = %q, %v", keysOf(kvs), err)
		}
	}},
}

func checkBatch(t *testing.T, s storage.Storage) {
	kvs, err := s.List(storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range kvs {
		got = append(got, kv.Key+"="+string(kv.Value))
	}
	if want := []string{"a=2", "d=new"}; !slices.Equal(got, want) {
		t.Fatalf("after the batch: %q, want %q", got, want)
	}
}

// TestStoreContract runs the contract checks on a Store, then again on the
// same rooms through a new connection and a new Store (a node's restart),
// then after a restart of the NATS server itself.
func TestStoreContract(t *testing.T) {
	dir := t.TempDir()
	ns := startServer(t, dir)
	s := newStore(t, ns, 0, 0)
	for _, c := range contracts {
		t.Run(c.name, func(t *testing.T) {
			h := mustOpen(t, s, "main", c.name)
			c.check(t, h)
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	reopened := newStore(t, ns, 0, 0)
	for _, c := range contracts {
		t.Run(c.name+" after reopening", func(t *testing.T) { c.after(t, mustOpen(t, reopened, "main", c.name)) })
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	restarted := newStore(t, startServer(t, dir), 0, 0)
	for _, c := range contracts {
		t.Run(c.name+" after a server restart", func(t *testing.T) { c.after(t, mustOpen(t, restarted, "main", c.name)) })
	}
}

// TestStoreHandles: handles of a room on one Store share its data at once;
// a closed handle refuses every call; a batch is seen whole or not at all.
func TestStoreHandles(t *testing.T) {
	ns := startServer(t, "")
	s := newStore(t, ns, 0, 0)
	a, b := mustOpen(t, s, "main", "r"), mustOpen(t, s, "main", "r")
	mustPut(t, a, "k", "v")
	wantValue(t, b, "k", "v", false)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // reads while batches write x and y together
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			kvs, err := b.List(storage.ListOptions{Prefix: "pair/"})
			if err != nil {
				t.Error(err)
				return
			}
			if len(kvs) == 2 && !bytes.Equal(kvs[0].Value, kvs[1].Value) || len(kvs) == 1 {
				t.Errorf("a reader saw half a batch: %q", kvs)
				return
			}
		}
	}()
	for i := range 50 {
		var batch storage.Batch
		batch.Put("pair/x", fmt.Appendf(nil, "%d", i))
		batch.Put("pair/y", fmt.Appendf(nil, "%d", i))
		if err := a.Write(&batch); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, storage.ErrStorageClosed) {
		t.Fatalf("second Close: %v", err)
	}
	_, errGet := a.Get("k")
	errPut := a.Put("k", nil)
	_, errDel := a.Delete("k")
	errWrite := a.Write(&storage.Batch{})
	_, errList := a.List(storage.ListOptions{})
	errAll := a.DeleteAll()
	for i, err := range []error{errGet, errPut, errDel, errWrite, errList, errAll} {
		if !errors.Is(err, storage.ErrStorageClosed) {
			t.Errorf("call %d on a closed handle: %v, want ErrStorageClosed", i, err)
		}
	}
	wantValue(t, b, "k", "v", false) // the other handle is still open
}

// TestStoreValueSizes: a record is one NATS message, so a value is limited
// by the server's max_payload as well as by MaxValueLen.
func TestStoreValueSizes(t *testing.T) {
	ns := startServer(t, "")
	s := newStore(t, ns, 0, 0)
	h := mustOpen(t, s, "main", "sizes")
	if err := h.Put("big", make([]byte, 2<<20)); !errors.Is(err, storage.ErrValueTooLarge) {
		t.Fatalf("2 MiB value with the default 1 MiB max_payload: %v, want ErrValueTooLarge", err)
	}
	mustPut(t, h, "fits", strings.Repeat("x", 900<<10))
	wantValue(t, h, "fits", strings.Repeat("x", 900<<10), false)
}

// TestStoreCompaction: a room's subject keeps at most CompactEvery records,
// and what they replace is still read back after a restart.
func TestStoreCompaction(t *testing.T) {
	ns := startServer(t, "")
	s := newStore(t, ns, 0, 10)
	h := mustOpen(t, s, "main", "busy")
	for i := range 95 {
		mustPut(t, h, fmt.Sprintf("k%02d", i%30), fmt.Sprint(i))
	}
	_, js := connect(t, ns)
	st, err := js.Stream(testCtx(t, 5*time.Second), DefaultStoreStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(testCtx(t, 5*time.Second), jetstream.WithSubjectFilter(DefaultStoreSubject+".main.busy"))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[DefaultStoreSubject+".main.busy"]; n == 0 || n > 10 {
		t.Fatalf("%d records on the room's subject after 95 writes, want 1 to 10", n)
	}
	again := mustOpen(t, newStore(t, ns, 0, 10), "main", "busy")
	for i := 65; i < 95; i++ {
		wantValue(t, again, fmt.Sprintf("k%02d", i%30), fmt.Sprint(i), false)
	}
}
