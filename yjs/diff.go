package yjs

// DiffUpdate returns what an encoded v1 update holds beyond an encoded state
// vector: what Y.diffUpdate returns. Each client's structs start at the first
// tick the state vector lacks (a struct that straddles it is sliced there);
// the delete set is kept whole, as yjs keeps it. An error wraps ErrMalformed
// and says whether the update or the state vector was refused. The inputs are
// not changed, and the result shares no memory with them.
func DiffUpdate(update, stateVector []byte) ([]byte, error) {
	u, err := DecodeUpdate(update)
	if err != nil {
		return nil, within(err, "diff")
	}
	sv, err := DecodeStateVector(stateVector)
	if err != nil {
		return nil, within(err, "diff")
	}
	return u.Diff(sv).encodeSized(len(update)), nil
}

// Diff is DiffUpdate on a decoded update. The result may share Content with
// u; neither is changed.
func (u *Update) Diff(sv StateVector) *Update {
	known := make(map[uint64]uint64, len(sv))
	for _, c := range sv {
		known[c.Client] = c.Clock // the last entry of a client counts
	}
	out := &Update{Deletes: grouped(u.Deletes)}
	for _, c := range u.Clients {
		if run, ok := c.after(known[c.Client]); ok {
			out.Clients = append(out.Clients, run)
		}
	}
	return out
}

// after returns the run's structs from clock on, starting at the first that is
// not a Skip; false if there are none.
func (c ClientStructs) after(clock uint64) (ClientStructs, bool) {
	start := c.Clock
	for i, s := range c.Structs {
		end := start + s.Len()
		if _, skip := s.(*Skip); skip || end <= clock {
			start = end
			continue
		}
		run := ClientStructs{Client: c.Client, Clock: start, Structs: make([]Struct, 0, len(c.Structs)-i)}
		if clock > start {
			run.Clock = clock
			run.Structs = append(run.Structs, sliceStruct(s, ID{Client: c.Client, Clock: start}, clock-start))
		} else {
			run.Structs = append(run.Structs, asYjsWrites(s))
		}
		for _, s := range c.Structs[i+1:] {
			run.Structs = append(run.Structs, asYjsWrites(s))
		}
		return run, true
	}
	return ClientStructs{}, false
}
