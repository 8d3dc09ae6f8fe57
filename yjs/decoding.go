package yjs

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// Decoder reads lib0 encodings from a byte slice. Every read returns an error
// wrapping ErrMalformed, never panics, on truncated input, on a number above
// MaxSafeInteger, on an overlong number (one lib0 would write shorter), on a
// length larger than the bytes left and on a string that is not UTF-8. After an
// error the Decoder's position is unspecified. A Decoder is not safe for
// concurrent use.
type Decoder struct {
	buf []byte
	pos int
	// text, when set, is string(buf): strings are cut from it instead of
	// each being copied.
	text string
	// slabs, when set, allocates the structs of an update.
	slabs *structSlabs
}

// NewDecoder returns a Decoder reading b from its start. The Decoder does not
// copy b; b must not change while it is read.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Offset returns the number of bytes read so far.
func (d *Decoder) Offset() int { return d.pos }

// Remaining returns the number of bytes not read yet.
func (d *Decoder) Remaining() int { return len(d.buf) - d.pos }

// fail returns an error wrapping ErrMalformed that names the current offset.
func (d *Decoder) fail(format string, args ...any) error {
	return &decodeError{offset: d.pos, reason: fmt.Sprintf(format, args...)}
}

// ReadUint8 reads one byte.
func (d *Decoder) ReadUint8() (byte, error) {
	if d.pos >= len(d.buf) {
		return 0, d.fail("truncated: a byte is missing")
	}
	b := d.buf[d.pos]
	d.pos++
	return b, nil
}

// ReadVarUint reads a lib0 varUint of at most MaxSafeInteger.
func (d *Decoder) ReadVarUint() (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if d.pos >= len(d.buf) {
			return 0, d.fail("truncated varUint")
		}
		b := d.buf[d.pos]
		d.pos++
		if shift == 49 && b > 0x0f { // 49 + 4 bits = 53, and no continuation
			return 0, d.fail("varUint above 2^53-1")
		}
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			if b == 0 && shift > 0 {
				return 0, d.fail("overlong varUint")
			}
			return v, nil
		}
	}
}

// ReadVarInt reads a lib0 varInt whose magnitude is at most MaxSafeInteger.
// Negative zero reads as 0.
func (d *Decoder) ReadVarInt() (int64, error) {
	neg, mag, err := d.readVarIntSign()
	if neg {
		return -int64(mag), err
	}
	return int64(mag), err
}

// readVarIntSign reads a varInt as its sign and magnitude.
func (d *Decoder) readVarIntSign() (negative bool, mag uint64, err error) {
	first, err := d.ReadUint8()
	if err != nil {
		return false, 0, err
	}
	negative = first&0x40 != 0
	mag = uint64(first & 0x3f)
	if first < 0x80 {
		return negative, mag, nil
	}
	for shift := uint(6); ; shift += 7 {
		if d.pos >= len(d.buf) {
			return false, 0, d.fail("truncated varInt")
		}
		b := d.buf[d.pos]
		d.pos++
		if shift == 48 && b > 0x1f { // 48 + 5 bits = 53, and no continuation
			return false, 0, d.fail("varInt magnitude above 2^53-1")
		}
		mag |= uint64(b&0x7f) << shift
		if b < 0x80 {
			if b == 0 {
				return false, 0, d.fail("overlong varInt")
			}
			return negative, mag, nil
		}
	}
}

// readLen reads a varUint that counts things of at least minSize bytes each
// still to come, and refuses a count the remaining bytes cannot hold.
func (d *Decoder) readLen(what string, minSize int) (int, error) {
	start := d.pos
	n, err := d.ReadVarUint()
	if err != nil {
		return 0, err
	}
	if left := d.Remaining(); n > uint64(left/minSize) {
		d.pos = start
		return 0, d.fail("%s %d exceeds what the %d bytes after it can hold", what, n, left)
	}
	return int(n), nil
}

// ReadRaw reads the next n bytes. The slice aliases the Decoder's input.
func (d *Decoder) ReadRaw(n int) ([]byte, error) {
	if n < 0 || n > d.Remaining() {
		return nil, d.fail("truncated: %d bytes wanted, %d left", n, d.Remaining())
	}
	b := d.buf[d.pos : d.pos+n : d.pos+n]
	d.pos += n
	return b, nil
}

// ReadVarBytes reads a lib0 varUint8Array. The slice aliases the Decoder's
// input; copy it to keep it beyond the input's life.
func (d *Decoder) ReadVarBytes() ([]byte, error) {
	n, err := d.readLen("byte length", 1)
	if err != nil {
		return nil, err
	}
	return d.ReadRaw(n)
}

// ReadVarString reads a lib0 varString, which must be valid UTF-8 (yjs's
// decoder is fatal on anything else, surrogate halves included).
func (d *Decoder) ReadVarString() (string, error) {
	b, err := d.ReadVarBytes()
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", d.fail("string of %d bytes is not valid UTF-8", len(b))
	}
	if d.text != "" {
		return d.text[d.pos-len(b) : d.pos], nil
	}
	return string(b), nil
}

// readFloat32 reads 4 big-endian bytes as an IEEE 754 float, bits preserved.
func (d *Decoder) readFloat32() (float32, error) {
	b, err := d.ReadRaw(4)
	if err != nil {
		return 0, err
	}
	return math.Float32frombits(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])), nil
}

// readUint64 reads 8 big-endian bytes.
func (d *Decoder) readUint64() (uint64, error) {
	b, err := d.ReadRaw(8)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}
