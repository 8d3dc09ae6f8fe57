package party

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Storage is the key-value store of one room, PartyKit's room.storage: string
// keys, byte-slice values, kept in key order, plus the room's one alarm time.
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

	// DeleteAll removes every key. It leaves the alarm alone (as Durable
	// Objects did before 2026: call DeleteAlarm for that).
	DeleteAll() error

	// GetAlarm returns the alarm time last set, or the zero Time if none is.
	GetAlarm() (time.Time, error)

	// SetAlarm records t as the room's one alarm, replacing any other.
	// Setting the zero Time is the same as DeleteAlarm. Only the instant is
	// kept (to the nanosecond); the monotonic reading and location are not.
	//
	// Storage only stores the time. Scheduling it is the Host's job: use
	// [Room.SetAlarm] from a Server.
	SetAlarm(t time.Time) error

	// DeleteAlarm removes the alarm, if any.
	DeleteAlarm() error

	// Close releases this handle; the data stays in the store, and a later
	// Open of the same room sees it. After Close every method returns
	// ErrStorageClosed. The Host closes a room's Storage when it drops the
	// room: a Server must not close it.
	Close() error
}

// StorageProvider gives each room of each party its Storage.
//
// Open returns a handle on the storage of room in party (the room id as in
// [Room.ID], still percent-encoded). Any two handles of the same room see the
// same data, whether open at the same time or one after the other: the
// provider shares one store between them. Each successful Open must be matched
// by one Close of the handle it returned; a provider may release what it holds
// for a room (a file, memory) when the last handle is closed.
//
// Alarms lists every room whose alarm is set, so that a Host started after a
// restart can wake the rooms whose alarms were set before it. It returns every
// alarm it could read, and an error describing those it could not.
//
// Implementations must be safe for concurrent use. [MemoryStore] and
// [FileStore] implement it.
type StorageProvider interface {
	Open(party, room string) (Storage, error)
	Alarms() ([]RoomAlarm, error)
}

// RoomAlarm is the alarm of one room, as listed by [StorageProvider.Alarms].
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

// Errors returned (wrapped) by Storage methods.
var (
	ErrKeyNotFound   = errors.New("party: storage key not found")
	ErrKeyTooLong    = errors.New("party: storage key too long")
	ErrValueTooLarge = errors.New("party: storage value too large")
	ErrStorageClosed = errors.New("party: storage closed")
	// ErrStorageCorrupt means a file of a FileStore holds data that is not
	// a torn last write and cannot be read; the file is left untouched.
	ErrStorageCorrupt = errors.New("party: storage file corrupt")
)

// Batch is a list of Put and Delete operations that [Storage.Write] applies
// atomically. The zero value is an empty batch, ready to use. A Batch is not
// safe for concurrent use while it is being filled.
type Batch struct {
	ops  []batchOp
	size int // sum of key and value lengths, plus batchOpOverhead an op
	err  error
}

// batchOpOverhead is what an operation counts towards MaxBatchLen besides its
// key and value: more than it takes in a FileStore record.
const batchOpOverhead = 32

type batchOp struct {
	del   bool
	key   string
	value []byte
}

// Put adds a Put of value under key; value is copied.
func (b *Batch) Put(key string, value []byte) {
	b.add(batchOp{key: key, value: append([]byte{}, value...)})
}

// Delete adds a Delete of key.
func (b *Batch) Delete(key string) {
	b.add(batchOp{del: true, key: key})
}

func (b *Batch) add(op batchOp) {
	b.ops = append(b.ops, op)
	b.size += len(op.key) + len(op.value) + batchOpOverhead
	if b.err == nil {
		b.err = op.check()
	}
	if b.err == nil && b.size > MaxBatchLen {
		b.err = fmt.Errorf("%w: batch of %d bytes, over %d", ErrValueTooLarge, b.size, MaxBatchLen)
	}
}

// Len returns the number of operations in b.
func (b *Batch) Len() int { return len(b.ops) }

// Reset empties b for reuse.
func (b *Batch) Reset() {
	clear(b.ops)
	*b = Batch{ops: b.ops[:0]}
}

func (op batchOp) check() error {
	if len(op.key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, over %d", ErrKeyTooLong, len(op.key), MaxKeyLen)
	}
	if len(op.value) > MaxValueLen {
		return fmt.Errorf("%w: %d bytes under key %.64q, over %d", ErrValueTooLarge, len(op.value), op.key, MaxValueLen)
	}
	return nil
}

func checkPut(key string, value []byte) error {
	return batchOp{key: key, value: value}.check()
}

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

// alarmTime normalises t to what a Storage keeps of it: the instant only.
func alarmTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(t.Unix(), int64(t.Nanosecond()))
}
