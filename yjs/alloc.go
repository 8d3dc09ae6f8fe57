package yjs

// slab hands out pointers into blocks of T, so that decoding an update of n
// structs makes a few dozen allocations of each kind instead of n. A block
// lives as long as any pointer into it.
type slab[T any] struct {
	free []T
	next int // size of the next block
}

func (s *slab[T]) alloc() *T {
	if len(s.free) == 0 {
		s.next = min(max(2*s.next, 16), 1024)
		s.free = make([]T, s.next)
	}
	p := &s.free[0]
	s.free = s.free[1:]
	return p
}

// structSlabs holds the slabs of one update's decoding. A nil *structSlabs
// allocates each value on its own.
type structSlabs struct {
	items   slab[Item]
	ids     slab[ID]
	strings slab[ContentString]
	deleted slab[ContentDeleted]
	gcs     slab[GC]
}

// put returns a pointer to a copy of v in the slab.
func (s *slab[T]) put(v T) *T {
	p := s.alloc()
	*p = v
	return p
}

func (s *structSlabs) item() *Item {
	if s == nil {
		return new(Item)
	}
	return s.items.alloc()
}

func (s *structSlabs) id(client, clock uint64) *ID {
	if s == nil {
		return &ID{Client: client, Clock: clock}
	}
	return s.ids.put(ID{Client: client, Clock: clock})
}

func (s *structSlabs) contentString(text string) *ContentString {
	if s == nil {
		return &ContentString{Text: text}
	}
	return s.strings.put(ContentString{Text: text})
}

func (s *structSlabs) contentDeleted(n uint64) *ContentDeleted {
	if s == nil {
		return &ContentDeleted{Length: n}
	}
	return s.deleted.put(ContentDeleted{Length: n})
}

func (s *structSlabs) gc(n uint64) *GC {
	if s == nil {
		return &GC{Length: n}
	}
	return s.gcs.put(GC{Length: n})
}
