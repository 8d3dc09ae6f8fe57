package yjs

import (
	"cmp"
	"slices"
)

// DeleteSet lists the ticks an update deletes, client by client, in encoded
// order. yjs writes clients in descending order with sorted, disjoint ranges,
// but reads any order; DecodeUpdate keeps what it reads.
type DeleteSet []ClientDeletes

// ClientDeletes is the deleted ranges of one client.
type ClientDeletes struct {
	Client uint64
	Ranges []DeleteRange
}

// DeleteRange is Len ticks from Clock.
type DeleteRange struct {
	Clock uint64
	Len   uint64
}

func (ds DeleteSet) encode(e *Encoder) {
	e.WriteVarUint(uint64(len(ds)))
	for _, c := range ds {
		e.WriteVarUint(c.Client)
		e.WriteVarUint(uint64(len(c.Ranges)))
		for _, r := range c.Ranges {
			e.WriteVarUint(r.Clock)
			e.WriteVarUint(r.Len)
		}
	}
}

// readDeleteSet reads a delete set and refuses empty ranges and ranges that
// end beyond MaxSafeInteger.
func readDeleteSet(d *Decoder) (DeleteSet, error) {
	n, err := d.readLen("delete set client count", 2)
	if err != nil {
		return nil, err
	}
	ds := make(DeleteSet, n)
	for i := range ds {
		c := &ds[i]
		if c.Client, err = d.ReadVarUint(); err != nil {
			return nil, err
		}
		m, err := d.readLen("delete range count", 2)
		if err != nil {
			return nil, err
		}
		c.Ranges = make([]DeleteRange, m)
		for j := range c.Ranges {
			r := &c.Ranges[j]
			if r.Clock, err = d.ReadVarUint(); err != nil {
				return nil, err
			}
			if r.Len, err = d.ReadVarUint(); err != nil {
				return nil, err
			}
			if r.Len == 0 || r.Len > MaxSafeInteger-r.Clock {
				return nil, d.fail("delete range of client %d: %d ticks from %d", c.Client, r.Len, r.Clock)
			}
		}
	}
	return ds, nil
}

// grouped returns the delete sets' ranges by client, clients in descending
// order (as yjs writes them), each client's ranges in the order they appear;
// clients without ranges are left out. The inputs are not changed.
func grouped(sets ...DeleteSet) DeleteSet {
	index := map[uint64]int{}
	var out DeleteSet
	for _, ds := range sets {
		for _, c := range ds {
			if len(c.Ranges) == 0 {
				continue
			}
			i, ok := index[c.Client]
			if !ok {
				i = len(out)
				index[c.Client] = i
				out = append(out, ClientDeletes{Client: c.Client})
			}
			out[i].Ranges = append(out[i].Ranges, c.Ranges...)
		}
	}
	slices.SortStableFunc(out, func(a, b ClientDeletes) int { return cmp.Compare(b.Client, a.Client) })
	return out
}

// mergeDeleteSets returns the union of the delete sets: clients in descending
// order, each client's ranges sorted and joined where they touch or overlap.
func mergeDeleteSets(sets ...DeleteSet) DeleteSet {
	out := grouped(sets...)
	for i := range out {
		rs := out[i].Ranges
		slices.SortStableFunc(rs, func(a, b DeleteRange) int { return cmp.Compare(a.Clock, b.Clock) })
		joined := rs[:1]
		for _, r := range rs[1:] {
			last := &joined[len(joined)-1]
			if r.Clock <= last.Clock+last.Len {
				last.Len = max(last.Len, r.Clock+r.Len-last.Clock)
				continue
			}
			joined = append(joined, r)
		}
		out[i].Ranges = joined
	}
	return out
}
