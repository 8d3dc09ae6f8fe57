package cluster

import (
	"fmt"
	"slices"
	"sync/atomic"

	"party/storage"
)

// handle is one handle returned by Store.Open.
type handle struct {
	r      *storeRoom
	closed atomic.Bool
}

var _ storage.Storage = (*handle)(nil)

// lock locks the room, unless the handle is closed.
func (h *handle) lock() (*storeRoom, error) {
	if h.closed.Load() {
		return nil, storage.ErrStorageClosed
	}
	h.r.mu.Lock()
	return h.r, nil
}

// read locks the room for a read, loading it again if a write's outcome
// was unknown; on success the caller unlocks it.
func (h *handle) read() (*storeRoom, error) {
	r, err := h.lock()
	if err != nil {
		return nil, err
	}
	if !r.loaded {
		if err := r.load(); err != nil {
			r.mu.Unlock()
			return nil, err
		}
	}
	return r, nil
}

// Get returns a copy of the value under key, from memory: what this room's
// last load and its writes since left there.
func (h *handle) Get(key string) ([]byte, error) {
	r, err := h.read()
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	v, ok := r.x.get(key)
	if !ok {
		return nil, fmt.Errorf("%w: %.64q", storage.ErrKeyNotFound, key)
	}
	return append([]byte{}, v...), nil
}

// Put stores a copy of value under key, as one record.
func (h *handle) Put(key string, value []byte) error {
	if err := checkPut(key, value); err != nil {
		return err
	}
	r, err := h.lock()
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	return r.commit(kindWrite, []op{{key: key, value: slices.Clone(value)}})
}

// Delete removes key, as one record if it was there.
func (h *handle) Delete(key string) (bool, error) {
	r, err := h.lock()
	if err != nil {
		return false, err
	}
	defer r.mu.Unlock()
	if err := r.writable(); err != nil {
		return false, err
	}
	if _, ok := r.x.get(key); !ok {
		return false, nil
	}
	if err := r.commit(kindWrite, []op{{delete: true, key: key}}); err != nil {
		return false, err
	}
	return true, nil
}

// Write applies the net effect of b as one record: all of it or nothing.
func (h *handle) Write(b *storage.Batch) error {
	r, err := h.lock()
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	if b.Len() == 0 {
		return nil
	}
	if err := r.writable(); err != nil {
		return err
	}
	ops, err := batchOps(b, func(k string) bool { _, ok := r.x.get(k); return ok })
	if err != nil || len(ops) == 0 {
		return err
	}
	return r.commit(kindWrite, ops)
}

// List returns the selected entries, from memory.
func (h *handle) List(opts storage.ListOptions) ([]storage.KeyValue, error) {
	r, err := h.read()
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	return r.x.list(opts), nil
}

// DeleteAll removes every key, as one empty snapshot that replaces the
// room's records.
func (h *handle) DeleteAll() error {
	r, err := h.lock()
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	return r.commit(kindSnapshot, nil)
}

// Close releases the handle; the room's memory goes with its last handle.
func (h *handle) Close() error {
	if h.closed.Swap(true) {
		return storage.ErrStorageClosed
	}
	h.r.s.release(h.r)
	return nil
}

// checkPut returns the error wrapping ErrKeyTooLong or ErrValueTooLarge that
// makes a Put invalid, or nil.
func checkPut(key string, value []byte) error {
	if len(key) > storage.MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, over %d", storage.ErrKeyTooLong, len(key), storage.MaxKeyLen)
	}
	if len(value) > storage.MaxValueLen {
		return fmt.Errorf("%w: %d bytes under key %.64q, over %d", storage.ErrValueTooLarge, len(value), key, storage.MaxValueLen)
	}
	return nil
}
