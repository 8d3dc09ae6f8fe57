package yjs

import "math"

// MaxSafeInteger is the largest integer a lib0 varUint or varInt may hold
// (JavaScript's Number.MAX_SAFE_INTEGER, 2^53-1). Clients, clocks and lengths
// above it are refused by Decoder and never produced by Encoder's callers in
// this package.
const MaxSafeInteger = 1<<53 - 1

// Encoder appends lib0 encodings (the binary format of Yjs updates and of the
// y-protocols sync and awareness messages) to a byte slice. The zero value is
// ready to use. An Encoder is not safe for concurrent use.
type Encoder struct {
	buf []byte
}

// Bytes returns what has been written. The slice aliases the Encoder's buffer
// until the next write.
func (e *Encoder) Bytes() []byte { return e.buf }

// Len returns the number of bytes written.
func (e *Encoder) Len() int { return len(e.buf) }

// WriteUint8 appends one byte.
func (e *Encoder) WriteUint8(b byte) { e.buf = append(e.buf, b) }

// WriteRaw appends b as is, without a length.
func (e *Encoder) WriteRaw(b []byte) { e.buf = append(e.buf, b...) }

// WriteVarUint appends v as a lib0 varUint: 7 bits a byte, low bits first, the
// top bit set on every byte but the last.
func (e *Encoder) WriteVarUint(v uint64) {
	for v > 0x7f {
		e.buf = append(e.buf, 0x80|byte(v&0x7f))
		v >>= 7
	}
	e.buf = append(e.buf, byte(v))
}

// WriteVarInt appends v as a lib0 varInt: the first byte holds a continuation
// bit, the sign (bit 6) and the 6 low bits of the magnitude; further bytes hold
// 7 bits each, as in a varUint.
func (e *Encoder) WriteVarInt(v int64) {
	if v < 0 {
		e.writeVarIntSign(true, uint64(-v))
		return
	}
	e.writeVarIntSign(false, uint64(v))
}

// writeVarIntSign appends a varInt given its sign and magnitude, so that
// negative zero (which lib0 can write) round-trips.
func (e *Encoder) writeVarIntSign(negative bool, mag uint64) {
	first := byte(mag & 0x3f)
	if negative {
		first |= 0x40
	}
	mag >>= 6
	if mag > 0 {
		first |= 0x80
	}
	e.buf = append(e.buf, first)
	for mag > 0 {
		b := byte(mag & 0x7f)
		mag >>= 7
		if mag > 0 {
			b |= 0x80
		}
		e.buf = append(e.buf, b)
	}
}

// WriteVarBytes appends b preceded by its length as a varUint (lib0's
// varUint8Array).
func (e *Encoder) WriteVarBytes(b []byte) {
	e.WriteVarUint(uint64(len(b)))
	e.buf = append(e.buf, b...)
}

// WriteVarString appends s as lib0's varString: its UTF-8 bytes as a
// varUint8Array. s should be valid UTF-8; yjs refuses a string that is not.
func (e *Encoder) WriteVarString(s string) {
	e.WriteVarUint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

// writeFloat32 appends the big-endian IEEE 754 bits of f.
func (e *Encoder) writeFloat32(f float32) {
	b := math.Float32bits(f)
	e.buf = append(e.buf, byte(b>>24), byte(b>>16), byte(b>>8), byte(b))
}

// writeUint64 appends v big-endian.
func (e *Encoder) writeUint64(v uint64) {
	for shift := 56; shift >= 0; shift -= 8 {
		e.buf = append(e.buf, byte(v>>shift))
	}
}
