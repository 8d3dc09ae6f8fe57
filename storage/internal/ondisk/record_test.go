package ondisk

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
)

// sampleOps are operations of every shape: empty and binary keys and values,
// a Delete, a value long enough for a multi-byte uvarint length.
func sampleOps() []Op {
	return []Op{
		{Key: "k", Value: []byte("v")},
		{Key: "", Value: []byte{}},
		{Delete: true, Key: "gone"},
		{Key: "\x00\xff", Value: []byte{0, 1, 2, 0xff}},
		{Key: strings.Repeat("K", 300), Value: bytes.Repeat([]byte("0123456789"), 2000)},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	ops := sampleOps()
	rec := NewRecord(nil)
	for _, op := range ops {
		rec = AppendOp(rec, op)
	}
	rec = Seal(rec)
	n, ok := payloadLen(rec, int64(len(rec)-HeaderLen))
	if !ok || n != int64(len(rec)-HeaderLen) {
		t.Fatalf("header announces %d bytes (ok %v), want %d", n, ok, len(rec)-HeaderLen)
	}
	if !sumOK(rec[:HeaderLen], rec[HeaderLen:]) {
		t.Fatal("the CRC of a sealed record does not match")
	}
	got, err := DecodeOps(rec[HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ops) {
		t.Fatalf("DecodeOps = %+v, want %+v", got, ops)
	}
	// Decoded values are copies: the payload may be reused.
	clear(rec)
	if !reflect.DeepEqual(got, ops) {
		t.Fatal("decoded values share the payload's memory")
	}
	// A record reused for the next write starts empty.
	if rec := NewRecord(rec); len(rec) != HeaderLen {
		t.Errorf("NewRecord of a used buffer has %d bytes, want %d", len(rec), HeaderLen)
	}
}

// TestRecordBytes pins the format: files written before must stay readable.
func TestRecordBytes(t *testing.T) {
	rec := Seal(AppendOp(AppendOp(NewRecord(nil), Op{Key: "k", Value: []byte("v")}), Op{Delete: true, Key: "x"}))
	payload := []byte{'P', 1, 'k', 1, 'v', 'D', 1, 'x'}
	want := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	table := crc32.MakeTable(crc32.Castagnoli)
	want = binary.LittleEndian.AppendUint32(want, crc32.Checksum(append(bytes.Clone(want), payload...), table))
	want = append(want, payload...)
	if !bytes.Equal(rec, want) {
		t.Errorf("record = % x\nwant     % x", rec, want)
	}
}

func TestDecodeOpsRejects(t *testing.T) {
	for _, p := range []string{
		"X\x01k",       // unknown operation
		"P",            // no key length
		"P\x05key",     // key cut short
		"P\x01k",       // no value length
		"P\x01k\x03va", // value cut short
		"D\x01kP",      // second operation cut short
		"P\x01k\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", // length overflows
	} {
		if ops, err := DecodeOps([]byte(p)); err == nil {
			t.Errorf("DecodeOps(%q) = %+v, want an error", p, ops)
		}
	}
}
