package yjs

import (
	"bytes"
	"cmp"
	"slices"
)

// MergeUpdates merges encoded v1 updates into one that a document applies to
// the same content as all of them, in any order: what Y.mergeUpdates does.
// Like yjs, it keeps content that is deleted (it does not collect garbage),
// joins overlapping runs of a client, and marks a gap between them with a Skip;
// a single update comes back as a copy of itself. An error wraps ErrMalformed
// and names the update DecodeUpdate refused; nothing is merged then. The
// inputs are not changed, and the result shares no memory with them.
func MergeUpdates(updates ...[]byte) ([]byte, error) {
	decoded, err := decodeUpdates(updates)
	if err != nil {
		return nil, err
	}
	if len(updates) == 1 {
		return bytes.Clone(updates[0]), nil
	}
	size := 0
	for _, b := range updates {
		size += len(b)
	}
	return Merge(decoded...).encodeSized(size), nil
}

func decodeUpdates(updates [][]byte) ([]*Update, error) {
	decoded := make([]*Update, len(updates))
	for i, b := range updates {
		u, err := DecodeUpdate(b)
		if err != nil {
			return nil, within(err, "merge: input %d of %d", i+1, len(updates))
		}
		decoded[i] = u
	}
	return decoded, nil
}

// Merge is MergeUpdates on decoded updates, for any number of them: clients
// in descending order, each client's structs from the lowest clock on, where
// two updates hold the same ticks the earlier update's structs are kept, and
// the delete sets are joined. The result may share Content with the inputs;
// neither is changed.
func Merge(updates ...*Update) *Update {
	runs := map[uint64][]span{}
	var deletes []DeleteSet
	for src, u := range updates {
		for _, c := range u.Clients {
			clock := c.Clock
			for _, s := range c.Structs {
				if _, skip := s.(*Skip); !skip {
					runs[c.Client] = append(runs[c.Client], span{clock: clock, s: s, src: src})
				}
				clock += s.Len()
			}
		}
		deletes = append(deletes, u.Deletes)
	}
	out := &Update{Clients: make([]ClientStructs, 0, len(runs))}
	for client, spans := range runs {
		out.Clients = append(out.Clients, mergeRun(client, spans))
	}
	slices.SortFunc(out.Clients, func(a, b ClientStructs) int { return cmp.Compare(b.Client, a.Client) })
	out.Deletes = mergeDeleteSets(deletes...)
	return out
}

// span is a struct of some update at its clock.
type span struct {
	clock uint64
	s     Struct
	src   int // the update it comes from
}

// mergeRun returns one run covering the spans of a client: sorted by clock
// (the earlier update first where clocks tie), a span that adds nothing is
// dropped, one that overlaps what is written is sliced, a gap becomes a Skip,
// and GCs from different updates that touch are joined.
func mergeRun(client uint64, spans []span) ClientStructs {
	slices.SortStableFunc(spans, func(a, b span) int { return cmp.Compare(a.clock, b.clock) })
	run := ClientStructs{Client: client, Clock: spans[0].clock}
	next, lastSrc := spans[0].clock, -1
	for _, sp := range spans {
		end := sp.clock + sp.s.Len()
		if end <= next {
			continue
		}
		s := asYjsWrites(sp.s)
		if sp.clock > next {
			run.Structs = append(run.Structs, &Skip{Length: sp.clock - next})
		} else if sp.clock < next {
			s = sliceStruct(sp.s, ID{Client: client, Clock: sp.clock}, next-sp.clock)
		}
		last := len(run.Structs) - 1
		if gc, ok := s.(*GC); ok && last >= 0 && sp.src != lastSrc && sp.clock <= next {
			if prev, ok := run.Structs[last].(*GC); ok {
				run.Structs[last] = &GC{Length: prev.Length + gc.Length}
				next, lastSrc = end, sp.src
				continue
			}
		}
		run.Structs = append(run.Structs, s)
		next, lastSrc = end, sp.src
	}
	return run
}
