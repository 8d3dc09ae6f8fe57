package ondisk

import (
	"bufio"
	"fmt"
	"io"
)

const (
	// LogMagic is the first 8 bytes of every log.
	LogMagic = "partylg1"
	// chunkLen is the payload [WriteLog] puts in one record, but for an
	// operation longer than that, which gets a record of its own.
	chunkLen = 1 << 20
)

// WriteLog writes to w a whole log holding ops, which are Puts (a log
// written whole needs no Delete): the magic, then the operations in records
// of about a MiB each. With no ops it writes an empty log. It returns the
// first error of w.
func WriteLog(w io.Writer, ops []Op) error {
	if _, err := io.WriteString(w, LogMagic); err != nil || len(ops) == 0 {
		return err
	}
	rec := NewRecord(make([]byte, 0, HeaderLen+chunkLen))
	flush := func() error {
		if len(rec) == HeaderLen {
			return nil
		}
		_, err := w.Write(Seal(rec))
		rec = NewRecord(rec)
		return err
	}
	for _, op := range ops {
		if len(rec)-HeaderLen+len(op.Key)+len(op.Value) > chunkLen {
			if err := flush(); err != nil {
				return err
			}
		}
		rec = AppendOp(rec, op)
	}
	return flush()
}

// Replay reads the log f from its start and calls apply with the operations
// of each record, in order; apply may keep them. It returns the log's length:
// the end of its last whole record, where the next record is to be written.
//
// A last record cut short or garbled, which is what a crash while writing it
// leaves, is dropped whole: Replay truncates the log before it, fsyncs it,
// and does not apply it. Any other damage (a bad magic, a bad record followed
// by a good one, a record whose CRC matches but whose operations do not
// parse) is a [*CorruptError], and f is left as it was; records before the
// damage have been applied then, and the caller discards what it built.
func Replay(f File, apply func([]Op)) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, end), 64<<10)
	magic := make([]byte, len(LogMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != LogMagic {
		// A log is created whole by a rename: this is not a torn write.
		return 0, &CorruptError{Path: f.Name(), Detail: "bad header"}
	}
	off := int64(len(LogMagic))
	var hdr [HeaderLen]byte
	var payload []byte
	for off < end {
		n, ok := int64(0), end-off >= HeaderLen
		if ok {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return 0, fmt.Errorf("%s: %w", f.Name(), err)
			}
			n, ok = payloadLen(hdr[:], end-off-HeaderLen)
		}
		if ok {
			if int64(cap(payload)) < n {
				payload = make([]byte, n)
			}
			payload = payload[:n]
			if _, err := io.ReadFull(br, payload); err != nil {
				return 0, fmt.Errorf("%s: %w", f.Name(), err)
			}
			ok = sumOK(hdr[:], payload)
		}
		if !ok {
			return dropTornTail(f, off, end)
		}
		ops, err := DecodeOps(payload)
		if err != nil {
			// A record with a good CRC that does not parse was not
			// torn: it was written wrong.
			return 0, &CorruptError{Path: f.Name(), Detail: fmt.Sprintf("record at offset %d: %v", off, err)}
		}
		apply(ops)
		off += HeaderLen + n
	}
	return off, nil
}

// dropTornTail decides what the unreadable record at off, in a log of end
// bytes, is. If no good record follows it, it is a torn last write: the log
// is truncated before it, and off returned. Otherwise the log is damaged and
// left alone.
func dropTornTail(f File, off, end int64) (int64, error) {
	corrupt := &CorruptError{Path: f.Name(), Detail: fmt.Sprintf("bad record at offset %d of %d", off, end)}
	if end-off > HeaderLen+MaxRecord {
		return 0, corrupt // more than one write could have left
	}
	tail := make([]byte, end-off)
	if _, err := f.ReadAt(tail, off); err != nil {
		return 0, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if holdsRecord(tail[1:]) {
		return 0, corrupt
	}
	if err := f.Truncate(off); err != nil {
		return 0, fmt.Errorf("dropping a torn write: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("dropping a torn write: %w", err)
	}
	return off, nil
}

// holdsRecord reports whether a whole, valid record starts anywhere in b.
func holdsRecord(b []byte) bool {
	for i := 0; i+HeaderLen < len(b); i++ {
		hdr := b[i : i+HeaderLen]
		n, ok := payloadLen(hdr, int64(len(b)-i-HeaderLen))
		if !ok {
			continue
		}
		p := b[i+HeaderLen : i+HeaderLen+int(n)]
		if sumOK(hdr, p) {
			if _, err := DecodeOps(p); err == nil {
				return true
			}
		}
	}
	return false
}
