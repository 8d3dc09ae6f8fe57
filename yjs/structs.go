package yjs

// ID names one clock tick of one client: the unit every struct is counted in.
type ID struct {
	Client uint64
	Clock  uint64
}

// Struct is one entry in a client's run of structs: *GC, *Skip or *Item.
// Other packages cannot add kinds.
type Struct interface {
	// Len returns how many clock ticks the struct takes.
	Len() uint64
	isStruct()
}

// GC stands for Length ticks of content that was deleted and collected
// together with its place in the document.
type GC struct{ Length uint64 }

// Skip stands for Length ticks this update does not carry (a gap, which
// merging updates with holes produces). A document cannot apply what follows a
// Skip until the gap is filled.
type Skip struct{ Length uint64 }

// Item is inserted content and where it goes. Its ID is its run's clock plus
// the lengths of the structs before it.
type Item struct {
	// Origin is the ID of the item to the left at insertion, or nil.
	Origin *ID
	// RightOrigin is the ID of the item to the right at insertion, or nil.
	RightOrigin *ID
	// Parent says which type the item belongs to. It is encoded, and must be
	// set, exactly when Origin and RightOrigin are both nil (otherwise the
	// parent is the origin's).
	Parent *Parent
	// ParentSub is the map key of an item that is a map entry, encoded only
	// with Parent; nil when the item is in a sequence or when Parent is nil.
	ParentSub *string
	// ParentSubBit records info bit 6 on an item with an origin: yjs sets it
	// on map entries but does not read it, and its own merge and diff clear
	// it. Encode writes it; MergeUpdates and DiffUpdate clear it, as yjs does.
	ParentSubBit bool
	// Content is what the item holds.
	Content Content
}

// Parent names an item's parent type: a root type by name (Y.Doc.get(name))
// or the type created by the item with ID Item.
type Parent struct {
	IsRoot bool
	Root   string
	Item   ID
}

// Len returns Length.
func (s *GC) Len() uint64 { return s.Length }

// Len returns Length.
func (s *Skip) Len() uint64 { return s.Length }

// Len returns the length of the item's content.
func (s *Item) Len() uint64 { return s.Content.Len() }

func (*GC) isStruct()   {}
func (*Skip) isStruct() {}
func (*Item) isStruct() {}

// Bits of a struct's info byte.
const (
	infoRefMask      = 0x1f
	infoParentSub    = 0x20
	infoRightOrigin  = 0x40
	infoOrigin       = 0x80
	infoGC           = 0
	infoSkip         = 10
	contentRefFirst  = 1
	contentRefLast   = 9
	parentInfoRoot   = 1
	parentInfoItemID = 0
)

// encodeStruct writes s with its info byte.
func encodeStruct(e *Encoder, s Struct) {
	switch s := s.(type) {
	case *GC:
		e.WriteUint8(infoGC)
		e.WriteVarUint(s.Length)
	case *Skip:
		e.WriteUint8(infoSkip)
		e.WriteVarUint(s.Length)
	case *Item:
		s.encode(e)
	}
}

func (s *Item) encode(e *Encoder) {
	info := s.Content.ref()
	if s.Origin != nil {
		info |= infoOrigin
	}
	if s.RightOrigin != nil {
		info |= infoRightOrigin
	}
	if s.ParentSub != nil || s.ParentSubBit {
		info |= infoParentSub
	}
	e.WriteUint8(info)
	if s.Origin != nil {
		writeID(e, *s.Origin)
	}
	if s.RightOrigin != nil {
		writeID(e, *s.RightOrigin)
	}
	if s.Origin == nil && s.RightOrigin == nil && s.Parent != nil {
		if s.Parent.IsRoot {
			e.WriteVarUint(parentInfoRoot)
			e.WriteVarString(s.Parent.Root)
		} else {
			e.WriteVarUint(parentInfoItemID)
			writeID(e, s.Parent.Item)
		}
		if s.ParentSub != nil {
			e.WriteVarString(*s.ParentSub)
		}
	}
	s.Content.encode(e, 0)
}

func writeID(e *Encoder, id ID) {
	e.WriteVarUint(id.Client)
	e.WriteVarUint(id.Clock)
}

func readID(d *Decoder) (*ID, error) {
	client, err := d.ReadVarUint()
	if err != nil {
		return nil, err
	}
	clock, err := d.ReadVarUint()
	return d.slabs.id(client, clock), err
}

// readStruct reads one struct and refuses one that takes no ticks.
func readStruct(d *Decoder) (Struct, error) {
	info, err := d.ReadUint8()
	if err != nil {
		return nil, err
	}
	var s Struct
	switch ref := info & infoRefMask; {
	case info == infoGC || info == infoSkip:
		n, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		s = d.slabs.gc(n)
		if info == infoSkip {
			s = &Skip{Length: n}
		}
	case ref >= contentRefFirst && ref <= contentRefLast:
		if s, err = readItem(d, info); err != nil {
			return nil, err
		}
	default:
		return nil, d.fail("unknown struct info %#x", info)
	}
	if s.Len() == 0 {
		return nil, d.fail("struct of length 0")
	}
	return s, nil
}

func readItem(d *Decoder, info byte) (*Item, error) {
	it := d.slabs.item()
	var err error
	if info&infoOrigin != 0 {
		if it.Origin, err = readID(d); err != nil {
			return nil, err
		}
	}
	if info&infoRightOrigin != 0 {
		if it.RightOrigin, err = readID(d); err != nil {
			return nil, err
		}
	}
	if it.Origin != nil || it.RightOrigin != nil {
		it.ParentSubBit = info&infoParentSub != 0
	} else if err = it.readParent(d, info&infoParentSub != 0); err != nil {
		return nil, err
	}
	it.Content, err = readContent(d, info&infoRefMask)
	return it, err
}

func (it *Item) readParent(d *Decoder, hasSub bool) error {
	kind, err := d.ReadVarUint()
	if err != nil {
		return err
	}
	p := &Parent{}
	switch kind {
	case parentInfoRoot:
		p.IsRoot = true
		p.Root, err = d.ReadVarString()
	case parentInfoItemID:
		var id *ID
		if id, err = readID(d); err == nil {
			p.Item = *id
		}
	default:
		return d.fail("unknown parent info %d", kind)
	}
	if err != nil {
		return err
	}
	it.Parent = p
	if hasSub {
		sub, err := d.ReadVarString()
		if err != nil {
			return err
		}
		it.ParentSub = &sub
	}
	return nil
}

// sliceStruct returns s without its first offset ticks, 0 < offset < s.Len(),
// as yjs writes it: a sliced item's origin is the tick before the slice, and
// it keeps its right origin. id is the ID of s's first tick.
func sliceStruct(s Struct, id ID, offset uint64) Struct {
	switch s := s.(type) {
	case *GC:
		return &GC{Length: s.Length - offset}
	case *Skip:
		return &Skip{Length: s.Length - offset}
	case *Item:
		return &Item{
			Origin:       &ID{Client: id.Client, Clock: id.Clock + offset - 1},
			RightOrigin:  s.RightOrigin,
			ParentSubBit: s.ParentSub != nil,
			Content:      s.Content.sliceFrom(offset),
		}
	}
	return s
}

// asYjsWrites returns s as yjs writes a struct it decoded: an item with an
// origin loses ParentSubBit. s is not changed.
func asYjsWrites(s Struct) Struct {
	if it, ok := s.(*Item); ok && it.ParentSubBit {
		c := *it
		c.ParentSubBit = false
		return &c
	}
	return s
}
