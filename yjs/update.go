package yjs

import "reflect"

// Update is a decoded Yjs update in the v1 format (what Y.encodeStateAsUpdate
// and the 'update' event give): runs of structs, one run per client, then a
// delete set. An Update holds no references to the bytes it was decoded from.
// It is a plain value: reading it from several goroutines is safe, changing it
// while another goroutine reads or encodes it is not.
type Update struct {
	// Clients holds the runs in encoded order (yjs writes the higher client
	// first). DecodeUpdate accepts each client at most once.
	Clients []ClientStructs
	// Deletes is the update's delete set.
	Deletes DeleteSet
}

// ClientStructs is a run of consecutive structs of one client.
type ClientStructs struct {
	Client uint64
	// Clock is the clock of the first struct; each next struct starts where
	// the one before it ends.
	Clock   uint64
	Structs []Struct
}

// DecodeUpdate decodes a v1 update. It accepts every update yjs writes, and
// for those Encode gives back b byte for byte. It refuses, with an error
// wrapping ErrMalformed that says where and why, anything yjs would fail to
// read (truncation, unknown kinds, strings that are not UTF-8, JSON that does
// not parse, subdocument options that are not an object) and, beyond that,
// what yjs never writes and what would make merging or diffing wrong: structs
// of length 0, a client's run that is empty, starts with a Skip or appears
// twice, clocks beyond MaxSafeInteger, overlong numbers and trailing bytes.
// The result shares no memory with b (its strings share one copy of b).
func DecodeUpdate(b []byte) (*Update, error) {
	d := &Decoder{buf: b, text: string(b), slabs: &structSlabs{}}
	n, err := d.readLen("client count", 4)
	if err != nil {
		return nil, within(err, "update")
	}
	u := &Update{Clients: make([]ClientStructs, n)}
	seen := make(map[uint64]bool, n)
	for i := range u.Clients {
		c := &u.Clients[i]
		if err := c.decode(d); err != nil {
			return nil, within(err, "update: client %d (run %d of %d)", c.Client, i+1, n)
		}
		if seen[c.Client] {
			return nil, within(malformed("client %d has two runs", c.Client), "update")
		}
		seen[c.Client] = true
	}
	if u.Deletes, err = readDeleteSet(d); err != nil {
		return nil, within(err, "update: delete set")
	}
	if d.Remaining() > 0 {
		return nil, within(d.fail("%d bytes after the delete set", d.Remaining()), "update")
	}
	return u, nil
}

func (c *ClientStructs) decode(d *Decoder) error {
	n, err := d.readLen("struct count", 2)
	if err != nil {
		return err
	}
	if c.Client, err = d.ReadVarUint(); err != nil {
		return err
	}
	if c.Clock, err = d.ReadVarUint(); err != nil {
		return err
	}
	if n == 0 {
		return d.fail("no structs")
	}
	c.Structs = make([]Struct, n)
	clock := c.Clock
	for i := range c.Structs {
		s, err := readStruct(d)
		if err != nil {
			return within(err, "struct %d at clock %d", i, clock)
		}
		if _, skip := s.(*Skip); skip && i == 0 {
			return d.fail("the run starts with a Skip")
		}
		if s.Len() > MaxSafeInteger-clock {
			return d.fail("struct %d ends beyond clock 2^53-1", i)
		}
		clock += s.Len()
		c.Structs[i] = s
	}
	return nil
}

// Encode returns u in the v1 format. For an Update that DecodeUpdate returned,
// and for those this package's functions build, the result is what yjs would
// write and DecodeUpdate accepts it. An Update built by hand should pass
// Validate first: Encode does not check it.
func (u *Update) Encode() []byte { return u.encodeSized(0) }

// encodeSized encodes u into a buffer of capacity sizeHint to start with.
func (u *Update) encodeSized(sizeHint int) []byte {
	e := &Encoder{buf: make([]byte, 0, sizeHint)}
	u.encode(e)
	return e.Bytes()
}

func (u *Update) encode(e *Encoder) {
	e.WriteVarUint(uint64(len(u.Clients)))
	for _, c := range u.Clients {
		e.WriteVarUint(uint64(len(c.Structs)))
		e.WriteVarUint(c.Client)
		e.WriteVarUint(c.Clock)
		for _, s := range c.Structs {
			encodeStruct(e, s)
		}
	}
	u.Deletes.encode(e)
}

// Validate reports, with an error wrapping ErrMalformed, whether u could
// have come from DecodeUpdate: whether no struct or content is nil, items
// carry parent information exactly when they have no origin, only XML
// elements and hooks have a name, and DecodeUpdate accepts what Encode writes.
func (u *Update) Validate() error {
	for _, c := range u.Clients {
		for i, s := range c.Structs {
			if err := validStruct(s); err != nil {
				return within(err, "update: client %d, struct %d", c.Client, i)
			}
		}
	}
	_, err := DecodeUpdate(u.Encode())
	return err
}

// validStruct checks what the encoding cannot show: nil pointers, and
// fields Encode would drop.
func validStruct(s Struct) error {
	it, ok := s.(*Item)
	switch {
	case isNil(s):
		return malformed("nil struct")
	case !ok:
		return nil
	case isNil(it.Content):
		return malformed("item without content")
	}
	hasOrigin := it.Origin != nil || it.RightOrigin != nil
	switch {
	case hasOrigin && (it.Parent != nil || it.ParentSub != nil):
		return malformed("item with an origin also names a parent")
	case !hasOrigin && it.Parent == nil:
		return malformed("item without origins names no parent")
	case !hasOrigin && it.ParentSubBit:
		return malformed("ParentSubBit on an item without origins")
	}
	if t, ok := it.Content.(*ContentType); ok && t.Name != "" && t.Ref != TypeXmlElement && t.Ref != TypeXmlHook {
		return malformed("a %v has no name", t.Ref)
	}
	return nil
}

// isNil reports whether v is nil or a nil pointer.
func isNil(v any) bool {
	r := reflect.ValueOf(v)
	return !r.IsValid() || r.Kind() == reflect.Pointer && r.IsNil()
}

// ValidateUpdate reports whether DecodeUpdate accepts b, with its error.
func ValidateUpdate(b []byte) error {
	_, err := DecodeUpdate(b)
	return err
}
