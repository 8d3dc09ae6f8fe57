package yjs

import "math"

// MaxAnyDepth is how deeply arrays and objects may nest in an Any value that
// Decoder.ReadAny accepts. Deeper input is refused with ErrMalformed.
const MaxAnyDepth = 128

// AnyKind says which lib0 "any" encoding an Any value uses. The zero value is
// invalid.
type AnyKind uint8

// The kinds of Any, each with its lib0 tag byte in the comment.
const (
	AnyUndefined AnyKind = iota + 1 // 127
	AnyNull                         // 126
	AnyInteger                      // 125: varInt, in Number
	AnyFloat32                      // 124: in Float32
	AnyFloat64                      // 123: in Number
	AnyBigInt                       // 122: 64-bit signed, in BigInt
	AnyBool                         // 121 false, 120 true: in Bool
	AnyString                       // 119: in String
	AnyObject                       // 118: in Object, keys in encoded order
	AnyArray                        // 117: in Array
	AnyBytes                        // 116: in Bytes
)

// Any is a value in lib0's "any" encoding, used by ContentAny (array and map
// values), ContentDoc's options and awareness-free parts of the sync protocol.
// It keeps what the encoding says exactly, so that encoding a decoded Any
// gives back the same bytes: object keys stay in order, floats keep their bits
// (NaN payloads too) and an integer keeps its sign even when it is zero.
// Only the field that Kind names is meaningful.
type Any struct {
	Kind    AnyKind
	Bool    bool
	Number  float64 // AnyInteger (an integer of magnitude at most MaxSafeInteger) or AnyFloat64
	Float32 float32
	BigInt  int64
	String  string
	Bytes   []byte
	Array   []Any
	Object  []AnyField
}

// AnyField is one key and value of an AnyObject.
type AnyField struct {
	Key   string
	Value Any
}

// tag bytes of the lib0 any encoding, indexed by AnyKind.
var anyTags = [...]byte{AnyUndefined: 127, AnyNull: 126, AnyInteger: 125, AnyFloat32: 124,
	AnyFloat64: 123, AnyBigInt: 122, AnyString: 119, AnyObject: 118, AnyArray: 117, AnyBytes: 116}

// WriteAny appends a in lib0's any encoding. A value whose Kind is not one of
// the AnyKind constants is written as undefined.
func (e *Encoder) WriteAny(a Any) {
	switch a.Kind {
	case AnyBool:
		if a.Bool {
			e.WriteUint8(120)
		} else {
			e.WriteUint8(121)
		}
		return
	case AnyInteger, AnyFloat32, AnyFloat64, AnyBigInt, AnyString, AnyObject, AnyArray, AnyBytes, AnyNull:
		e.WriteUint8(anyTags[a.Kind])
	default:
		e.WriteUint8(127)
		return
	}
	switch a.Kind {
	case AnyInteger:
		e.writeVarIntSign(math.Signbit(a.Number), uint64(math.Abs(a.Number)))
	case AnyFloat32:
		e.writeFloat32(a.Float32)
	case AnyFloat64:
		e.writeUint64(math.Float64bits(a.Number))
	case AnyBigInt:
		e.writeUint64(uint64(a.BigInt))
	case AnyString:
		e.WriteVarString(a.String)
	case AnyObject:
		e.WriteVarUint(uint64(len(a.Object)))
		for _, f := range a.Object {
			e.WriteVarString(f.Key)
			e.WriteAny(f.Value)
		}
	case AnyArray:
		e.WriteVarUint(uint64(len(a.Array)))
		for _, v := range a.Array {
			e.WriteAny(v)
		}
	case AnyBytes:
		e.WriteVarBytes(a.Bytes)
	}
}

// ReadAny reads a value in lib0's any encoding. Bytes and strings in the
// result are copies; nesting deeper than MaxAnyDepth is refused.
func (d *Decoder) ReadAny() (Any, error) {
	return d.readAny(0)
}

func (d *Decoder) readAny(depth int) (Any, error) {
	tag, err := d.ReadUint8()
	if err != nil {
		return Any{}, err
	}
	switch tag {
	case 127:
		return Any{Kind: AnyUndefined}, nil
	case 126:
		return Any{Kind: AnyNull}, nil
	case 125:
		neg, mag, err := d.readVarIntSign()
		n := float64(mag)
		if neg {
			n = -n
		}
		return Any{Kind: AnyInteger, Number: n}, err
	case 124:
		f, err := d.readFloat32()
		return Any{Kind: AnyFloat32, Float32: f}, err
	case 123:
		bits, err := d.readUint64()
		return Any{Kind: AnyFloat64, Number: math.Float64frombits(bits)}, err
	case 122:
		bits, err := d.readUint64()
		return Any{Kind: AnyBigInt, BigInt: int64(bits)}, err
	case 121, 120:
		return Any{Kind: AnyBool, Bool: tag == 120}, nil
	case 119:
		s, err := d.ReadVarString()
		return Any{Kind: AnyString, String: s}, err
	case 116:
		b, err := d.ReadVarBytes()
		return Any{Kind: AnyBytes, Bytes: append([]byte{}, b...)}, err
	case 118, 117:
		if depth >= MaxAnyDepth {
			return Any{}, d.fail("any value nested deeper than %d", MaxAnyDepth)
		}
		if tag == 118 {
			return d.readAnyObject(depth + 1)
		}
		return d.readAnyArray(depth + 1)
	}
	return Any{}, d.fail("unknown any tag %d", tag)
}

func (d *Decoder) readAnyObject(depth int) (Any, error) {
	fields, err := readList(d, "object size", 2, func() (f AnyField, err error) {
		if f.Key, err = d.ReadVarString(); err != nil {
			return f, err
		}
		f.Value, err = d.readAny(depth)
		return f, err
	})
	return Any{Kind: AnyObject, Object: fields}, err
}

func (d *Decoder) readAnyArray(depth int) (Any, error) {
	values, err := readList(d, "array length", 1, func() (Any, error) { return d.readAny(depth) })
	return Any{Kind: AnyArray, Array: values}, err
}

// readList reads a varUint count, refused if the bytes left cannot hold that
// many elements of at least minSize bytes, then the elements.
func readList[T any](d *Decoder, what string, minSize int, read func() (T, error)) ([]T, error) {
	n, err := d.readLen(what, minSize)
	if err != nil {
		return nil, err
	}
	list := make([]T, n)
	for i := range list {
		if list[i], err = read(); err != nil {
			return nil, err
		}
	}
	return list, nil
}
