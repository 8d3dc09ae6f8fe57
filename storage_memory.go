package party

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryStore is a [StorageProvider] that keeps every room's storage in the
// memory of the process: it survives a room being dropped and built again,
// not a restart. The zero value is an empty store, ready to use; it must not
// be copied after first use.
//
// A room's data stays until deleted; a room whose storage is empty (no key,
// no alarm) costs nothing once its last handle is closed.
type MemoryStore struct {
	mu    sync.Mutex
	rooms map[storeKey]*memRoom
}

var _ StorageProvider = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

type storeKey struct{ party, room string }

type memRoom struct {
	refs  int // guarded by MemoryStore.mu
	mu    sync.Mutex
	idx   kvIndex
	alarm time.Time
}

// Open returns a handle on the storage of room in party. It never fails.
func (s *MemoryStore) Open(party, room string) (Storage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms == nil {
		s.rooms = make(map[storeKey]*memRoom)
	}
	k := storeKey{party, room}
	r := s.rooms[k]
	if r == nil {
		r = &memRoom{}
		s.rooms[k] = r
	}
	r.refs++
	return &memStorage{store: s, key: k, r: r}, nil
}

// Alarms lists the rooms whose alarm is set, soonest first.
func (s *MemoryStore) Alarms() ([]RoomAlarm, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RoomAlarm
	for k, r := range s.rooms {
		r.mu.Lock()
		if !r.alarm.IsZero() {
			out = append(out, RoomAlarm{Party: k.party, Room: k.room, At: r.alarm})
		}
		r.mu.Unlock()
	}
	sortAlarms(out)
	return out, nil
}

func sortAlarms(a []RoomAlarm) {
	slices.SortFunc(a, func(x, y RoomAlarm) int {
		return cmp.Or(x.At.Compare(y.At), cmp.Compare(x.Party, y.Party), cmp.Compare(x.Room, y.Room))
	})
}

// memStorage is one handle returned by MemoryStore.Open.
type memStorage struct {
	store  *MemoryStore
	key    storeKey
	r      *memRoom
	closed atomic.Bool
}

func (m *memStorage) lock() error {
	if m.closed.Load() {
		return ErrStorageClosed
	}
	m.r.mu.Lock()
	return nil
}

func (m *memStorage) Get(key string) ([]byte, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.r.mu.Unlock()
	v, ok := m.r.idx.get(key)
	if !ok {
		return nil, fmt.Errorf("%w: %.64q", ErrKeyNotFound, key)
	}
	return append([]byte{}, v...), nil
}

func (m *memStorage) Put(key string, value []byte) error {
	if err := checkPut(key, value); err != nil {
		return err
	}
	value = append([]byte{}, value...)
	if err := m.lock(); err != nil {
		return err
	}
	defer m.r.mu.Unlock()
	m.r.idx.put(key, value)
	return nil
}

func (m *memStorage) Delete(key string) (bool, error) {
	if err := m.lock(); err != nil {
		return false, err
	}
	defer m.r.mu.Unlock()
	return m.r.idx.delete(key), nil
}

func (m *memStorage) Write(b *Batch) error {
	if b.err != nil {
		return b.err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.r.mu.Unlock()
	for _, op := range b.ops {
		if op.del {
			m.r.idx.delete(op.key)
		} else {
			// The batch's copy is shared with the index: a Batch
			// never writes into a value it holds, and Reset drops it.
			m.r.idx.put(op.key, op.value)
		}
	}
	return nil
}

func (m *memStorage) List(opts ListOptions) ([]KeyValue, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.r.mu.Unlock()
	return m.r.idx.list(opts), nil
}

func (m *memStorage) DeleteAll() error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.r.mu.Unlock()
	m.r.idx = kvIndex{}
	return nil
}

func (m *memStorage) GetAlarm() (time.Time, error) {
	if err := m.lock(); err != nil {
		return time.Time{}, err
	}
	defer m.r.mu.Unlock()
	return m.r.alarm, nil
}

func (m *memStorage) SetAlarm(t time.Time) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.r.mu.Unlock()
	m.r.alarm = alarmTime(t)
	return nil
}

func (m *memStorage) DeleteAlarm() error { return m.SetAlarm(time.Time{}) }

func (m *memStorage) Close() error {
	if m.closed.Swap(true) {
		return ErrStorageClosed
	}
	s := m.store
	s.mu.Lock()
	defer s.mu.Unlock()
	r := m.r
	r.refs--
	if r.refs == 0 {
		r.mu.Lock()
		empty := r.idx.len() == 0 && r.alarm.IsZero()
		r.mu.Unlock()
		if empty {
			delete(s.rooms, m.key)
		}
	}
	return nil
}

// kvIndex is the ordered in-memory map behind both stores. Lookups are
// O(1); the key order is kept lazily: keys added since the last List are
// sorted and merged in by the next List, so a run of writes costs no sorting
// and a List costs O(log n + k) when nothing was added.
//
// It stores the slices it is given and returns its own: callers copy.
type kvIndex struct {
	m      map[string]kvEntry
	sorted []string // sorted, no duplicates; every key is in m (maybe dead)
	added  []string // live keys of m missing from sorted
	dead   int      // entries of m that are dead (deleted, kept only while in sorted)
	bytes  int64    // sum of len(key)+len(value) over live entries
}

type kvEntry struct {
	value    []byte
	inSorted bool
	dead     bool
}

func (x *kvIndex) len() int { return len(x.m) - x.dead }

func (x *kvIndex) get(key string) ([]byte, bool) {
	e, ok := x.m[key]
	if !ok || e.dead {
		return nil, false
	}
	return e.value, true
}

func (x *kvIndex) put(key string, value []byte) {
	if value == nil {
		value = []byte{}
	}
	if x.m == nil {
		x.m = make(map[string]kvEntry)
	}
	e, ok := x.m[key]
	switch {
	case !ok:
		x.added = append(x.added, key)
	case e.dead:
		x.dead--
	default:
		x.bytes -= int64(len(key) + len(e.value))
	}
	x.bytes += int64(len(key) + len(value))
	x.m[key] = kvEntry{value: value, inSorted: e.inSorted}
	if len(x.added) > 64+2*len(x.m) {
		x.settle() // a key deleted and put again repeatedly is in added many times
	}
}

func (x *kvIndex) delete(key string) bool {
	e, ok := x.m[key]
	if !ok || e.dead {
		return false
	}
	x.bytes -= int64(len(key) + len(e.value))
	if !e.inSorted {
		// Still in added: dropped there by the next settle.
		delete(x.m, key)
		return true
	}
	x.m[key] = kvEntry{inSorted: true, dead: true}
	x.dead++
	return true
}

// settle merges added into sorted, dropping dead keys if there are many.
func (x *kvIndex) settle() {
	if len(x.added) == 0 && x.dead <= 64+len(x.sorted)/2 {
		return
	}
	// Keys of added that were deleted since are gone from m; a key deleted
	// and put again is in added twice.
	add := x.added[:0]
	for _, k := range x.added {
		if e, ok := x.m[k]; ok && !e.inSorted {
			e.inSorted = true
			x.m[k] = e
			add = append(add, k)
		}
	}
	sort.Strings(add)
	merged := make([]string, 0, len(x.sorted)+len(add)-x.dead)
	i, j := 0, 0
	for i < len(x.sorted) || j < len(add) {
		var k string
		if j == len(add) || (i < len(x.sorted) && x.sorted[i] < add[j]) {
			k = x.sorted[i]
			i++
			if x.m[k].dead {
				delete(x.m, k)
				continue
			}
		} else {
			k = add[j]
			j++
		}
		merged = append(merged, k)
	}
	clear(x.added)
	x.added = x.added[:0]
	x.sorted = merged
	x.dead = 0
}

func (x *kvIndex) list(o ListOptions) []KeyValue {
	x.settle()
	lo, hi, bounded := o.Start, o.End, o.End != ""
	if o.Prefix != "" {
		lo = max(lo, o.Prefix)
		if end, ok := prefixEnd(o.Prefix); ok && (!bounded || end < hi) {
			hi, bounded = end, true
		}
	}
	i := sort.SearchStrings(x.sorted, lo)
	j := len(x.sorted)
	if bounded {
		j = sort.SearchStrings(x.sorted, hi)
	}
	if i >= j {
		return nil
	}
	keys := x.sorted[i:j]
	var out []KeyValue
	emit := func(k string) bool {
		e := x.m[k]
		if e.dead {
			return true
		}
		out = append(out, KeyValue{Key: k, Value: append([]byte{}, e.value...)})
		return o.Limit <= 0 || len(out) < o.Limit
	}
	if o.Reverse {
		for n := len(keys) - 1; n >= 0 && emit(keys[n]); n-- {
		}
	} else {
		for n := 0; n < len(keys) && emit(keys[n]); n++ {
		}
	}
	return out
}

// prefixEnd returns the least string greater than every string starting with
// p, and false if there is none (p is all 0xff bytes).
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// each calls f for every live entry, in no particular order.
func (x *kvIndex) each(f func(key string, value []byte)) {
	for k, e := range x.m {
		if !e.dead {
			f(k, e.value)
		}
	}
}
