package yjs

import (
	"encoding/json"
	"unicode/utf8"
)

// Content is what an Item holds: one of *ContentDeleted, *ContentJSON,
// *ContentBinary, *ContentString, *ContentEmbed, *ContentFormat,
// *ContentType, *ContentAny or *ContentDoc. Other packages cannot add kinds.
type Content interface {
	// Len returns how many clock ticks the content takes: elements for
	// arrays of values, UTF-16 code units for strings, 1 for the rest.
	Len() uint64
	// ref returns the content's number in the low 5 bits of an Item's info.
	ref() byte
	// encode writes the content without its first offset ticks.
	encode(e *Encoder, offset uint64)
	// sliceFrom returns the content without its first offset ticks, 0 <
	// offset < Len(); only kinds longer than 1 tick are ever sliced.
	sliceFrom(offset uint64) Content
}

// ContentDeleted stands for Length ticks of deleted content whose values were
// collected.
type ContentDeleted struct{ Length uint64 }

// ContentJSON is an array of values in yjs's old JSON form (Y.Array and Y.Map
// values written by yjs before 13). Each value is JSON text, or "undefined".
type ContentJSON struct{ Values []string }

// ContentBinary is one Uint8Array value of a Y.Array or Y.Map.
type ContentBinary struct{ Data []byte }

// ContentString is text of a Y.Text or Y.XmlText. It is valid UTF-8; its
// length in clock ticks is its length in UTF-16 code units, as in JavaScript.
type ContentString struct{ Text string }

// ContentEmbed is an embed of a Y.Text (insertEmbed), as JSON text.
type ContentEmbed struct{ JSON string }

// ContentFormat starts (or, with the value null, ends) a formatting attribute
// of a Y.Text. It takes one tick and no place in the text.
type ContentFormat struct {
	Key  string
	JSON string // the attribute's value as JSON text
}

// ContentType creates a shared type nested in its parent.
type ContentType struct {
	Ref  TypeRef
	Name string // the node name of a TypeXmlElement, the hook name of a TypeXmlHook; empty otherwise
}

// ContentAny is an array of values of a Y.Array, or the value of a Y.Map entry.
type ContentAny struct{ Values []Any }

// ContentDoc is a subdocument: its guid and its options (an AnyObject, such as
// {gc: false} or {autoLoad: true} or {meta: …}).
type ContentDoc struct {
	GUID string
	Opts Any
}

// TypeRef names the kind of a shared type in a ContentType. The zero value is
// invalid.
type TypeRef uint8

// The shared types, in the order of yjs's type refs (on the wire, TypeArray is
// 0).
const (
	TypeArray TypeRef = iota + 1
	TypeMap
	TypeText
	TypeXmlElement
	TypeXmlFragment
	TypeXmlHook
	TypeXmlText
)

// String returns the yjs class name of t, such as "YArray".
func (t TypeRef) String() string {
	names := [...]string{"invalid", "YArray", "YMap", "YText", "YXmlElement", "YXmlFragment", "YXmlHook", "YXmlText"}
	if int(t) < len(names) {
		return names[t]
	}
	return names[0]
}

// Len returns Length.
func (c *ContentDeleted) Len() uint64 { return c.Length }

// Len returns the number of values.
func (c *ContentJSON) Len() uint64 { return uint64(len(c.Values)) }

// Len returns 1.
func (c *ContentBinary) Len() uint64 { return 1 }

// Len returns the length of Text in UTF-16 code units.
func (c *ContentString) Len() uint64 { return utf16Len(c.Text) }

// Len returns 1.
func (c *ContentEmbed) Len() uint64 { return 1 }

// Len returns 1.
func (c *ContentFormat) Len() uint64 { return 1 }

// Len returns 1.
func (c *ContentType) Len() uint64 { return 1 }

// Len returns the number of values.
func (c *ContentAny) Len() uint64 { return uint64(len(c.Values)) }

// Len returns 1.
func (c *ContentDoc) Len() uint64 { return 1 }

func (c *ContentDeleted) ref() byte { return 1 }
func (c *ContentJSON) ref() byte    { return 2 }
func (c *ContentBinary) ref() byte  { return 3 }
func (c *ContentString) ref() byte  { return 4 }
func (c *ContentEmbed) ref() byte   { return 5 }
func (c *ContentFormat) ref() byte  { return 6 }
func (c *ContentType) ref() byte    { return 7 }
func (c *ContentAny) ref() byte     { return 8 }
func (c *ContentDoc) ref() byte     { return 9 }

func (c *ContentDeleted) encode(e *Encoder, offset uint64) { e.WriteVarUint(c.Length - offset) }

func (c *ContentJSON) encode(e *Encoder, offset uint64) {
	e.WriteVarUint(uint64(len(c.Values)) - offset)
	for _, v := range c.Values[offset:] {
		e.WriteVarString(v)
	}
}

func (c *ContentBinary) encode(e *Encoder, _ uint64) { e.WriteVarBytes(c.Data) }

func (c *ContentString) encode(e *Encoder, offset uint64) {
	if offset == 0 {
		e.WriteVarString(c.Text)
		return
	}
	e.WriteVarString(utf16SliceFrom(c.Text, offset))
}

func (c *ContentEmbed) encode(e *Encoder, _ uint64) { e.WriteVarString(c.JSON) }

func (c *ContentFormat) encode(e *Encoder, _ uint64) {
	e.WriteVarString(c.Key)
	e.WriteVarString(c.JSON)
}

func (c *ContentType) encode(e *Encoder, _ uint64) {
	e.WriteVarUint(uint64(c.Ref) - 1)
	if c.Ref == TypeXmlElement || c.Ref == TypeXmlHook {
		e.WriteVarString(c.Name)
	}
}

func (c *ContentAny) encode(e *Encoder, offset uint64) {
	e.WriteVarUint(uint64(len(c.Values)) - offset)
	for _, v := range c.Values[offset:] {
		e.WriteAny(v)
	}
}

func (c *ContentDoc) encode(e *Encoder, _ uint64) {
	e.WriteVarString(c.GUID)
	e.WriteAny(c.Opts)
}

func (c *ContentDeleted) sliceFrom(offset uint64) Content {
	return &ContentDeleted{Length: c.Length - offset}
}
func (c *ContentJSON) sliceFrom(offset uint64) Content {
	return &ContentJSON{Values: c.Values[offset:]}
}
func (c *ContentString) sliceFrom(offset uint64) Content {
	return &ContentString{Text: utf16SliceFrom(c.Text, offset)}
}
func (c *ContentAny) sliceFrom(offset uint64) Content { return &ContentAny{Values: c.Values[offset:]} }

// The kinds one tick long are never sliced: an offset into them is 0.
func (c *ContentBinary) sliceFrom(uint64) Content { return c }
func (c *ContentEmbed) sliceFrom(uint64) Content  { return c }
func (c *ContentFormat) sliceFrom(uint64) Content { return c }
func (c *ContentType) sliceFrom(uint64) Content   { return c }
func (c *ContentDoc) sliceFrom(uint64) Content    { return c }

// readContent reads the content whose ref is the low 5 bits of an Item's info.
func readContent(d *Decoder, ref byte) (Content, error) {
	switch ref {
	case 1:
		n, err := d.ReadVarUint()
		return d.slabs.contentDeleted(n), err
	case 2:
		return readContentJSON(d)
	case 3:
		b, err := d.ReadVarBytes()
		return &ContentBinary{Data: append([]byte{}, b...)}, err
	case 4:
		s, err := d.ReadVarString()
		return d.slabs.contentString(s), err
	case 5:
		s, err := readJSONText(d)
		return &ContentEmbed{JSON: s}, err
	case 6:
		return readContentFormat(d)
	case 7:
		return readContentType(d)
	case 8:
		return readContentAny(d)
	case 9:
		return readContentDoc(d)
	}
	return nil, d.fail("unknown content ref %d", ref)
}

// readJSONText reads a varString that must be JSON text, as yjs parses it.
func readJSONText(d *Decoder) (string, error) {
	s, err := d.ReadVarString()
	if err == nil && !json.Valid([]byte(s)) {
		return "", d.fail("%.40q is not JSON", s)
	}
	return s, err
}

func readContentJSON(d *Decoder) (Content, error) {
	values, err := readList(d, "JSON value count", 1, func() (string, error) {
		s, err := d.ReadVarString()
		if err == nil && s != "undefined" && !json.Valid([]byte(s)) {
			return "", d.fail("%.40q is not JSON", s)
		}
		return s, err
	})
	return &ContentJSON{Values: values}, err
}

func readContentFormat(d *Decoder) (Content, error) {
	key, err := d.ReadVarString()
	if err != nil {
		return nil, err
	}
	value, err := readJSONText(d)
	return &ContentFormat{Key: key, JSON: value}, err
}

func readContentType(d *Decoder) (Content, error) {
	n, err := d.ReadVarUint()
	if err != nil {
		return nil, err
	}
	if n > uint64(TypeXmlText-1) {
		return nil, d.fail("unknown type ref %d", n)
	}
	c := &ContentType{Ref: TypeRef(n + 1)}
	if c.Ref == TypeXmlElement || c.Ref == TypeXmlHook {
		c.Name, err = d.ReadVarString()
	}
	return c, err
}

func readContentAny(d *Decoder) (Content, error) {
	values, err := readList(d, "value count", 1, d.ReadAny)
	return &ContentAny{Values: values}, err
}

func readContentDoc(d *Decoder) (Content, error) {
	guid, err := d.ReadVarString()
	if err != nil {
		return nil, err
	}
	opts, err := d.ReadAny()
	if err == nil && opts.Kind != AnyObject {
		return nil, d.fail("subdocument options are not an object")
	}
	return &ContentDoc{GUID: guid, Opts: opts}, err
}

// utf16Len returns the length of valid UTF-8 s in UTF-16 code units.
func utf16Len(s string) uint64 {
	n := uint64(0)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c < 0x80:
			i++
		case c < 0xe0:
			i += 2
		case c < 0xf0:
			i += 3
		default: // a 4-byte sequence is a surrogate pair
			i += 4
			n++
		}
		n++
	}
	return n
}

// utf16SliceFrom returns s without its first offset UTF-16 code units. When
// offset falls between the halves of a surrogate pair, the orphaned low half
// becomes U+FFFD, as JavaScript's encoder (and so yjs) writes it.
func utf16SliceFrom(s string, offset uint64) string {
	n := uint64(0)
	for i, r := range s {
		if n == offset {
			return s[i:]
		}
		n++
		if r >= 0x10000 {
			n++
			if n > offset {
				return "\uFFFD" + s[i+utf8.RuneLen(r):]
			}
		}
	}
	return ""
}
