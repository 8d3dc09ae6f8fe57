// Package storage is the key-value storage of party's rooms (PartyKit's
// room.storage) and the store of their alarm times, with two providers:
// [MemoryStore], for the life of a process, and [FileStore], durable across
// crashes of the process and of the machine.
//
// A Host gives each room a [Storage] opened from its [Provider]; a room's
// Server reaches it with Room.Storage. The two concepts are apart: a
// [Provider] opens key-value stores, an [AlarmStore] keeps each room's one
// alarm time. An engine of another kind (a database, NATS JetStream)
// implements [Provider], and [AlarmStore] if its alarms should survive a
// restart.
package storage

import (
	"encoding/json"
	"fmt"
	"time"
)

// Storage is the key-value store of one room: string keys, byte-slice
// values, kept in key order.
//
// Every method is safe for concurrent use. Each call is atomic: a reader sees
// a write (or a [Batch]) either entirely or not at all. There are no
// multi-call transactions; a room gets the effect of PartyKit's
// storage.transaction by reading and then calling Write within one handler,
// since a room's handlers run one at a time.
//
// Values passed in are copied before the call returns, and values handed out
// are copies the caller owns and may modify.
//
// A write that returned nil is durable as far as the implementation promises
// ([MemoryStore]: for the life of the process; [FileStore]: across a crash of
// the process or of the machine). A write that returned an error may or may
// not have been applied.
type Storage interface {
	// Get returns the value stored under key, or an error wrapping
	// ErrKeyNotFound if there is none.
	Get(key string) ([]byte, error)

	// Put stores value under key, replacing any previous value. A nil value
	// is stored as an empty one.
	Put(key string, value []byte) error

	// Delete removes key and reports whether it was there.
	Delete(key string) (bool, error)

	// Write applies every operation of b, in order, atomically: after a
	// crash, either all of them survive or none. If any operation is
	// invalid (a key over MaxKeyLen, a value over MaxValueLen), Write
	// applies none and returns an error. An empty batch is a no-op.
	Write(b *Batch) error

	// List returns the entries selected by opts in key order (byte-wise,
	// as Go compares strings), ascending, or descending if opts.Reverse;
	// nil if none is. The result is a snapshot: later writes do not change
	// it.
	List(opts ListOptions) ([]KeyValue, error)

	// DeleteAll removes every key. The room's alarm, kept by an
	// [AlarmStore], is not touched.
	DeleteAll() error

	// Close releases this handle; the data stays in the store, and a later
	// Open of the same room sees it. After Close every method returns
	// ErrStorageClosed. The Host closes a room's Storage when it drops the
	// room: a Server must not close it.
	Close() error
}

// Provider gives each room of each party its Storage.
//
// Open returns a handle on the storage of room in party (the room id as in
// Room.ID, still percent-encoded). Any two handles of the same room see the
// same data, whether open at the same time or one after the other: the
// provider shares one store between them. Each successful Open must be
// matched by one Close of the handle it returned; a provider may release
// what it holds for a room (a file, memory) when the last handle is closed.
//
// Implementations must be safe for concurrent use. [MemoryStore] and
// [FileStore] implement it.
type Provider interface {
	Open(party, room string) (Storage, error)
}

// AlarmStore keeps the one alarm time of each room (PartyKit's
// storage.setAlarm), so that a Host started after a restart can wake the
// rooms whose alarms were set before it. It only stores times: scheduling
// them is the Host's job (Room.SetAlarm).
//
// Alarm returns the time set for a room, or the zero Time if none is.
// SetAlarm records at as the room's alarm, replacing any other; the zero Time
// removes it. Only the instant is kept (to the nanosecond), not the monotonic
// reading or location. Alarms lists every room whose alarm is set, soonest
// first; it returns every alarm it could read, and an error describing those
// it could not.
//
// Implementations must be safe for concurrent use; the Host never calls
// SetAlarm concurrently for the same room. [MemoryStore] and [FileStore]
// implement it.
type AlarmStore interface {
	Alarm(party, room string) (time.Time, error)
	SetAlarm(party, room string, at time.Time) error
	Alarms() ([]RoomAlarm, error)
}

// RoomAlarm is the alarm of one room, as listed by [AlarmStore.Alarms].
type RoomAlarm struct {
	Party string
	Room  string
	At    time.Time
}

// KeyValue is one entry returned by [Storage.List].
type KeyValue struct {
	Key   string
	Value []byte
}

// ListOptions selects the entries returned by [Storage.List]: the keys that
// start with Prefix and fall in [Start, End), in key order. The zero value
// selects every key.
//
// To page through a large range, list with a Limit and start the next page at
// the last key returned + "\x00" (or, in reverse, end it at the last key).
type ListOptions struct {
	// Prefix, if not empty, keeps only the keys that start with it.
	Prefix string
	// Start is the first key that may be returned (inclusive).
	Start string
	// End is the key the range stops before (exclusive). Empty means no
	// upper bound.
	End string
	// Reverse lists in descending key order: with a Limit, the greatest
	// keys of the range are returned.
	Reverse bool
	// Limit is the most entries returned. Zero or less means no limit.
	Limit int
}

// Limits on what a Storage accepts; writes over them fail with an error
// wrapping ErrKeyTooLong or ErrValueTooLarge.
const (
	MaxKeyLen   = 2048     // bytes, as Durable Objects
	MaxValueLen = 16 << 20 // 16 MiB (Durable Objects: 128 KiB)
	MaxBatchLen = 64 << 20 // 64 MiB: keys and values of one Batch, plus 32 bytes an operation
)

// GetJSON reads the value under key into v with [json.Unmarshal]. It returns
// an error wrapping ErrKeyNotFound if key has no value.
func GetJSON(s Storage, key string, v any) error {
	data, err := s.Get(key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("party: storage key %.64q: %w", key, err)
	}
	return nil
}

// PutJSON stores v under key, encoded with [json.Marshal].
func PutJSON(s Storage, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("party: storage key %.64q: %w", key, err)
	}
	return s.Put(key, data)
}
