package storage

import (
	"sync"
	"sync/atomic"
	"time"
)

// MemoryStore is a [Provider] and an [AlarmStore] that keeps every room's
// storage and alarm in the memory of the process: they survive a room being
// dropped and built again, not a restart. The zero value is an empty store,
// ready to use; it must not be copied after first use. Its methods, and those
// of the handles it opens, are safe for concurrent use.
//
// A room's data stays until deleted; a room whose storage is empty costs
// nothing once its last handle is closed, and a room's alarm costs nothing
// once removed.
type MemoryStore struct {
	mu     sync.Mutex
	rooms  map[roomKey]*memRoom
	alarms map[roomKey]time.Time
}

var (
	_ Provider   = (*MemoryStore)(nil)
	_ AlarmStore = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// memRoom is the storage of one room, shared by the handles open on it.
type memRoom struct {
	refs int // guarded by MemoryStore.mu
	mu   sync.Mutex
	idx  kvIndex
}

// Open returns a handle on the storage of room in party. It never fails.
func (s *MemoryStore) Open(party, room string) (Storage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms == nil {
		s.rooms = make(map[roomKey]*memRoom)
	}
	k := roomKey{party, room}
	r := s.rooms[k]
	if r == nil {
		r = &memRoom{}
		s.rooms[k] = r
	}
	r.refs++
	return &memHandle{store: s, key: k, r: r}, nil
}

// Alarm returns the alarm time of room in party, or the zero Time if none is
// set. It never fails.
func (s *MemoryStore) Alarm(party, room string) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alarms[roomKey{party, room}], nil
}

// SetAlarm records at (its instant only) as the alarm of room in party; the
// zero Time removes it. It never fails.
func (s *MemoryStore) SetAlarm(party, room string, at time.Time) error {
	at = alarmTime(at)
	k := roomKey{party, room}
	s.mu.Lock()
	defer s.mu.Unlock()
	if at.IsZero() {
		delete(s.alarms, k)
		return nil
	}
	if s.alarms == nil {
		s.alarms = make(map[roomKey]time.Time)
	}
	s.alarms[k] = at
	return nil
}

// Alarms lists the rooms whose alarm is set, soonest first. It never fails.
func (s *MemoryStore) Alarms() ([]RoomAlarm, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RoomAlarm
	for k, at := range s.alarms {
		out = append(out, RoomAlarm{Party: k.party, Room: k.room, At: at})
	}
	sortAlarms(out)
	return out, nil
}

// memHandle is one handle returned by MemoryStore.Open.
type memHandle struct {
	store  *MemoryStore
	key    roomKey
	r      *memRoom
	closed atomic.Bool
}

// lock locks the room, unless the handle is closed.
func (m *memHandle) lock() error {
	if m.closed.Load() {
		return ErrStorageClosed
	}
	m.r.mu.Lock()
	return nil
}

func (m *memHandle) Get(key string) ([]byte, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.r.mu.Unlock()
	return m.r.idx.lookup(key)
}

func (m *memHandle) Put(key string, value []byte) error {
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

func (m *memHandle) Delete(key string) (bool, error) {
	if err := m.lock(); err != nil {
		return false, err
	}
	defer m.r.mu.Unlock()
	return m.r.idx.delete(key), nil
}

func (m *memHandle) Write(b *Batch) error {
	if b.err != nil {
		return b.err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.r.mu.Unlock()
	m.r.idx.apply(b.ops)
	return nil
}

func (m *memHandle) List(opts ListOptions) ([]KeyValue, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.r.mu.Unlock()
	return m.r.idx.list(opts), nil
}

func (m *memHandle) DeleteAll() error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.r.mu.Unlock()
	m.r.idx = kvIndex{}
	return nil
}

// Close drops the handle's reference to its room, and the room with the last
// one if its storage is empty.
func (m *memHandle) Close() error {
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
		empty := r.idx.len() == 0
		r.mu.Unlock()
		if empty {
			delete(s.rooms, m.key)
		}
	}
	return nil
}
