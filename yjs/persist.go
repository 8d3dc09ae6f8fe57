package yjs

import (
	"fmt"
	"strconv"
	"strings"

	"party/storage"
)

// A room's document in its Storage, under StoragePrefix:
//
//	yjs/doc/000000, yjs/doc/000001, …   the snapshot: one merged update, cut in chunks
//	yjs/log/0000000000000001, …         one accepted update each, in the order accepted
//
// The document is the merge of the snapshot and every logged update. An
// update is one Put (durable when it returns, with a FileStore). Compacting
// writes the merge of everything as the new snapshot in one Batch (the old
// snapshot's chunks are replaced or deleted in it, so a crash leaves the old
// snapshot or the new one), then deletes the log entries it covers. A crash
// before those deletions leaves entries the snapshot already holds: merging
// them again changes nothing, so the document read back is the same.
const (
	// StoragePrefix starts every key the Server writes in its room's
	// Storage. The app may keep its own keys in the same Storage under
	// other prefixes; a key under this one that the Server did not write
	// makes OnStart fail, naming it.
	StoragePrefix = "yjs/"

	docPrefix = StoragePrefix + "doc/"
	logPrefix = StoragePrefix + "log/"

	// snapshotChunk is the largest value of one snapshot chunk.
	snapshotChunk = 4 << 20
	// batchBudget bounds the keys and values of one compaction Batch
	// beyond the snapshot, well under storage.MaxBatchLen.
	batchBudget = 4 << 20
)

// updateLog is what the Server knows of its room's Storage: how many
// snapshot chunks there are, and the log's extent.
type updateLog struct {
	st     storage.Storage
	chunks int      // snapshot chunks stored
	keys   []string // log keys, in order
	bytes  int      // bytes of the logged updates
	next   uint64   // the sequence number of the next logged update
}

// stored is a room's document as read from its Storage.
type stored struct {
	snapshot []byte   // the snapshot's chunks, joined; nil if there is none
	updates  [][]byte // the logged updates, in order
}

// loadLog reads the document kept in st.
func loadLog(st storage.Storage) (*updateLog, stored, error) {
	l := &updateLog{st: st, next: 1}
	var doc stored
	kvs, err := st.List(storage.ListOptions{Prefix: StoragePrefix})
	if err != nil {
		return nil, doc, fmt.Errorf("yjs: reading the document from the room's storage: %w", err)
	}
	for _, kv := range kvs {
		switch {
		case strings.HasPrefix(kv.Key, docPrefix) && kv.Key == chunkKey(l.chunks):
			doc.snapshot = append(doc.snapshot, kv.Value...)
			l.chunks++
		case strings.HasPrefix(kv.Key, logPrefix):
			seq, err := strconv.ParseUint(kv.Key[len(logPrefix):], 16, 64)
			if err != nil || kv.Key != logKey(seq) {
				return nil, doc, fmt.Errorf("yjs: room storage key %q is not a log entry this package writes", kv.Key)
			}
			doc.updates = append(doc.updates, kv.Value)
			l.keys = append(l.keys, kv.Key)
			l.bytes += len(kv.Value)
			l.next = seq + 1
		default:
			return nil, doc, fmt.Errorf("yjs: room storage key %q is not one this package writes (snapshot chunk %d expected)", kv.Key, l.chunks)
		}
	}
	return l, doc, nil
}

func chunkKey(i int) string    { return fmt.Sprintf("%s%06d", docPrefix, i) }
func logKey(seq uint64) string { return fmt.Sprintf("%s%016x", logPrefix, seq) }

// append logs an accepted update: one Put, durable when it returns as far as
// the Storage promises.
func (l *updateLog) append(update []byte) error {
	key := logKey(l.next)
	if err := l.st.Put(key, update); err != nil {
		return fmt.Errorf("yjs: storing an update: %w", err)
	}
	l.next++
	l.keys = append(l.keys, key)
	l.bytes += len(update)
	return nil
}

// compact replaces the snapshot with doc, which must hold the snapshot and
// every logged update, and deletes the log. On an error the document kept is
// still whole: the old snapshot and log, or the new snapshot and part of the
// log.
func (l *updateLog) compact(doc []byte) error {
	var b storage.Batch
	n := 0
	for ; n*snapshotChunk < len(doc); n++ {
		b.Put(chunkKey(n), doc[n*snapshotChunk:min(len(doc), (n+1)*snapshotChunk)])
	}
	for i := n; i < l.chunks; i++ {
		b.Delete(chunkKey(i))
	}
	if err := l.st.Write(&b); err != nil {
		return fmt.Errorf("yjs: writing the compacted document: %w", err)
	}
	l.chunks = n
	l.bytes = 0 // what is left of the log is held by the snapshot too
	for len(l.keys) > 0 {
		b.Reset()
		n, size := 0, 0
		for ; n < len(l.keys) && size < batchBudget; n++ {
			b.Delete(l.keys[n])
			size += len(l.keys[n]) + 32
		}
		if err := l.st.Write(&b); err != nil {
			return fmt.Errorf("yjs: deleting the compacted update log: %w", err)
		}
		l.keys = l.keys[n:]
	}
	return nil
}
