package yjs

// StateVector says, client by client, how many ticks of each client's
// history a document or update holds from clock 0 on. Entries are in encoded
// order; yjs writes the clients of a document in no particular order. A
// StateVector is a plain slice: reading it concurrently is safe.
type StateVector []ClientClock

// ClientClock is one entry of a StateVector: Client's ticks below Clock.
type ClientClock struct {
	Client uint64
	Clock  uint64
}

// DecodeStateVector decodes a state vector as y-protocols' sync step 1 and
// Y.encodeStateVector write it: a count, then client and clock pairs. It
// refuses truncated input and trailing bytes with an error wrapping
// ErrMalformed.
func DecodeStateVector(b []byte) (StateVector, error) {
	d := NewDecoder(b)
	n, err := d.readLen("state vector size", 2)
	if err != nil {
		return nil, within(err, "state vector")
	}
	sv := make(StateVector, n)
	for i := range sv {
		if sv[i].Client, err = d.ReadVarUint(); err != nil {
			return nil, within(err, "state vector")
		}
		if sv[i].Clock, err = d.ReadVarUint(); err != nil {
			return nil, within(err, "state vector")
		}
	}
	if d.Remaining() > 0 {
		return nil, within(d.fail("%d trailing bytes", d.Remaining()), "state vector")
	}
	return sv, nil
}

// Encode returns sv in the encoding DecodeStateVector reads.
func (sv StateVector) Encode() []byte {
	e := &Encoder{}
	e.WriteVarUint(uint64(len(sv)))
	for _, c := range sv {
		e.WriteVarUint(c.Client)
		e.WriteVarUint(c.Clock)
	}
	return e.Bytes()
}

// Clock returns the clock sv holds for client, 0 if none. When client appears
// more than once the last entry counts, as in yjs.
func (sv StateVector) Clock(client uint64) uint64 {
	clock := uint64(0)
	for _, c := range sv {
		if c.Client == client {
			clock = c.Clock
		}
	}
	return clock
}

// StateVector returns the ticks u holds without a gap from clock 0, client by
// client in u's order: a client whose run starts above 0 is left out, and a
// run counts up to its first Skip. It is what Y.encodeStateVectorFromUpdate
// computes.
func (u *Update) StateVector() StateVector {
	var sv StateVector
	for _, c := range u.Clients {
		if c.Clock != 0 {
			continue
		}
		clock := c.Clock
		for _, s := range c.Structs {
			if _, skip := s.(*Skip); skip {
				break
			}
			clock += s.Len()
		}
		if clock != 0 {
			sv = append(sv, ClientClock{Client: c.Client, Clock: clock})
		}
	}
	return sv
}

// EncodeStateVectorFromUpdate returns the encoded state vector of an encoded
// update, byte for byte what Y.encodeStateVectorFromUpdate returns for the
// updates yjs writes. An error wraps ErrMalformed and means DecodeUpdate
// refuses update.
func EncodeStateVectorFromUpdate(update []byte) ([]byte, error) {
	u, err := DecodeUpdate(update)
	if err != nil {
		return nil, err
	}
	return u.StateVector().Encode(), nil
}
