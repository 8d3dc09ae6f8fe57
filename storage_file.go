package party

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FileStore is a [StorageProvider] that keeps each room's storage in files
// under one directory, so that it survives a restart and a crash. It needs
// nothing but the file system.
//
// # Durability
//
// Every write (Put, Delete, Write, DeleteAll, SetAlarm, DeleteAlarm) is on
// stable storage before it returns nil: the file is fsynced (F_FULLFSYNC on
// macOS) and so is its directory when a file is created, renamed or removed.
// A write therefore costs at least one fsync; a [Batch] of many operations
// costs one. If an fsync fails, the room's storage refuses every later write
// until all its handles are closed and it is opened again (read back from the
// disk), since the kernel may have dropped the data it failed to write.
//
// # Layout
//
// Each room has an append-only log, dir/{party}/{room}.log, and, while its
// alarm is set, dir/{party}/{room}.alarm. Party and room names are escaped
// into file names that are distinct on case-insensitive file systems (long
// ones are shortened with a hash). The log starts with an 8-byte magic
// string, then holds one record per write: a 4-byte length, a 4-byte CRC-32C
// of length and payload, and the payload (the write's operations). A Batch is
// one record, which is what makes it atomic.
//
// Opening a room reads its log into memory: reads never touch the disk, and a
// room's data must fit in memory. When the log has grown past 1 MiB and four
// times the size of the live data, the next write rewrites it (into a
// temporary file renamed over the log), so a log stays within a small
// multiple of its data.
//
// # Crashes
//
// A crash can leave the last record of a log torn (cut short or garbled).
// Open detects it by its length and CRC, and truncates the log before it, so
// a torn write is dropped whole and never returned as data; it never returned
// nil to its caller either. Damage anywhere else (a bad record followed by
// good ones) is not a torn write: Open then fails with an error wrapping
// [ErrStorageCorrupt] and leaves the file alone.
//
// Only one process may use a directory at a time, and a room's files are
// meant to be handled by FileStore only.
type FileStore struct {
	dir string

	mu    sync.Mutex
	rooms map[storeKey]*fileRoom

	// Compaction thresholds; tests lower them.
	compactMin   int64
	compactRatio int64
}

var _ StorageProvider = (*FileStore)(nil)

// OpenFileStore returns a FileStore keeping its files under dir, which it
// creates if needed. Rooms are read from the disk when opened, not here.
func OpenFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("party: file storage: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("party: file storage: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("party: file storage: %s is not a directory", dir)
	}
	return &FileStore{
		dir:          dir,
		rooms:        make(map[storeKey]*fileRoom),
		compactMin:   1 << 20,
		compactRatio: 4,
	}, nil
}

// Dir returns the directory the store keeps its files in.
func (s *FileStore) Dir() string { return s.dir }

// Open returns a handle on the storage of room in party, reading the room's
// log from the disk unless another handle has it open already. It fails if
// the log cannot be read, or is damaged otherwise than by a torn last write.
func (s *FileStore) Open(party, room string) (Storage, error) {
	k := storeKey{party, room}
	s.mu.Lock()
	r := s.rooms[k]
	if r == nil {
		partyDir := filepath.Join(s.dir, fileName(party))
		base := filepath.Join(partyDir, fileName(room))
		r = &fileRoom{
			store:     s,
			party:     party,
			room:      room,
			partyDir:  partyDir,
			logPath:   base + ".log",
			alarmPath: base + ".alarm",
		}
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
	return &fileStorage{r: r, key: k}, nil
}

// release drops one reference to r, closing its log with the last one.
func (s *FileStore) release(k storeKey, r *fileRoom) {
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

// Alarms lists the rooms whose alarm is set, soonest first, from the alarm
// files on the disk.
func (s *FileStore) Alarms() ([]RoomAlarm, error) {
	parties, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("party: file storage: %w", err)
	}
	var out []RoomAlarm
	var errs []error
	for _, p := range parties {
		if !p.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(s.dir, p.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			if !strings.HasSuffix(f.Name(), ".alarm") {
				continue
			}
			path := filepath.Join(s.dir, p.Name(), f.Name())
			a, err := readAlarmFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, a)
		}
	}
	sortAlarms(out)
	return out, errors.Join(errs...)
}

// fileRoom is the shared state of one room's storage, held by every handle
// open on it.
type fileRoom struct {
	store                        *FileStore
	party, room                  string
	partyDir, logPath, alarmPath string
	refs                         int // guarded by store.mu

	// wmu serialises writers and guards the file state below. It is taken
	// before mu.
	wmu    sync.Mutex
	loaded bool
	gone   bool     // closed by the last handle: the room was reopened elsewhere
	broken error    // set when an fsync failed: every write fails
	f      *os.File // the log, nil if it does not exist
	size   int64    // bytes of the log
	buf    []byte   // record being encoded

	// mu guards what readers see.
	mu    sync.RWMutex
	idx   kvIndex
	alarm time.Time
}

const (
	logMagic   = "partylg1"
	alarmMagic = "partyal1"
	recHeader  = 8 // length, CRC
	// maxRecord bounds a record's payload: a Batch of MaxBatchLen, or one
	// value and key with its framing.
	maxRecord = MaxBatchLen + MaxKeyLen + 64
	// compactChunk is the payload a compaction puts in one record.
	compactChunk = 1 << 20
	opPut        = 'P'
	opDelete     = 'D'
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// load reads the room's alarm and log.
func (r *fileRoom) load() error {
	os.Remove(r.logPath + ".tmp") // left by a crash; never renamed, never data
	os.Remove(r.alarmPath + ".tmp")
	a, err := readAlarmFile(r.alarmPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		r.alarm = a.At
	}
	f, err := os.OpenFile(r.logPath, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("party: file storage: %w", err)
	}
	if err := r.replay(f); err != nil {
		f.Close()
		r.idx = kvIndex{}
		return err
	}
	r.f = f
	return nil
}

// replay reads the log f into r.idx, truncating a torn tail.
func (r *fileRoom) replay(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("party: file storage: %w", err)
	}
	end := fi.Size()
	br := bufio.NewReaderSize(f, 64<<10)
	magic := make([]byte, len(logMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != logMagic {
		// The log is created whole by a rename: this is not a torn write.
		return fmt.Errorf("%w: %s: bad header", ErrStorageCorrupt, r.logPath)
	}
	off := int64(len(logMagic))
	var hdr [recHeader]byte
	var payload []byte
	for off < end {
		bad := func() error { return r.badRecord(f, off, end) }
		if end-off < recHeader {
			return bad()
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return fmt.Errorf("party: file storage: %s: %w", r.logPath, err)
		}
		n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
		if n == 0 || n > maxRecord || n > end-off-recHeader {
			return bad()
		}
		if int64(cap(payload)) < n {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return fmt.Errorf("party: file storage: %s: %w", r.logPath, err)
		}
		if recordCRC(hdr[0:4], payload) != binary.LittleEndian.Uint32(hdr[4:8]) {
			return bad()
		}
		ops, err := decodeOps(payload)
		if err != nil {
			// A record with a good CRC that does not parse was not
			// torn: it was written wrong.
			return fmt.Errorf("%w: %s: record at offset %d: %v", ErrStorageCorrupt, r.logPath, off, err)
		}
		for _, op := range ops {
			if op.del {
				r.idx.delete(op.key)
			} else {
				r.idx.put(op.key, op.value)
			}
		}
		off += recHeader + n
	}
	r.size = off
	return nil
}

// badRecord decides what the unreadable record at off is. If no good record
// follows it, it is a torn last write: the log is truncated before it.
// Otherwise the log is damaged and left alone.
func (r *fileRoom) badRecord(f *os.File, off, end int64) error {
	corrupt := fmt.Errorf("%w: %s: bad record at offset %d of %d", ErrStorageCorrupt, r.logPath, off, end)
	if end-off > recHeader+maxRecord {
		return corrupt // more than one write could have left
	}
	tail := make([]byte, end-off)
	if _, err := f.ReadAt(tail, off); err != nil {
		return fmt.Errorf("party: file storage: %s: %w", r.logPath, err)
	}
	for i := 1; i+recHeader < len(tail); i++ {
		n := int(binary.LittleEndian.Uint32(tail[i:]))
		if n == 0 || n > len(tail)-i-recHeader {
			continue
		}
		p := tail[i+recHeader : i+recHeader+n]
		if recordCRC(tail[i:i+4], p) == binary.LittleEndian.Uint32(tail[i+4:]) {
			if _, err := decodeOps(p); err == nil {
				return corrupt
			}
		}
	}
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("party: file storage: dropping torn write: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("party: file storage: dropping torn write: %w", err)
	}
	r.size = off
	return nil
}

func recordCRC(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, crcTable), crcTable, payload)
}

// appendOp encodes one operation onto a record payload.
func appendOp(b []byte, del bool, key string, value []byte) []byte {
	if del {
		b = append(b, opDelete)
	} else {
		b = append(b, opPut)
	}
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	if !del {
		b = binary.AppendUvarint(b, uint64(len(value)))
		b = append(b, value...)
	}
	return b
}

// decodeOps parses a record payload; values are copies.
func decodeOps(p []byte) ([]batchOp, error) {
	var ops []batchOp
	next := func() ([]byte, error) {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return nil, errors.New("bad length")
		}
		b := p[k : k+int(n)]
		p = p[k+int(n):]
		return b, nil
	}
	for len(p) > 0 {
		kind := p[0]
		p = p[1:]
		if kind != opPut && kind != opDelete {
			return nil, fmt.Errorf("unknown operation %q", kind)
		}
		key, err := next()
		if err != nil {
			return nil, err
		}
		op := batchOp{del: kind == opDelete, key: string(key)}
		if !op.del {
			v, err := next()
			if err != nil {
				return nil, err
			}
			op.value = append([]byte{}, v...)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// startRecord returns r.buf emptied, with room for the record header.
func (r *fileRoom) startRecord() []byte {
	return append(r.buf[:0], make([]byte, recHeader)...)
}

// commit appends the record rec (from startRecord) to the log and fsyncs it.
// On success the caller applies the record to idx. Callers hold wmu.
func (r *fileRoom) commit(rec []byte) error {
	r.buf = rec[:0]
	if err := r.writable(); err != nil {
		return err
	}
	if r.f == nil {
		if err := r.createLog(); err != nil {
			return err
		}
	}
	binary.LittleEndian.PutUint32(rec[0:4], uint32(len(rec)-recHeader))
	binary.LittleEndian.PutUint32(rec[4:8], recordCRC(rec[0:4], rec[recHeader:]))
	if _, err := r.f.WriteAt(rec, r.size); err != nil {
		// Nothing was acknowledged: cut off what may have been written.
		if terr := r.f.Truncate(r.size); terr != nil {
			r.broken = fmt.Errorf("party: file storage: %s: %w", r.logPath, err)
		}
		return fmt.Errorf("party: file storage: %w", err)
	}
	if err := r.f.Sync(); err != nil {
		r.broken = fmt.Errorf("party: file storage: %s: fsync failed earlier: %w", r.logPath, err)
		return fmt.Errorf("party: file storage: %w", err)
	}
	if len(rec) > 1<<20 {
		r.buf = nil // do not keep a big buffer for every room
	}
	r.size += int64(len(rec))
	return nil
}

func (r *fileRoom) writable() error {
	if r.gone {
		return ErrStorageClosed
	}
	return r.broken
}

// createLog creates an empty log, durably.
func (r *fileRoom) createLog() error {
	if err := r.mkdir(); err != nil {
		return err
	}
	if err := writeFileSync(r.logPath, []byte(logMagic)); err != nil {
		return err
	}
	if err := syncDir(r.partyDir); err != nil {
		r.broken = err
		return err
	}
	f, err := os.OpenFile(r.logPath, os.O_RDWR, 0)
	if err != nil {
		r.broken = fmt.Errorf("party: file storage: opening the log just created: %w", err)
		return r.broken
	}
	r.f = f
	r.size = int64(len(logMagic))
	return nil
}

// mkdir makes sure the party's directory exists, durably.
func (r *fileRoom) mkdir() error {
	if _, err := os.Stat(r.partyDir); err == nil {
		return nil
	}
	if err := os.MkdirAll(r.partyDir, 0o755); err != nil {
		return fmt.Errorf("party: file storage: %w", err)
	}
	return syncDir(r.store.dir)
}

// writeFileSync writes data to path through a temporary file, renamed over
// path once fsynced: path holds either its old content or data, whole. The
// caller syncs the directory.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("party: file storage: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("party: file storage: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory, so that the names created, renamed or removed
// in it survive a crash. Windows cannot, and needs not.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("party: file storage: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("party: file storage: fsync %s: %w", dir, err)
	}
	return nil
}

// maybeCompact rewrites the log if it has grown past compactRatio times the
// live data. The write that called it has succeeded whatever happens here:
// a failed compaction leaves the old log in place. Callers hold wmu.
func (r *fileRoom) maybeCompact() {
	r.mu.RLock()
	live := int64(len(logMagic)) + r.idx.bytes + int64(r.idx.len())*(recHeader+2*binary.MaxVarintLen32)
	r.mu.RUnlock()
	if r.size <= r.store.compactMin || r.size <= r.store.compactRatio*live {
		return
	}
	r.compact()
}

func (r *fileRoom) compact() {
	type kv struct {
		k string
		v []byte
	}
	r.mu.RLock()
	entries := make([]kv, 0, r.idx.len())
	r.idx.each(func(k string, v []byte) { entries = append(entries, kv{k, v}) }) // values are never modified in place
	r.mu.RUnlock()

	tmp := r.logPath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return
	}
	w := bufio.NewWriterSize(f, 256<<10)
	size := int64(len(logMagic))
	w.WriteString(logMagic)
	rec := make([]byte, recHeader, recHeader+compactChunk)
	flush := func() {
		if len(rec) == recHeader {
			return
		}
		binary.LittleEndian.PutUint32(rec[0:4], uint32(len(rec)-recHeader))
		binary.LittleEndian.PutUint32(rec[4:8], recordCRC(rec[0:4], rec[recHeader:]))
		w.Write(rec)
		size += int64(len(rec))
		rec = rec[:recHeader]
	}
	for _, e := range entries {
		if len(rec)-recHeader+len(e.k)+len(e.v) > compactChunk {
			flush()
		}
		rec = appendOp(rec, false, e.k, e.v)
	}
	flush()
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return
	}
	// Close before renaming over the log, for Windows' sake.
	r.f.Close()
	r.f = nil
	if err := os.Rename(tmp, r.logPath); err != nil {
		os.Remove(tmp)
	}
	// Whether or not the rename happened, the log at logPath holds the
	// data. Until the directory is synced, a crash may bring back either.
	if err := syncDir(r.partyDir); err != nil {
		r.broken = err
	}
	f, err = os.OpenFile(r.logPath, os.O_RDWR, 0)
	if err != nil {
		r.broken = fmt.Errorf("party: file storage: reopening after compaction: %w", err)
		return
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		r.broken = fmt.Errorf("party: file storage: reopening after compaction: %w", err)
		return
	}
	r.f, r.size = f, fi.Size()
}

// fileStorage is one handle returned by FileStore.Open.
type fileStorage struct {
	r      *fileRoom
	key    storeKey
	closed atomic.Bool
}

// write runs the writer f with wmu held, unless the handle is closed.
func (h *fileStorage) write(f func(r *fileRoom) error) error {
	if h.closed.Load() {
		return ErrStorageClosed
	}
	r := h.r
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return f(r)
}

func (h *fileStorage) Get(key string) ([]byte, error) {
	if h.closed.Load() {
		return nil, ErrStorageClosed
	}
	h.r.mu.RLock()
	defer h.r.mu.RUnlock()
	v, ok := h.r.idx.get(key)
	if !ok {
		return nil, fmt.Errorf("%w: %.64q", ErrKeyNotFound, key)
	}
	return append([]byte{}, v...), nil
}

func (h *fileStorage) Put(key string, value []byte) error {
	if err := checkPut(key, value); err != nil {
		return err
	}
	return h.write(func(r *fileRoom) error {
		rec := appendOp(r.startRecord(), false, key, value)
		if err := r.commit(rec); err != nil {
			return err
		}
		r.mu.Lock()
		r.idx.put(key, append([]byte{}, value...))
		r.mu.Unlock()
		r.maybeCompact()
		return nil
	})
}

func (h *fileStorage) Delete(key string) (bool, error) {
	var found bool
	err := h.write(func(r *fileRoom) error {
		r.mu.RLock()
		_, found = r.idx.get(key)
		r.mu.RUnlock()
		if !found {
			return r.writable()
		}
		if err := r.commit(appendOp(r.startRecord(), true, key, nil)); err != nil {
			found = false
			return err
		}
		r.mu.Lock()
		r.idx.delete(key)
		r.mu.Unlock()
		r.maybeCompact()
		return nil
	})
	return found, err
}

func (h *fileStorage) Write(b *Batch) error {
	if b.err != nil {
		return b.err
	}
	if len(b.ops) == 0 {
		return nil
	}
	return h.write(func(r *fileRoom) error {
		rec := r.startRecord()
		for _, op := range b.ops {
			rec = appendOp(rec, op.del, op.key, op.value)
		}
		if err := r.commit(rec); err != nil {
			return err
		}
		r.mu.Lock()
		for _, op := range b.ops {
			if op.del {
				r.idx.delete(op.key)
			} else {
				r.idx.put(op.key, op.value) // never modified: see memStorage.Write
			}
		}
		r.mu.Unlock()
		r.maybeCompact()
		return nil
	})
}

func (h *fileStorage) List(opts ListOptions) ([]KeyValue, error) {
	if h.closed.Load() {
		return nil, ErrStorageClosed
	}
	h.r.mu.Lock() // List sorts keys added since the last one
	defer h.r.mu.Unlock()
	return h.r.idx.list(opts), nil
}

func (h *fileStorage) DeleteAll() error {
	return h.write(func(r *fileRoom) error {
		if err := r.writable(); err != nil {
			return err
		}
		if r.f != nil {
			r.f.Close() // before removing, for Windows' sake
			r.f = nil
			if err := os.Remove(r.logPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
				f, oerr := os.OpenFile(r.logPath, os.O_RDWR, 0)
				if oerr != nil {
					r.broken = fmt.Errorf("party: file storage: reopening after failed remove: %w", oerr)
				}
				r.f = f
				return fmt.Errorf("party: file storage: %w", err)
			}
			if err := syncDir(r.partyDir); err != nil {
				r.broken = err
				return err
			}
			r.size = 0
		}
		r.mu.Lock()
		r.idx = kvIndex{}
		r.mu.Unlock()
		return nil
	})
}

func (h *fileStorage) GetAlarm() (time.Time, error) {
	if h.closed.Load() {
		return time.Time{}, ErrStorageClosed
	}
	h.r.mu.RLock()
	defer h.r.mu.RUnlock()
	return h.r.alarm, nil
}

func (h *fileStorage) SetAlarm(t time.Time) error {
	t = alarmTime(t)
	if t.IsZero() {
		return h.DeleteAlarm()
	}
	return h.write(func(r *fileRoom) error {
		if err := r.writable(); err != nil {
			return err
		}
		if err := r.mkdir(); err != nil {
			return err
		}
		if err := writeFileSync(r.alarmPath, encodeAlarm(r.party, r.room, t)); err != nil {
			return err
		}
		if err := syncDir(r.partyDir); err != nil {
			r.broken = err
			return err
		}
		r.mu.Lock()
		r.alarm = t
		r.mu.Unlock()
		return nil
	})
}

func (h *fileStorage) DeleteAlarm() error {
	return h.write(func(r *fileRoom) error {
		if err := r.writable(); err != nil {
			return err
		}
		if r.alarm.IsZero() {
			return nil
		}
		if err := os.Remove(r.alarmPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("party: file storage: %w", err)
		}
		if err := syncDir(r.partyDir); err != nil {
			r.broken = err
			return err
		}
		r.mu.Lock()
		r.alarm = time.Time{}
		r.mu.Unlock()
		return nil
	})
}

func (h *fileStorage) Close() error {
	if h.closed.Swap(true) {
		return ErrStorageClosed
	}
	h.r.store.release(h.key, h.r)
	return nil
}

// encodeAlarm returns the content of an alarm file: magic, CRC-32C of the
// rest, seconds and nanoseconds since 1970, party and room.
func encodeAlarm(party, room string, t time.Time) []byte {
	b := make([]byte, len(alarmMagic)+4, 64+len(party)+len(room))
	copy(b, alarmMagic)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
	b = binary.AppendUvarint(b, uint64(len(party)))
	b = append(b, party...)
	b = binary.AppendUvarint(b, uint64(len(room)))
	b = append(b, room...)
	binary.BigEndian.PutUint32(b[len(alarmMagic):], crc32.Checksum(b[len(alarmMagic)+4:], crcTable))
	return b
}

func readAlarmFile(path string) (RoomAlarm, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return RoomAlarm{}, err
	}
	corrupt := fmt.Errorf("%w: %s", ErrStorageCorrupt, path)
	h := len(alarmMagic) + 4
	if len(b) < h+12 || !bytes.HasPrefix(b, []byte(alarmMagic)) ||
		crc32.Checksum(b[h:], crcTable) != binary.BigEndian.Uint32(b[len(alarmMagic):]) {
		return RoomAlarm{}, corrupt
	}
	sec := int64(binary.BigEndian.Uint64(b[h:]))
	nsec := int64(binary.BigEndian.Uint32(b[h+8:]))
	p := b[h+12:]
	var names [2]string
	for i := range names {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return RoomAlarm{}, corrupt
		}
		names[i] = string(p[k : k+int(n)])
		p = p[k+int(n):]
	}
	return RoomAlarm{Party: names[0], Room: names[1], At: time.Unix(sec, nsec)}, nil
}

// fileName escapes a party or room name into a file name: bytes other than
// a-z, 0-9, '-' and '_' become %XX (upper-case hex), so that names differing
// only in case stay distinct on case-insensitive file systems, and no name is
// special ("", ".", "..", Windows' "con"). Names longer than 120 bytes once
// escaped keep 80 of them, then '~' and 32 hex digits of their SHA-256.
func fileName(s string) string {
	if s == "" {
		return "%"
	}
	var b strings.Builder
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	name := b.String()
	if windowsReserved(name) {
		name = "%" + strings.ToUpper(hex.EncodeToString([]byte(name[:1]))) + name[1:]
	}
	if len(name) > 120 {
		cut := 80
		if i := strings.LastIndexByte(name[:cut], '%'); i > cut-3 {
			cut = i // do not split an escape
		}
		sum := sha256.Sum256([]byte(s))
		name = name[:cut] + "~" + hex.EncodeToString(sum[:16])
	}
	return name
}

func windowsReserved(name string) bool {
	switch name {
	case "con", "prn", "aux", "nul":
		return true
	}
	return len(name) == 4 && (strings.HasPrefix(name, "com") || strings.HasPrefix(name, "lpt")) &&
		'0' <= name[3] && name[3] <= '9'
}
