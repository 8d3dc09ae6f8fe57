package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// A failed fsync leaves the disk in doubt: the kernel may have dropped the
// data it could not write while the page cache still shows it, and it
// reports the failure once, so a later fsync returning nil proves nothing.
// The room is broken then: every write fails until the last handle is
// closed, and the store notes what opening the room again must do before it
// reads the log. While the store lives, the page cache is what it reads, so
// the note is kept in memory; after a crash the cache is gone and the log
// is what the disk kept.

// breakRoom makes every later write of the room fail, since step failed
// with err, and notes the repair of its log: cut it back to cutTo, its
// acknowledged length, unless cutTo is negative, then sync it and its
// directory. It returns the error the later writes get, which says so.
// Callers hold wmu.
func (r *fileRoom) breakRoom(step string, err error, cutTo int64) error {
	r.broken = fmt.Errorf("party: file storage: %s: writes refused since %s failed (close every handle on the room and open it again): %w",
		r.logPath, step, err)
	s := r.store
	s.diskMu.Lock()
	s.repairs[r.logPath] = cutTo
	s.diskMu.Unlock()
	return r.broken
}

// repair does the repair breakRoom noted for the room's log, if any: the
// log cut back to its acknowledged length and synced, then its directory
// synced, so that what load reads next is what the disk keeps. The note is
// dropped once done; if a step fails, it stays and load fails. Callers hold
// wmu.
func (r *fileRoom) repair() error {
	s := r.store
	s.diskMu.Lock()
	cutTo, ok := s.repairs[r.logPath]
	s.diskMu.Unlock()
	if !ok {
		return nil
	}
	if cutTo >= 0 {
		if err := cutLog(s, r.logPath, cutTo); err != nil {
			return fileError(fmt.Errorf("repairing a log after a failed fsync: %w", err))
		}
	}
	if err := s.fsys.SyncDir(r.partyDir); err != nil {
		return fileError(fmt.Errorf("repairing a log after a failed fsync: %w", err))
	}
	s.diskMu.Lock()
	delete(s.repairs, r.logPath)
	s.diskMu.Unlock()
	return nil
}

// cutLog cuts the log at path back to size bytes, if it is longer, and
// syncs it. A missing log needs no cut.
func cutLog(s *FileStore, path string, size int64) error {
	f, err := s.fsys.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > size {
		err = f.Truncate(size)
	}
	if err == nil {
		err = f.Sync()
	}
	return err
}
