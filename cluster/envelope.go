package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"party"
)

// The messages nodes send each other on their subjects, Prefix.node.<name>.
// Each is one NATS message: a kind byte, then the header fields (the room's
// owner token, party, room, sending node, connection sequence), then the
// kind's payload, the rest of the message.
//
// A connection is named on the wire by the holding node's name and a
// sequence number that node gave it (seq), not by its id: a client that
// reconnects with the same id is a new connection while its old socket is
// still being closed.
type kind byte

const (
	// From the node holding a client to the room's owner.
	kindJoin   kind = iota + 1 // payload: joinRequest, JSON
	kindText                   // payload: the message
	kindBinary                 // payload: the message
	kindLeave                  // payload: closeStatus
	kindFetch                  // payload: an HTTP/1.1 request; answered on the reply subject

	// From the owner to the node holding clients of its room.
	kindJoined          // the connection is a member: broadcasts after this reach it
	kindRefused         // payload: closeStatus (status: an HTTP status)
	kindSendText        // payload: the message
	kindSendBinary      // payload: the message
	kindBroadcastText   // payload: uvarint count, that many ids (uvarint length, bytes), the message
	kindBroadcastBinary // as kindBroadcastText
	kindClose           // payload: closeStatus
	kindCredit          // payload: uvarint count of the connection's messages handled so far
	kindGone            // the room is no longer run by its sender (seq 0)

	// From any node to the room's owner.
	kindBroadcast // payload: a byte (1: binary), then as kindBroadcastText; the owner broadcasts it

	// From the node holding clients to the room's owner.
	kindCongested   // payload: uvarint count, that many connection seqs: those congested now (none: all clear)
	kindCreditQuery // how many of the connection's messages are handled? (answered with kindCredit)

	lastKind = kindCreditQuery
)

var kindNames = [...]string{"", "join", "text", "binary", "leave", "fetch", "joined", "refused", "send-text", "send-binary",
	"broadcast-text", "broadcast-binary", "close", "credit", "gone", "broadcast", "congested", "credit-query"}

func (k kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// envelope is one decoded message.
type envelope struct {
	kind    kind
	token   uint64 // the owner's lease token for the room (0 if not known)
	party   string
	room    string
	from    string // the sending node
	seq     uint64 // the connection on the holding node; 0 for the room
	payload []byte
}

var errMalformed = errors.New("cluster: malformed node message")

// header returns e's kind and header fields, in a buffer with room for n
// more bytes (its payload).
func (e *envelope) header(n int) []byte {
	buf := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(e.party)+len(e.room)+len(e.from)+6+n)
	buf = append(buf, byte(e.kind))
	buf = binary.AppendUvarint(buf, e.token)
	buf = appendString(buf, e.party)
	buf = appendString(buf, e.room)
	buf = appendString(buf, e.from)
	buf = binary.AppendUvarint(buf, e.seq)
	return buf
}

func (e *envelope) encode() []byte { return append(e.header(len(e.payload)), e.payload...) }

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// decode reads a message; the payload aliases data.
func decode(data []byte) (envelope, error) {
	var e envelope
	if len(data) == 0 {
		return e, errMalformed
	}
	e.kind = kind(data[0])
	if e.kind == 0 || e.kind > lastKind {
		return e, fmt.Errorf("%w: unknown kind %d", errMalformed, data[0])
	}
	r := reader{data[1:], nil}
	e.token = r.uvarint()
	e.party = r.string()
	e.room = r.string()
	e.from = r.string()
	e.seq = r.uvarint()
	if r.err != nil {
		return e, r.err
	}
	e.payload = r.b
	return e, nil
}

// reader reads the fields of a message, keeping the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errMalformed
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errMalformed
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.bytes()) }

// closeStatus is the payload of leave, refused and close: a code (a
// WebSocket close code, or an HTTP status for refused) and a reason.
func closeStatus(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func readCloseStatus(p []byte) (int, string, error) {
	if len(p) < 2 {
		return 0, "", errMalformed
	}
	return int(binary.BigEndian.Uint16(p)), string(p[2:]), nil
}

// broadcastPayload is the payload of a broadcast: its exclusions, then msg.
func broadcastPayload(without []string, msg []byte) (head []byte) {
	n := binary.MaxVarintLen64
	for _, id := range without {
		n += binary.MaxVarintLen64 + len(id)
	}
	head = make([]byte, 0, n)
	head = binary.AppendUvarint(head, uint64(len(without)))
	for _, id := range without {
		head = appendString(head, id)
	}
	return head
}

// broadcastRequest is the payload of kindBroadcast, but for msg's bytes.
func broadcastRequest(msg party.Message, without []string) []byte {
	flag := byte(0)
	if msg.IsBinary() {
		flag = 1
	}
	return append([]byte{flag}, broadcastPayload(without, nil)...)
}

func readBroadcast(p []byte) (without []string, msg []byte, err error) {
	r := reader{p, nil}
	n := r.uvarint()
	if n > uint64(len(p)) {
		return nil, nil, errMalformed
	}
	if n > 0 {
		without = make([]string, 0, n)
	}
	for range n {
		without = append(without, r.string())
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	return without, r.b, nil
}
