package cluster

import (
	"slices"
	"sort"

	"party/storage"
)

// index is the materialized state of a room's store: its keys and values in
// memory, rebuilt from the room's messages on Open. Its values are never
// written into, so they are shared with the messages they came from; callers
// get copies. Not safe for concurrent use: the room's lock guards it.
type index struct {
	m      map[string][]byte
	sorted []string // the keys of m in order, when !dirty
	dirty  bool
}

func (x *index) get(key string) ([]byte, bool) {
	v, ok := x.m[key]
	return v, ok
}

func (x *index) put(key string, value []byte) {
	if x.m == nil {
		x.m = make(map[string][]byte)
	}
	if _, ok := x.m[key]; !ok {
		x.dirty = true
	}
	x.m[key] = value
}

func (x *index) delete(key string) bool {
	_, ok := x.m[key]
	if ok {
		delete(x.m, key)
		x.dirty = true
	}
	return ok
}

// apply applies a decoded record's operations in order.
func (x *index) apply(ops []op) {
	for _, o := range ops {
		if o.delete {
			x.delete(o.key)
		} else {
			x.put(o.key, o.value)
		}
	}
}

func (x *index) reset() { *x = index{} }

func (x *index) len() int { return len(x.m) }

// keys returns the keys in order; the slice is shared until the next change.
func (x *index) keys() []string {
	if x.dirty || len(x.sorted) != len(x.m) {
		x.sorted = x.sorted[:0]
		for k := range x.m {
			x.sorted = append(x.sorted, k)
		}
		slices.Sort(x.sorted)
		x.dirty = false
	}
	return x.sorted
}

// list implements storage.Storage.List over the index: the keys starting
// with o.Prefix in [o.Start, o.End), ascending or descending, at most
// o.Limit of them (if positive), with copies of their values.
func (x *index) list(o storage.ListOptions) []storage.KeyValue {
	keys := x.keys()
	lo, hi, bounded := o.Start, o.End, o.End != ""
	if o.Prefix != "" {
		lo = max(lo, o.Prefix)
		if end, ok := afterPrefix(o.Prefix); ok && (!bounded || end < hi) {
			hi, bounded = end, true
		}
	}
	i, j := sort.SearchStrings(keys, lo), len(keys)
	if bounded {
		j = sort.SearchStrings(keys, hi)
	}
	if i >= j {
		return nil
	}
	keys = keys[i:j]
	n := len(keys)
	if o.Limit > 0 {
		n = min(n, o.Limit)
	}
	out := make([]storage.KeyValue, n)
	for k := range n {
		key := keys[k]
		if o.Reverse {
			key = keys[len(keys)-1-k]
		}
		out[k] = storage.KeyValue{Key: key, Value: slices.Clone(x.m[key])}
		if out[k].Value == nil {
			out[k].Value = []byte{}
		}
	}
	return out
}

// afterPrefix returns the least string above every string that starts with
// p, or false if there is none (p is all 0xff bytes).
func afterPrefix(p string) (string, bool) {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			return p[:i] + string([]byte{p[i] + 1}), true
		}
	}
	return "", false
}
