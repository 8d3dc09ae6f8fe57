package storage

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"

	"party/storage/internal/ondisk"
)

// A record must hold the largest valid Batch, and a Put of the longest key
// and largest value; this fails to compile if ondisk.MaxRecord is smaller.
const _ uint = ondisk.MaxRecord - (MaxBatchLen + MaxKeyLen + 64)

// fileRoom is the shared state of one room's storage, held by every handle
// open on it: its log and the index read from it.
type fileRoom struct {
	store             *FileStore
	partyDir, logPath string
	refs              int // guarded by store.mu

	// wmu serialises writers and guards the file state below. It is taken
	// before mu.
	wmu       sync.Mutex
	loaded    bool
	gone      bool        // closed by the last handle: the room was reopened elsewhere
	broken    error       // set by breakRoom when a sync failed: every write fails
	f         ondisk.File // the log, nil if it does not exist
	size      int64       // bytes of the log
	buf       []byte      // record being encoded
	compactAt int64       // after a failed compaction, the log size to try again at

	// mu guards what readers see.
	mu  sync.RWMutex
	idx kvIndex
}

// load reads the room's log into idx, dropping a torn last record, once
// the repair a failed fsync left to do, if any, is done.
func (r *fileRoom) load() error {
	fsys := r.store.fsys
	fsys.Remove(ondisk.TempPath(r.logPath)) // left by a crash during a compaction
	if err := r.repair(); err != nil {
		return err
	}
	f, err := fsys.OpenFile(r.logPath, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fileError(err)
	}
	size, err := ondisk.Replay(f, r.idx.apply)
	if err != nil {
		f.Close()
		r.idx = kvIndex{}
		return fileError(err)
	}
	r.f, r.size = f, size
	return nil
}

// writable returns the error every write gets now: ErrStorageClosed, the
// fsync failure that broke the room, or nil.
func (r *fileRoom) writable() error {
	if r.gone {
		return ErrStorageClosed
	}
	return r.broken
}

// commit appends rec (from ondisk.NewRecord(r.buf)) to the log, creating
// the log if needed, and fsyncs it. On success the caller applies rec's
// operations to idx. Callers hold wmu.
func (r *fileRoom) commit(rec []byte) error {
	if len(rec) <= 1<<20 {
		r.buf = rec[:0]
	} else {
		r.buf = nil // do not keep a big buffer for every room
	}
	if err := r.writable(); err != nil {
		return err
	}
	if r.f == nil {
		if err := r.store.mkdirParty(r.partyDir); err != nil {
			return err
		}
		if err := r.writeLog(nil); err != nil {
			return err
		}
	}
	rec = ondisk.Seal(rec)
	if _, err := r.f.WriteAt(rec, r.size); err != nil {
		// Nothing was acknowledged: cut off what may have been written.
		if terr := r.f.Truncate(r.size); terr != nil {
			r.breakRoom("cutting off a failed write", terr, r.size)
		}
		return fileError(err)
	}
	if err := r.f.Sync(); err != nil {
		// The page cache may show the record the disk lost: the reopening
		// cuts it off.
		r.breakRoom("an fsync of the log", err, r.size)
		return fileError(err)
	}
	r.size += int64(len(rec))
	return nil
}

// writeLog replaces the log with one holding ops (none: a new, empty log)
// through a temporary file renamed over it, syncs the directory and opens
// the new log. Callers hold wmu, with r.f nil. If it fails before the
// rename, the old log, if any, is as it was and r.f still nil; if it fails
// after, the room is broken.
func (r *fileRoom) writeLog(ops []ondisk.Op) error {
	fsys := r.store.fsys
	err := ondisk.WriteFile(fsys, r.logPath, func(w io.Writer) error { return ondisk.WriteLog(w, ops) })
	if err != nil {
		return fileError(err)
	}
	if err := fsys.SyncDir(r.partyDir); err != nil {
		// The rename may be lost in a crash, and the writes after it.
		r.breakRoom("an fsync of its directory", err, -1)
		return fileError(err)
	}
	return r.openLog()
}

// openLog opens the log to append to it. Callers hold wmu, with r.f nil; if
// it fails, the room is broken.
func (r *fileRoom) openLog() error {
	f, err := r.store.fsys.OpenFile(r.logPath, os.O_RDWR, 0)
	if err != nil {
		return r.breakRoom("reopening the log", err, -1)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return r.breakRoom("reopening the log", err, -1)
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// deleteLog removes the log, durably. Callers hold wmu.
func (r *fileRoom) deleteLog() error {
	if err := r.writable(); err != nil || r.f == nil {
		return err
	}
	r.f.Close() // before removing, for Windows' sake
	r.f = nil
	fsys := r.store.fsys
	if err := fsys.Remove(r.logPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.openLog()
		return fileError(err)
	}
	if err := fsys.SyncDir(r.partyDir); err != nil {
		// The log may come back in a crash.
		r.breakRoom("an fsync of its directory", err, -1)
		return fileError(err)
	}
	r.size, r.compactAt = 0, 0
	return nil
}

// writeOps commits ops as one record, then applies them to idx: all of
// them or, on error, none. Callers hold wmu.
func (r *fileRoom) writeOps(ops []ondisk.Op) error {
	rec := ondisk.NewRecord(r.buf)
	for _, op := range ops {
		rec = ondisk.AppendOp(rec, op)
	}
	if err := r.commit(rec); err != nil {
		return err
	}
	r.mu.Lock()
	r.idx.apply(ops)
	r.mu.Unlock()
	r.maybeCompact()
	return nil
}

// fileHandle is one handle returned by FileStore.Open. Reads take the
// room's mu; writes take its wmu, commit, then apply under mu.
type fileHandle struct {
	r      *fileRoom
	key    roomKey
	closed atomic.Bool
}

// write runs the writer f with wmu held, unless the handle is closed.
func (h *fileHandle) write(f func(r *fileRoom) error) error {
	if h.closed.Load() {
		return ErrStorageClosed
	}
	r := h.r
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return f(r)
}

func (h *fileHandle) Get(key string) ([]byte, error) {
	if h.closed.Load() {
		return nil, ErrStorageClosed
	}
	h.r.mu.RLock()
	defer h.r.mu.RUnlock()
	return h.r.idx.lookup(key)
}

func (h *fileHandle) Put(key string, value []byte) error {
	if err := checkPut(key, value); err != nil {
		return err
	}
	ops := []ondisk.Op{{Key: key, Value: append([]byte{}, value...)}}
	return h.write(func(r *fileRoom) error { return r.writeOps(ops) })
}

func (h *fileHandle) Delete(key string) (bool, error) {
	var found bool
	err := h.write(func(r *fileRoom) error {
		r.mu.RLock()
		_, found = r.idx.get(key)
		r.mu.RUnlock()
		if !found {
			return r.writable()
		}
		err := r.writeOps([]ondisk.Op{{Delete: true, Key: key}})
		found = err == nil
		return err
	})
	return found, err
}

func (h *fileHandle) Write(b *Batch) error {
	if b.err != nil {
		return b.err
	}
	return h.write(func(r *fileRoom) error {
		if len(b.ops) == 0 {
			return nil
		}
		return r.writeOps(b.ops)
	})
}

func (h *fileHandle) List(opts ListOptions) ([]KeyValue, error) {
	if h.closed.Load() {
		return nil, ErrStorageClosed
	}
	h.r.mu.Lock() // List sorts keys added since the last one
	defer h.r.mu.Unlock()
	return h.r.idx.list(opts), nil
}

func (h *fileHandle) DeleteAll() error {
	return h.write(func(r *fileRoom) error {
		if err := r.deleteLog(); err != nil {
			return err
		}
		r.mu.Lock()
		r.idx = kvIndex{}
		r.mu.Unlock()
		return nil
	})
}

func (h *fileHandle) Close() error {
	if h.closed.Swap(true) {
		return ErrStorageClosed
	}
	h.r.store.release(h.key, h.r)
	return nil
}
