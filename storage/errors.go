package storage

import "errors"

// The errors of the storage, returned wrapped (test them with errors.Is).
var (
	// ErrKeyNotFound is returned by Storage.Get and GetJSON for a key that
	// has no value.
	ErrKeyNotFound = errors.New("party: storage key not found")
	// ErrKeyTooLong is returned by a write with a key over MaxKeyLen; the
	// write applied nothing.
	ErrKeyTooLong = errors.New("party: storage key too long")
	// ErrValueTooLarge is returned by a write with a value over MaxValueLen,
	// or a Batch over MaxBatchLen; the write applied nothing.
	ErrValueTooLarge = errors.New("party: storage value too large")
	// ErrStorageClosed is returned by every method of a Storage handle after
	// its Close, and by a second Close.
	ErrStorageClosed = errors.New("party: storage closed")
	// ErrStorageCorrupt means a file of a FileStore holds data that is not
	// a torn last write and cannot be read; the file is left untouched.
	ErrStorageCorrupt = errors.New("party: storage file corrupt")
)
