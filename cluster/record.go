package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A room's store is the sequence of messages on its subject. Each message is
// one record: its kind and the writer's fencing token in headers, its
// operations in the body.
const (
	hdrKind  = "Party-Kind"
	hdrToken = "Party-Token"

	kindWrite    = "write"    // operations applied in order, all or none
	kindSnapshot = "snapshot" // the whole state; published with a subject rollup
	kindFence    = "fence"    // no operations: a new owner's token
)

// op is one operation of a record.
type op struct {
	delete bool
	key    string
	value  []byte
}

// Operation tags in a record's body.
const (
	tagPut    = 1
	tagDelete = 2
)

var errBadRecord = errors.New("cluster: malformed storage record")

// encodeOps encodes ops as a record's body: for each, a tag byte, the key's
// length as a uvarint and the key, then for a put the value's length as a
// uvarint and the value.
func encodeOps(ops []op) []byte {
	n := 0
	for _, o := range ops {
		n += 1 + 2*binary.MaxVarintLen64 + len(o.key) + len(o.value)
	}
	b := make([]byte, 0, n)
	for _, o := range ops {
		if o.delete {
			b = append(b, tagDelete)
			b = appendBytes(b, []byte(o.key))
			continue
		}
		b = append(b, tagPut)
		b = appendBytes(b, []byte(o.key))
		b = appendBytes(b, o.value)
	}
	return b
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeOps inverts encodeOps. The values share b's memory.
func decodeOps(b []byte) ([]op, error) {
	var ops []op
	for len(b) > 0 {
		tag := b[0]
		if tag != tagPut && tag != tagDelete {
			return nil, fmt.Errorf("%w: tag %d", errBadRecord, tag)
		}
		key, rest, err := cutBytes(b[1:])
		if err != nil {
			return nil, err
		}
		o := op{delete: tag == tagDelete, key: string(key)}
		if !o.delete {
			if o.value, rest, err = cutBytes(rest); err != nil {
				return nil, err
			}
		}
		ops = append(ops, o)
		b = rest
	}
	return ops, nil
}

func cutBytes(b []byte) (s, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, fmt.Errorf("%w: truncated", errBadRecord)
	}
	return b[k : k+int(n) : k+int(n)], b[k+int(n):], nil
}

// record is one decoded message of a room's subject.
type record struct {
	seq   uint64
	kind  string
	token uint64
	ops   []op
}

// newRecordMsg builds the message of a record for subject.
func newRecordMsg(subject, kind string, token uint64, ops []op) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(hdrKind, kind)
	m.Header.Set(hdrToken, strconv.FormatUint(token, 10))
	if kind == kindSnapshot {
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	}
	m.Data = encodeOps(ops)
	return m
}

// decodeRecord decodes a stored message.
func decodeRecord(seq uint64, h nats.Header, data []byte) (record, error) {
	r := record{seq: seq, kind: h.Get(hdrKind)}
	switch r.kind {
	case kindWrite, kindSnapshot, kindFence:
	default:
		return r, fmt.Errorf("%w: seq %d: kind %q", errBadRecord, seq, r.kind)
	}
	tok, err := strconv.ParseUint(h.Get(hdrToken), 10, 64)
	if err != nil {
		return r, fmt.Errorf("%w: seq %d: token %q", errBadRecord, seq, h.Get(hdrToken))
	}
	r.token = tok
	if r.ops, err = decodeOps(data); err != nil {
		return r, fmt.Errorf("seq %d: %w", seq, err)
	}
	return r, nil
}

// decodeMsg decodes a message delivered by a consumer.
func decodeMsg(m jetstream.Msg) (record, error) {
	meta, err := m.Metadata()
	if err != nil {
		return record{}, err
	}
	return decodeRecord(meta.Sequence.Stream, m.Headers(), m.Data())
}

// applyRecord applies r to x: a snapshot replaces the state.
func applyRecord(x *index, r record) {
	if r.kind == kindSnapshot {
		x.reset()
	}
	x.apply(r.ops)
}
