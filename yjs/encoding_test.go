package yjs

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestVarUint(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0}},
		{1, []byte{1}},
		{127, []byte{0x7f}},
		{128, []byte{0x80, 1}},
		{300, []byte{0xac, 2}},
		{1<<32 - 1, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}},
		{MaxSafeInteger, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	} {
		e := &Encoder{}
		e.WriteVarUint(c.v)
		if !bytes.Equal(e.Bytes(), c.want) {
			t.Errorf("WriteVarUint(%d) = %x, want %x", c.v, e.Bytes(), c.want)
		}
		got, err := NewDecoder(c.want).ReadVarUint()
		if err != nil || got != c.v {
			t.Errorf("ReadVarUint(%x) = %d, %v; want %d", c.want, got, err, c.v)
		}
	}
}

func TestVarInt(t *testing.T) {
	for _, c := range []struct {
		v    int64
		want []byte
	}{
		{0, []byte{0}},
		{1, []byte{1}},
		{-1, []byte{0x41}},
		{63, []byte{0x3f}},
		{64, []byte{0x80, 1}},
		{-64, []byte{0xc0, 1}},
		{1<<31 - 1, []byte{0xbf, 0xff, 0xff, 0xff, 0x0f}},
		{-MaxSafeInteger, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f}},
	} {
		e := &Encoder{}
		e.WriteVarInt(c.v)
		if !bytes.Equal(e.Bytes(), c.want) {
			t.Errorf("WriteVarInt(%d) = %x, want %x", c.v, e.Bytes(), c.want)
		}
		got, err := NewDecoder(c.want).ReadVarInt()
		if err != nil || got != c.v {
			t.Errorf("ReadVarInt(%x) = %d, %v; want %d", c.want, got, err, c.v)
		}
	}
}

// Hostile or broken input is an error wrapping ErrMalformed, never a panic.
func TestDecoderRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		read func(d *Decoder) error
	}{
		{"empty varUint", nil, readUint},
		{"truncated varUint", []byte{0x80}, readUint},
		{"overlong varUint", []byte{0x80, 0}, readUint},
		{"varUint above 2^53-1", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10}, readUint},
		{"10-byte varUint", bytes.Repeat([]byte{0xff}, 10), readUint},
		{"truncated varInt", []byte{0x80}, readInt},
		{"overlong varInt", []byte{0x80, 0}, readInt},
		{"varInt above 2^53-1", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x20}, readInt},
		{"length beyond input", []byte{5, 'a'}, readBytes},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, readBytes},
		{"invalid UTF-8", []byte{2, 0xc3, 0x28}, readString},
		{"UTF-8 surrogate half", []byte{3, 0xed, 0xa0, 0x80}, readString},
		{"unknown any tag", []byte{100}, readAny},
		{"truncated float64", []byte{123, 1, 2}, readAny},
		{"object count beyond input", []byte{118, 0x7f}, readAny},
		{"array count beyond input", []byte{117, 0xff, 0xff, 0x03}, readAny},
		{"any nested too deep", append(bytes.Repeat([]byte{117, 1}, MaxAnyDepth+1), 126), readAny},
	} {
		err := c.read(NewDecoder(c.in))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s (%x): %v, want an error wrapping ErrMalformed", c.name, c.in, err)
		}
	}
}

func readUint(d *Decoder) error   { _, err := d.ReadVarUint(); return err }
func readInt(d *Decoder) error    { _, err := d.ReadVarInt(); return err }
func readBytes(d *Decoder) error  { _, err := d.ReadVarBytes(); return err }
func readString(d *Decoder) error { _, err := d.ReadVarString(); return err }
func readAny(d *Decoder) error    { _, err := d.ReadAny(); return err }

// Any values keep their encoding: -0 stays negative, NaN keeps its bits,
// object keys keep their order.
func TestAnyRoundTrip(t *testing.T) {
	nested := Any{Kind: AnyNull}
	for range MaxAnyDepth {
		nested = Any{Kind: AnyArray, Array: []Any{nested}}
	}
	for _, a := range []Any{
		{Kind: AnyUndefined}, {Kind: AnyNull}, {Kind: AnyBool, Bool: true}, {Kind: AnyBool},
		{Kind: AnyInteger, Number: math.Copysign(0, -1)}, {Kind: AnyInteger, Number: -MaxSafeInteger},
		{Kind: AnyFloat32, Float32: math.Float32frombits(0x7fc00001)}, {Kind: AnyFloat64, Number: math.NaN()},
		{Kind: AnyBigInt, BigInt: math.MinInt64}, {Kind: AnyString, String: "ü😀"}, {Kind: AnyBytes, Bytes: []byte{0, 255}},
		{Kind: AnyObject, Object: []AnyField{{"z", Any{Kind: AnyNull}}, {"a", Any{Kind: AnyArray}}}},
		nested,
	} {
		e := &Encoder{}
		e.WriteAny(a)
		d := NewDecoder(e.Bytes())
		back, err := d.ReadAny()
		if err != nil || d.Remaining() != 0 {
			t.Fatalf("ReadAny(WriteAny(%+v)): %v, %d bytes left", a, err, d.Remaining())
		}
		e2 := &Encoder{}
		e2.WriteAny(back)
		if !bytes.Equal(e.Bytes(), e2.Bytes()) {
			t.Errorf("any %x read back and written as %x", e.Bytes(), e2.Bytes())
		}
	}
}

// Clocks count UTF-16 code units, and a slice between the halves of a
// surrogate pair leaves U+FFFD, as yjs writes it.
func TestUTF16(t *testing.T) {
	s := "a😀é中👩‍👧"
	if got := utf16Len(s); got != 1+2+1+1+2+1+2 {
		t.Errorf("utf16Len(%q) = %d, want 10", s, got)
	}
	for _, c := range []struct {
		offset uint64
		want   string
	}{
		{0, s}, {1, "😀é中👩‍👧"}, {2, "\uFFFDé中👩‍👧"}, {3, "é中👩‍👧"}, {6, "\uFFFD\u200d👧"},
		{8, "👧"}, {9, "\uFFFD"}, {10, ""},
	} {
		if got := utf16SliceFrom(s, c.offset); got != c.want {
			t.Errorf("utf16SliceFrom(%q, %d) = %q, want %q", s, c.offset, got, c.want)
		}
		if got, want := (&ContentString{Text: s}).sliceFrom(c.offset).Len(), 10-c.offset; got != want && c.offset > 0 {
			t.Errorf("slice from %d has length %d, want %d", c.offset, got, want)
		}
	}
}

// Updates that yjs could not read, or that would make a merge wrong, are refused.
func TestDecodeUpdateRefuses(t *testing.T) {
	root := func(info byte, content ...byte) []byte { // one client, one item in root "r"
		return append(append([]byte{1, 1, 5, 0, info, 1, 1, 'r'}, content...), 0)
	}
	for _, c := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"no delete set", []byte{0}},
		{"trailing bytes", []byte{0, 0, 0}},
		{"client run without structs", []byte{1, 0, 5, 0, 0}},
		{"GC of length 0", []byte{1, 1, 5, 0, 0, 0, 0}},
		{"GC info with flags", []byte{1, 1, 5, 0, 0x20, 1, 0}},
		{"run starts with a Skip", []byte{1, 1, 5, 0, 10, 1, 0}},
		{"client twice", []byte{2, 1, 5, 0, 0, 1, 1, 5, 1, 0, 1, 0}},
		{"unknown content ref", root(11)},
		{"Skip with flags", root(10 | 0x80)},
		{"parent info 2", []byte{1, 1, 5, 0, 4, 2, 1, 'r', 1, 'x', 0}},
		{"empty string item", root(4, 0)},
		{"string not UTF-8", root(4, 1, 0xff)},
		{"JSON that does not parse", root(2, 1, 1, '{')},
		{"empty any item", root(8, 0)},
		{"unknown type ref", root(7, 7)},
		{"subdocument options not an object", root(9, 1, 'g', 126)},
		{"embed that is not JSON", root(5, 1, 'x')},
		{"clock beyond 2^53-1", []byte{1, 1, 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 1, 0}},
		{"delete range of length 0", []byte{0, 1, 5, 1, 0, 0}},
		{"delete count beyond input", []byte{0, 1, 5, 0x7f}},
		{"client count beyond input", []byte{0xff, 0xff, 0x03}},
	} {
		_, err := DecodeUpdate(c.in)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s (%x): %v, want an error wrapping ErrMalformed", c.name, c.in, err)
		} else if !strings.HasPrefix(err.Error(), "yjs: malformed input: update: ") {
			t.Errorf("%s: error %q does not say it is about an update", c.name, err)
		}
	}
	if _, err := DecodeUpdate(root(4, 1, 'x')); err != nil {
		t.Fatalf("the well-formed update of this test is refused: %v", err)
	}
}

func TestDecodeStateVectorRefuses(t *testing.T) {
	for _, in := range [][]byte{nil, {1, 5}, {1, 5, 1, 0}, {0x7f}} {
		if _, err := DecodeStateVector(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeStateVector(%x): %v, want ErrMalformed", in, err)
		}
	}
	if _, err := DiffUpdate([]byte{0, 0}, []byte{1}); !errors.Is(err, ErrMalformed) {
		t.Errorf("DiffUpdate with a truncated state vector: %v", err)
	}
}

// Validate refuses updates that Encode would not write faithfully.
func TestValidateRefuses(t *testing.T) {
	key, root := "k", &Parent{IsRoot: true, Root: "r"}
	for _, c := range []struct {
		name string
		s    Struct
	}{
		{"nil struct", nil},
		{"nil GC", (*GC)(nil)},
		{"nil content", &Item{Parent: root, Content: (*ContentString)(nil)}},
		{"no parent", &Item{Content: &ContentString{Text: "x"}}},
		{"origin and parent", &Item{Origin: &ID{}, Parent: root, Content: &ContentString{Text: "x"}}},
		{"origin and key", &Item{Origin: &ID{}, ParentSub: &key, Content: &ContentString{Text: "x"}}},
		{"key bit without origin", &Item{Parent: root, ParentSubBit: true, Content: &ContentString{Text: "x"}}},
		{"named array", &Item{Parent: root, Content: &ContentType{Ref: TypeArray, Name: "p"}}},
		{"type ref 0", &Item{Parent: root, Content: &ContentType{}}},
		{"empty string", &Item{Parent: root, Content: &ContentString{}}},
	} {
		u := &Update{Clients: []ClientStructs{{Client: 1, Structs: []Struct{c.s}}}}
		if err := u.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Validate = %v, want ErrMalformed", c.name, err)
		}
	}
}
