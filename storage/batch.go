package storage

import (
	"fmt"
	"iter"

	"party/storage/internal/ondisk"
)

// Batch is a list of Put and Delete operations that [Storage.Write] applies
// atomically. The zero value is an empty batch, ready to use. A Batch is not
// safe for concurrent use while it is being filled.
type Batch struct {
	// ops are applied as they are: values are copies that nothing writes
	// into, so a store's index may keep them.
	ops  []ondisk.Op
	size int   // sum of key and value lengths, plus batchOpOverhead an op
	err  error // the first invalid operation or excess of MaxBatchLen
}

// batchOpOverhead is what an operation counts towards MaxBatchLen besides its
// key and value: more than it takes in a FileStore record.
const batchOpOverhead = 32

// Put adds a Put of value under key; value is copied, and a nil value is
// stored as an empty one. An invalid key or value makes Write of b fail.
func (b *Batch) Put(key string, value []byte) {
	b.add(ondisk.Op{Key: key, Value: append([]byte{}, value...)})
}

// Delete adds a Delete of key. An invalid key makes Write of b fail.
func (b *Batch) Delete(key string) {
	b.add(ondisk.Op{Delete: true, Key: key})
}

func (b *Batch) add(op ondisk.Op) {
	b.ops = append(b.ops, op)
	b.size += len(op.Key) + len(op.Value) + batchOpOverhead
	if b.err == nil {
		b.err = checkOp(op)
	}
	if b.err == nil && b.size > MaxBatchLen {
		b.err = fmt.Errorf("%w: batch of %d bytes, over %d", ErrValueTooLarge, b.size, MaxBatchLen)
	}
}

// Op is one operation of a [Batch], as a [Provider]'s Write reads it with
// [Batch.Ops]: a Put of Value under Key or, if Delete, a Delete of Key.
type Op struct {
	Delete bool
	Key    string
	// Value is the Batch's own copy of a Put's value (never nil): a store may
	// keep it, and must not change it.
	Value []byte
}

// Ops yields b's operations in the order they were added, for the Write of
// a Provider outside this package. Check [Batch.Err] first: an invalid
// batch must be refused whole.
func (b *Batch) Ops() iter.Seq[Op] {
	return func(yield func(Op) bool) {
		for _, op := range b.ops {
			if !yield(Op{Delete: op.Delete, Key: op.Key, Value: op.Value}) {
				return
			}
		}
	}
}

// Err returns why b cannot be written (an error wrapping ErrKeyTooLong or
// ErrValueTooLarge, naming the operation), or nil. [Storage.Write] of a
// batch with an error applies none of it and returns that error.
func (b *Batch) Err() error { return b.err }

// Len returns the number of operations in b.
func (b *Batch) Len() int { return len(b.ops) }

// Reset empties b for reuse, valid again whatever it held.
func (b *Batch) Reset() {
	clear(b.ops)
	*b = Batch{ops: b.ops[:0]}
}

// checkOp returns the error wrapping ErrKeyTooLong or ErrValueTooLarge that
// makes op invalid, or nil.
func checkOp(op ondisk.Op) error {
	if len(op.Key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, over %d", ErrKeyTooLong, len(op.Key), MaxKeyLen)
	}
	if len(op.Value) > MaxValueLen {
		return fmt.Errorf("%w: %d bytes under key %.64q, over %d", ErrValueTooLarge, len(op.Value), op.Key, MaxValueLen)
	}
	return nil
}

// checkPut is checkOp for a Put of value under key.
func checkPut(key string, value []byte) error {
	return checkOp(ondisk.Op{Key: key, Value: value})
}
