package yjs

import "slices"

// document is a room's Yjs document as updates: the merge of what was
// accepted up to some point, and the updates accepted since, merged when the
// whole document is needed (a client's sync, Document, a compaction). An
// accepted update therefore costs its decoding, not a merge.
type document struct {
	merged  *Update   // Merge of everything accepted before pending
	encoded []byte    // merged.Encode(), or nil until asked for
	pending []*Update // accepted since, in order
	size    int       // len(encoded) once encoded, plus the pending updates' sizes
}

// newDocument returns a document holding u, whose encoding is b (b may be nil
// for the empty document).
func newDocument(u *Update, b []byte) document {
	if b == nil {
		b = u.Encode()
	}
	return document{merged: u, encoded: b, size: len(b)}
}

// add appends an accepted update, n bytes encoded.
func (d *document) add(u *Update, n int) {
	d.pending = append(d.pending, u)
	d.size += n
}

// settle merges the pending updates into the document. Where two updates
// hold the same ticks, the one accepted first is kept, as Merge keeps it.
func (d *document) settle() {
	if len(d.pending) == 0 {
		return
	}
	d.merged = Merge(append([]*Update{d.merged}, d.pending...)...)
	d.pending = nil
	d.encoded = d.merged.Encode()
	d.size = len(d.encoded)
}

// bytes returns the merged document, encoded. The slice is shared: callers
// must not change it.
func (d *document) bytes() []byte {
	d.settle()
	return d.encoded
}

// stateVector returns the merged document's state vector, encoded.
func (d *document) stateVector() []byte {
	d.settle()
	return d.merged.StateVector().Encode()
}

// diff returns what the merged document holds beyond a client's state vector,
// encoded: the answer to its sync step 1.
func (d *document) diff(sv StateVector) []byte {
	d.settle()
	return d.merged.Diff(sv).Encode()
}

// lacks reports whether u holds something the document does not: ticks
// beyond its state vector, or deletions it has not recorded.
func (d *document) lacks(u *Update) bool {
	d.settle()
	if len(u.Diff(d.merged.StateVector()).Clients) > 0 {
		return true
	}
	if len(u.Deletes) == 0 {
		return false
	}
	have := mergeDeleteSets(d.merged.Deletes)
	return !slices.EqualFunc(mergeDeleteSets(have, u.Deletes), have, func(a, b ClientDeletes) bool {
		return a.Client == b.Client && slices.Equal(a.Ranges, b.Ranges)
	})
}

// empty reports whether u changes nothing: no structs, no deletions.
func empty(u *Update) bool {
	if len(u.Clients) > 0 {
		return false
	}
	for _, c := range u.Deletes {
		if len(c.Ranges) > 0 {
			return false
		}
	}
	return true
}

// fits reports whether the document, with u (n bytes encoded) accepted,
// stays within limit bytes: at once when the sizes add up within it,
// otherwise by merging to measure.
func (d *document) fits(u *Update, n, limit int) bool {
	if d.size+n <= limit {
		return true
	}
	d.settle()
	if d.size+n <= limit {
		return true
	}
	return len(Merge(d.merged, u).Encode()) <= limit
}
