package yjs

import (
	"cmp"
	"encoding/json"
	"slices"
)

// awarenessEntry is one client's entry in an awareness update: its clock and
// its state as JSON text, "null" when the client is gone.
type awarenessEntry struct {
	client, clock uint64
	state         string
}

const nullState = "null"

// decodeAwareness reads an awareness update (y-protocols awareness.js): a
// count, then client, clock and JSON state for each. States that are not
// JSON, and bytes after the last entry, are refused with ErrMalformed.
func decodeAwareness(b []byte) ([]awarenessEntry, error) {
	d := NewDecoder(b)
	n, err := d.readLen("awareness entry count", 3)
	if err != nil {
		return nil, within(err, "awareness update")
	}
	entries := make([]awarenessEntry, n)
	for i := range entries {
		e := &entries[i]
		if e.client, err = d.ReadVarUint(); err == nil {
			if e.clock, err = d.ReadVarUint(); err == nil {
				start := d.Offset()
				if e.state, err = d.ReadVarString(); err == nil && !json.Valid([]byte(e.state)) {
					err = (&Decoder{pos: start}).fail("the state of client %d is not JSON", e.client)
				}
			}
		}
		if err != nil {
			return nil, within(err, "awareness update: entry %d of %d", i+1, n)
		}
	}
	if d.Remaining() > 0 {
		return nil, within(d.fail("%d bytes after the last entry", d.Remaining()), "awareness update")
	}
	return entries, nil
}

// encodeAwareness returns the awareness update holding entries.
func encodeAwareness(entries []awarenessEntry) []byte {
	e := &Encoder{}
	e.WriteVarUint(uint64(len(entries)))
	for _, a := range entries {
		e.WriteVarUint(a.client)
		e.WriteVarUint(a.clock)
		e.WriteVarString(a.state)
	}
	return e.Bytes()
}

// awareness is a room's view of its clients' awareness states, kept as
// y-protocols' Awareness keeps remote states: a client's clock is remembered
// after its state is removed, so that a late, older update cannot bring the
// state back.
type awareness struct {
	clocks map[uint64]uint64 // every client seen
	states map[uint64]string // the clients with a state, JSON
}

func newAwareness() awareness {
	return awareness{clocks: map[uint64]uint64{}, states: map[uint64]string{}}
}

// apply applies the entries of an update with y-protocols' rule (a newer
// clock wins, an unseen client being at clock 0; at the same clock only a
// removal of a present state does) and returns those applied, which are what
// the room tells every client.
func (a *awareness) apply(entries []awarenessEntry) []awarenessEntry {
	var changed []awarenessEntry
	for _, e := range entries {
		clock, seen := a.clocks[e.client] // an unseen client is at clock 0
		_, present := a.states[e.client]
		if clock > e.clock || clock == e.clock && (e.state != nullState || !present) {
			continue
		}
		a.clocks[e.client] = e.clock
		if e.state == nullState {
			delete(a.states, e.client)
			if !seen {
				continue // the removal of a client nobody knew: kept, not told
			}
		} else {
			a.states[e.client] = e.state
		}
		changed = append(changed, e)
	}
	return changed
}

// remove drops the states of clients that have one and returns their null
// entries, at the clocks the room knows them by, so that other clients drop
// them too.
func (a *awareness) remove(clients []uint64) []awarenessEntry {
	var removed []awarenessEntry
	for _, c := range clients {
		if _, ok := a.states[c]; ok {
			delete(a.states, c)
			removed = append(removed, awarenessEntry{client: c, clock: a.clocks[c], state: nullState})
		}
	}
	return removed
}

// all returns every present state, by client.
func (a *awareness) all() []awarenessEntry {
	out := make([]awarenessEntry, 0, len(a.states))
	for c, s := range a.states {
		out = append(out, awarenessEntry{client: c, clock: a.clocks[c], state: s})
	}
	slices.SortFunc(out, func(x, y awarenessEntry) int { return cmp.Compare(x.client, y.client) })
	return out
}
