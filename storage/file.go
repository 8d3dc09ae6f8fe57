package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"party/storage/internal/ondisk"
)

// FileStore is a [Provider] and an [AlarmStore] that keeps each room's
// storage and alarm in files under one directory, so that they survive a
// restart and a crash. It needs nothing but the file system. Make one with
// [OpenFileStore]: the zero value has no directory and must not be used. Its
// methods, and those of the handles it opens, are safe for concurrent use.
//
// # Durability
//
// Every write (a Storage's Put, Delete, Write and DeleteAll, and SetAlarm) is
// on stable storage before it returns nil: the file is fsynced (F_FULLFSYNC
// on macOS) and so is its directory when a file is created, renamed or
// removed. A write therefore costs at least one fsync; a [Batch] of many
// operations costs one. If an fsync of a room's log or directory fails, the
// room's storage refuses every later write, with an error saying so, until
// all its handles are closed and it is opened again: the kernel may have
// dropped the data it failed to write, and may not report it twice, so the
// reopening cuts the log back to what was acknowledged and syncs it and its
// directory again before reading it. An alarm file is replaced whole by each
// SetAlarm, so a failed SetAlarm leaves the alarm as it was or as set, and
// does not stop the next one.
//
// # Layout
//
// Each room has an append-only log, dir/{party}/{room}.log, and, while its
// alarm is set, dir/{party}/{room}.alarm, written by SetAlarm. Party and room
// names are escaped into file names that are distinct on case-insensitive
// file systems (long ones are shortened with a hash). The log starts with an
// 8-byte magic string, then holds one record per write: a 4-byte length, a
// 4-byte CRC-32C of length and payload, and the payload (the write's
// operations). A Batch is one record, which is what makes it atomic.
//
// Opening a room reads its log into memory: reads never touch the disk, and a
// room's data must fit in memory. When the log has grown past 1 MiB and four
// times the size of the live data, the next write rewrites it (into a
// temporary file renamed over the log), so a log stays within a small
// multiple of its data. A rewrite that fails is logged to Logger and leaves
// the old log in place; the write that set it off has succeeded all the
// same, and the next attempt waits until the log has grown by half.
//
// # Crashes
//
// A crash can leave the last record of a log torn (cut short or garbled).
// Open detects it by its length and CRC, and truncates the log before it, so
// a torn write is dropped whole and never returned as data; it never returned
// nil to its caller either. Damage anywhere else (a bad record followed by
// good ones) is not a torn write: Open then fails with an error wrapping
// [ErrStorageCorrupt] and leaves the file alone. A damaged alarm file makes
// Alarm fail, and Alarms report it, the same way.
//
// Only one process may use a directory at a time, and a room's files are
// meant to be handled by FileStore only.
type FileStore struct {
	// Logger receives what FileStore cannot return to a caller: a failed
	// rewrite of a room's log, at Error level with the log's path. Nil
	// means slog.Default(). Set it before the first Open; it must not
	// change after.
	Logger *slog.Logger

	dir  string
	fsys ondisk.FS // ondisk.OSFS but in tests

	mu    sync.Mutex
	rooms map[roomKey]*fileRoom

	// alarmMu serialises SetAlarm: two writes of one alarm file must not
	// share its temporary file.
	alarmMu sync.Mutex

	// diskMu guards what the store knows of the disk beyond a room's
	// life: the party directories it made durable, and, by log path, the
	// length to cut back to (or -1) of each room broken by a failed fsync
	// (see breakRoom). It is taken last.
	diskMu  sync.Mutex
	parties map[string]bool
	repairs map[string]int64

	// Compaction thresholds; tests lower them.
	compactMin   int64
	compactRatio int64
}

var (
	_ Provider   = (*FileStore)(nil)
	_ AlarmStore = (*FileStore)(nil)
)

// OpenFileStore returns a FileStore keeping its files under dir, which it
// creates, durably, if needed. Rooms are read from the disk when opened, not
// here. It fails if dir cannot be created or is not a directory.
func OpenFileStore(dir string) (*FileStore, error) {
	return openFileStore(ondisk.OSFS{}, dir)
}

// openFileStore is OpenFileStore on the file system fsys.
func openFileStore(fsys ondisk.FS, dir string) (*FileStore, error) {
	if err := ondisk.MkdirAll(fsys, dir); err != nil {
		return nil, fileError(err)
	}
	return &FileStore{
		dir:          dir,
		fsys:         fsys,
		rooms:        make(map[roomKey]*fileRoom),
		parties:      make(map[string]bool),
		repairs:      make(map[string]int64),
		compactMin:   1 << 20,
		compactRatio: 4,
	}, nil
}

// Dir returns the directory the store keeps its files in.
func (s *FileStore) Dir() string { return s.dir }

// Open returns a handle on the storage of room in party, reading the room's
// log from the disk unless another handle has it open already. It fails if
// the log cannot be read, or is damaged otherwise than by a torn last write
// (an error wrapping ErrStorageCorrupt).
func (s *FileStore) Open(party, room string) (Storage, error) {
	k := roomKey{party, room}
	s.mu.Lock()
	r := s.rooms[k]
	if r == nil {
		partyDir, base := s.paths(party, room)
		r = &fileRoom{store: s, partyDir: partyDir, logPath: base + ".log"}
		s.rooms[k] = r
	}
	r.refs++
	s.mu.Unlock()

	r.wmu.Lock()
	var err error
	if !r.loaded {
		err = r.load()
		r.loaded = err == nil
	}
	r.wmu.Unlock()
	if err != nil {
		s.release(k, r)
		return nil, err
	}
	return &fileHandle{r: r, key: k}, nil
}

// paths returns the directory of party's files and the path of room's files
// in it, without their extension.
func (s *FileStore) paths(party, room string) (partyDir, base string) {
	partyDir = filepath.Join(s.dir, fileName(party))
	return partyDir, filepath.Join(partyDir, fileName(room))
}

// release drops one reference to r, closing its log with the last one.
func (s *FileStore) release(k roomKey, r *fileRoom) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.refs--
	if r.refs > 0 {
		return
	}
	delete(s.rooms, k)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.gone = true
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// mkdirParty makes sure the directory of a party exists, durably. The
// first time in the store's life it syncs the store's directory even if the
// party's was there: a process that made it may have died before syncing.
func (s *FileStore) mkdirParty(partyDir string) error {
	s.diskMu.Lock()
	durable := s.parties[partyDir]
	s.diskMu.Unlock()
	if durable {
		return nil
	}
	if err := s.fsys.Mkdir(partyDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fileError(err)
	}
	if err := s.fsys.SyncDir(s.dir); err != nil {
		return fileError(err)
	}
	s.diskMu.Lock()
	s.parties[partyDir] = true
	s.diskMu.Unlock()
	return nil
}

func (s *FileStore) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Alarm returns the alarm time of room in party, read from its alarm file,
// or the zero Time if none is set. It fails if the file cannot be read, or
// is damaged (an error wrapping ErrStorageCorrupt).
func (s *FileStore) Alarm(party, room string) (time.Time, error) {
	_, base := s.paths(party, room)
	a, err := ondisk.ReadAlarm(s.fsys, base+".alarm")
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fileError(err)
	}
	return a.At, nil
}

// SetAlarm records at (its instant only) as the alarm of room in party,
// replacing its alarm file whole; the zero Time removes the file. It returns
// once the change is on stable storage. After an error the alarm is either
// as it was or as set.
func (s *FileStore) SetAlarm(party, room string, at time.Time) error {
	at = alarmTime(at)
	partyDir, base := s.paths(party, room)
	path := base + ".alarm"
	s.alarmMu.Lock()
	defer s.alarmMu.Unlock()
	if at.IsZero() {
		err := s.fsys.Remove(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fileError(err)
		}
	} else {
		if err := s.mkdirParty(partyDir); err != nil {
			return err
		}
		data := ondisk.EncodeAlarm(ondisk.Alarm{Party: party, Room: room, At: at})
		err := ondisk.WriteFile(s.fsys, path, func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		})
		if err != nil {
			return fileError(err)
		}
	}
	return fileError(s.fsys.SyncDir(partyDir))
}

// Alarms lists the rooms whose alarm is set, soonest first, from the alarm
// files on the disk. It returns every alarm it could read, and an error
// describing the files it could not (wrapping ErrStorageCorrupt for a
// damaged one).
func (s *FileStore) Alarms() ([]RoomAlarm, error) {
	parties, err := s.fsys.ReadDir(s.dir)
	if err != nil {
		return nil, fileError(err)
	}
	var out []RoomAlarm
	var errs []error
	for _, p := range parties {
		if !p.IsDir() {
			continue
		}
		files, err := s.fsys.ReadDir(filepath.Join(s.dir, p.Name()))
		if err != nil {
			errs = append(errs, fileError(err))
			continue
		}
		for _, f := range files {
			if !strings.HasSuffix(f.Name(), ".alarm") {
				continue
			}
			a, err := ondisk.ReadAlarm(s.fsys, filepath.Join(s.dir, p.Name(), f.Name()))
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			if err != nil {
				errs = append(errs, fileError(err))
				continue
			}
			out = append(out, RoomAlarm{Party: a.Party, Room: a.Room, At: a.At})
		}
	}
	sortAlarms(out)
	return out, errors.Join(errs...)
}

// fileError wraps, once, an error from the file system or package ondisk
// for the caller of a FileStore: damage on the disk wraps ErrStorageCorrupt.
// It returns nil for nil.
func fileError(err error) error {
	if err == nil {
		return nil
	}
	var corrupt *ondisk.CorruptError
	if errors.As(err, &corrupt) {
		return fmt.Errorf("%w: %w", ErrStorageCorrupt, err)
	}
	return fmt.Errorf("party: file storage: %w", err)
}
