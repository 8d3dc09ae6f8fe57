package storage

import (
	"encoding/binary"

	"party/storage/internal/ondisk"
)

// entryOverhead is what compaction counts for the framing of one live entry
// in a rewritten log: more than a Put takes.
const entryOverhead = ondisk.HeaderLen + 2*binary.MaxVarintLen32

// maybeCompact rewrites the log if it has grown past compactMin and
// compactRatio times the live data, and past compactAt after a failed
// rewrite. The write that called it has succeeded whatever happens here.
// Callers hold wmu.
func (r *fileRoom) maybeCompact() {
	r.mu.RLock()
	live := int64(len(ondisk.LogMagic)) + r.idx.bytes + int64(r.idx.len())*entryOverhead
	r.mu.RUnlock()
	s := r.store
	if r.size <= s.compactMin || r.size <= s.compactRatio*live || r.size < r.compactAt {
		return
	}
	r.compact()
}

// compact rewrites the log with only the live entries. If that fails, the
// error is logged, the old log kept, and the next attempt put off until the
// log has grown by half. Callers hold wmu, with r.f open.
func (r *fileRoom) compact() {
	r.mu.RLock()
	ops := r.idx.puts()
	r.mu.RUnlock()

	// Close before renaming over the log, for Windows' sake.
	r.f.Close()
	r.f = nil
	size := r.size
	err := r.writeLog(ops)
	if err == nil {
		r.compactAt = 0
		return
	}
	r.compactAt = size + size/2
	r.store.logger().Error("party: file storage: compacting a room's log failed; the old log is kept",
		"path", r.logPath, "err", err)
	if r.f == nil && r.broken == nil {
		// Not renamed: the old log holds the data, appending goes on.
		r.openLog()
	}
}
