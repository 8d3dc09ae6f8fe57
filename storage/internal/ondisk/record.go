package ondisk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

const (
	// HeaderLen is the length of a record's header: the payload's length
	// and the CRC-32C.
	HeaderLen = 8
	// MaxRecord bounds a record's payload: a storage.Batch of MaxBatchLen
	// (64 MiB), or one key of MaxKeyLen (2048 bytes) and its value, with
	// their framing. A longer length in a header is damage.
	MaxRecord = 64<<20 + 2048 + 64

	opPut    = 'P'
	opDelete = 'D'
)

// Op is one operation of a record: a Put of Value under Key, or, if Delete,
// a Delete of Key (Value is then ignored).
type Op struct {
	Delete bool
	Key    string
	Value  []byte
}

// NewRecord returns buf emptied, with room for a record's header: append
// operations to it with [AppendOp], then [Seal] it.
func NewRecord(buf []byte) []byte {
	return append(buf[:0], make([]byte, HeaderLen)...)
}

// AppendOp encodes op onto rec, a record from [NewRecord], and returns the
// extended record.
func AppendOp(rec []byte, op Op) []byte {
	if op.Delete {
		rec = append(rec, opDelete)
	} else {
		rec = append(rec, opPut)
	}
	rec = binary.AppendUvarint(rec, uint64(len(op.Key)))
	rec = append(rec, op.Key...)
	if !op.Delete {
		rec = binary.AppendUvarint(rec, uint64(len(op.Value)))
		rec = append(rec, op.Value...)
	}
	return rec
}

// Seal fills in the header of rec, a record from [NewRecord] holding at least
// one operation, and returns rec, ready to be written.
func Seal(rec []byte) []byte {
	binary.LittleEndian.PutUint32(rec[0:4], uint32(len(rec)-HeaderLen))
	binary.LittleEndian.PutUint32(rec[4:8], recordCRC(rec[0:4], rec[HeaderLen:]))
	return rec
}

// payloadLen returns the payload length a record header announces, and
// whether it is possible with at most room bytes left after the header.
func payloadLen(hdr []byte, room int64) (int64, bool) {
	n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
	return n, n > 0 && n <= MaxRecord && n <= room
}

// sumOK reports whether the CRC of a record's header matches its payload.
func sumOK(hdr, payload []byte) bool {
	return recordCRC(hdr[0:4], payload) == binary.LittleEndian.Uint32(hdr[4:8])
}

func recordCRC(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, crcTable), crcTable, payload)
}

// DecodeOps parses a record's payload into its operations. The values are
// copies: payload may be reused. It fails if payload holds anything but whole
// operations.
func DecodeOps(payload []byte) ([]Op, error) {
	var ops []Op
	p := payload
	next := func() ([]byte, error) {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return nil, errors.New("bad length")
		}
		b := p[k : k+int(n)]
		p = p[k+int(n):]
		return b, nil
	}
	for len(p) > 0 {
		kind := p[0]
		p = p[1:]
		if kind != opPut && kind != opDelete {
			return nil, fmt.Errorf("unknown operation %q", kind)
		}
		key, err := next()
		if err != nil {
			return nil, err
		}
		op := Op{Delete: kind == opDelete, Key: string(key)}
		if !op.Delete {
			v, err := next()
			if err != nil {
				return nil, err
			}
			op.Value = append([]byte{}, v...)
		}
		ops = append(ops, op)
	}
	return ops, nil
}
