package storage

import (
	"fmt"
	"sort"

	"party/storage/internal/ondisk"
)

// kvIndex is the ordered in-memory map behind both stores. Lookups are
// O(1); the key order is kept lazily: keys added since the last List are
// sorted and merged in by the next List, so a run of writes costs no sorting
// and a List costs O(log n + k) when nothing was added.
//
// It stores the slices it is given and returns its own: callers copy.
type kvIndex struct {
	m      map[string]kvEntry
	sorted []string // sorted, no duplicates; every key is in m (maybe dead)
	added  []string // live keys of m missing from sorted
	dead   int      // entries of m that are dead (deleted, kept only while in sorted)
	bytes  int64    // sum of len(key)+len(value) over live entries
}

type kvEntry struct {
	value    []byte
	inSorted bool
	dead     bool
}

func (x *kvIndex) len() int { return len(x.m) - x.dead }

func (x *kvIndex) get(key string) ([]byte, bool) {
	e, ok := x.m[key]
	if !ok || e.dead {
		return nil, false
	}
	return e.value, true
}

// lookup returns a copy of the value under key, or an error wrapping
// ErrKeyNotFound.
func (x *kvIndex) lookup(key string) ([]byte, error) {
	v, ok := x.get(key)
	if !ok {
		return nil, fmt.Errorf("%w: %.64q", ErrKeyNotFound, key)
	}
	return append([]byte{}, v...), nil
}

// apply applies ops in order. It keeps the values it is given: the caller
// hands over values nothing writes into (a Batch's, or a log's decoded ones).
func (x *kvIndex) apply(ops []ondisk.Op) {
	for _, op := range ops {
		if op.Delete {
			x.delete(op.Key)
		} else {
			x.put(op.Key, op.Value)
		}
	}
}

func (x *kvIndex) put(key string, value []byte) {
	if value == nil {
		value = []byte{}
	}
	if x.m == nil {
		x.m = make(map[string]kvEntry)
	}
	e, ok := x.m[key]
	switch {
	case !ok:
		x.added = append(x.added, key)
	case e.dead:
		x.dead--
	default:
		x.bytes -= int64(len(key) + len(e.value))
	}
	x.bytes += int64(len(key) + len(value))
	x.m[key] = kvEntry{value: value, inSorted: e.inSorted}
	if len(x.added) > 64+2*len(x.m) {
		x.settle() // a key deleted and put again repeatedly is in added many times
	}
}

func (x *kvIndex) delete(key string) bool {
	e, ok := x.m[key]
	if !ok || e.dead {
		return false
	}
	x.bytes -= int64(len(key) + len(e.value))
	if !e.inSorted {
		// Still in added: dropped there by the next settle.
		delete(x.m, key)
		return true
	}
	x.m[key] = kvEntry{inSorted: true, dead: true}
	x.dead++
	return true
}

// settle merges added into sorted, dropping dead keys if there are many.
func (x *kvIndex) settle() {
	if len(x.added) == 0 && x.dead <= 64+len(x.sorted)/2 {
		return
	}
	// Keys of added that were deleted since are gone from m; a key deleted
	// and put again is in added twice.
	add := x.added[:0]
	for _, k := range x.added {
		if e, ok := x.m[k]; ok && !e.inSorted {
			e.inSorted = true
			x.m[k] = e
			add = append(add, k)
		}
	}
	sort.Strings(add)
	merged := make([]string, 0, len(x.sorted)+len(add)-x.dead)
	i, j := 0, 0
	for i < len(x.sorted) || j < len(add) {
		var k string
		if j == len(add) || (i < len(x.sorted) && x.sorted[i] < add[j]) {
			k = x.sorted[i]
			i++
			if x.m[k].dead {
				delete(x.m, k)
				continue
			}
		} else {
			k = add[j]
			j++
		}
		merged = append(merged, k)
	}
	clear(x.added)
	x.added = x.added[:0]
	x.sorted = merged
	x.dead = 0
}

func (x *kvIndex) list(o ListOptions) []KeyValue {
	x.settle()
	lo, hi, bounded := o.Start, o.End, o.End != ""
	if o.Prefix != "" {
		lo = max(lo, o.Prefix)
		if end, ok := prefixEnd(o.Prefix); ok && (!bounded || end < hi) {
			hi, bounded = end, true
		}
	}
	i := sort.SearchStrings(x.sorted, lo)
	j := len(x.sorted)
	if bounded {
		j = sort.SearchStrings(x.sorted, hi)
	}
	if i >= j {
		return nil
	}
	keys := x.sorted[i:j]
	var out []KeyValue
	emit := func(k string) bool {
		e := x.m[k]
		if e.dead {
			return true
		}
		out = append(out, KeyValue{Key: k, Value: append([]byte{}, e.value...)})
		return o.Limit <= 0 || len(out) < o.Limit
	}
	if o.Reverse {
		for n := len(keys) - 1; n >= 0 && emit(keys[n]); n-- {
		}
	} else {
		for n := 0; n < len(keys) && emit(keys[n]); n++ {
		}
	}
	return out
}

// prefixEnd returns the least string greater than every string starting with
// p, and false if there is none (p is all 0xff bytes).
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// puts returns a Put of every live entry, in no particular order: a
// snapshot of the index, sharing its values (which are never written into).
func (x *kvIndex) puts() []ondisk.Op {
	ops := make([]ondisk.Op, 0, x.len())
	for k, e := range x.m {
		if !e.dead {
			ops = append(ops, ondisk.Op{Key: k, Value: e.value})
		}
	}
	return ops
}
