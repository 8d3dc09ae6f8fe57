package yjs

import "fmt"

// The y-websocket protocol (y-protocols' PROTOCOL.md, sync.js, awareness.js,
// auth.js): every message is binary, a varUint message type first.
const (
	msgSync           = 0 // then a sync type and its payload
	msgAwareness      = 1 // then varUint8Array(awareness update)
	msgAuth           = 2 // then authPermissionDenied and varString(reason)
	msgQueryAwareness = 3 // nothing else: "send me every awareness state"

	syncStep1  = 0 // varUint8Array(state vector): "send me what I lack"
	syncStep2  = 1 // varUint8Array(update): the answer to a step 1
	syncUpdate = 2 // varUint8Array(update): a change

	authPermissionDenied = 0
)

// inbound is a message from a client, parsed.
type inbound struct {
	kind    uint64 // msgSync, msgAwareness or msgQueryAwareness
	sync    uint64 // for msgSync: syncStep1, syncStep2 or syncUpdate
	payload []byte // the state vector, update or awareness update; aliases the message
}

// parseMessage reads a client's message. It refuses, with an error wrapping
// ErrUnsupported, message and sync types a client does not send, and, with
// one wrapping ErrMalformed, truncated messages and bytes after the payload.
func parseMessage(b []byte) (inbound, error) {
	d := NewDecoder(b)
	var m inbound
	var err error
	if m.kind, err = d.ReadVarUint(); err != nil {
		return m, within(err, "message type")
	}
	switch m.kind {
	case msgSync:
		if m.sync, err = d.ReadVarUint(); err != nil {
			return m, within(err, "sync message type")
		}
		if m.sync > syncUpdate {
			return m, fmt.Errorf("%w: sync message type %d (a client sends 0, 1 or 2)", ErrUnsupported, m.sync)
		}
		m.payload, err = d.ReadVarBytes()
	case msgAwareness:
		m.payload, err = d.ReadVarBytes()
	case msgQueryAwareness:
	case msgAuth:
		return m, fmt.Errorf("%w: an auth message (only servers send them)", ErrUnsupported)
	default:
		return m, fmt.Errorf("%w: message type %d (a client sends 0, 1 or 3)", ErrUnsupported, m.kind)
	}
	if err != nil {
		return m, within(err, "%s message", kindName(m.kind))
	}
	if d.Remaining() > 0 {
		return m, within(d.fail("%d bytes after the payload", d.Remaining()), "%s message", kindName(m.kind))
	}
	return m, nil
}

func kindName(kind uint64) string {
	switch kind {
	case msgSync:
		return "sync"
	case msgAwareness:
		return "awareness"
	}
	return "query-awareness"
}

// syncMessage returns the sync message of type sub carrying payload.
func syncMessage(sub byte, payload []byte) []byte {
	e := &Encoder{buf: make([]byte, 0, len(payload)+8)}
	e.WriteUint8(msgSync)
	e.WriteUint8(sub)
	e.WriteVarBytes(payload)
	return e.Bytes()
}

// awarenessMessage returns the awareness message carrying an encoded
// awareness update.
func awarenessMessage(update []byte) []byte {
	e := &Encoder{buf: make([]byte, 0, len(update)+6)}
	e.WriteUint8(msgAwareness)
	e.WriteVarBytes(update)
	return e.Bytes()
}

// permissionDenied returns the auth message that tells a client it may not
// do what it tried, and why (y-websocket's provider logs the reason).
func permissionDenied(reason string) []byte {
	e := &Encoder{}
	e.WriteUint8(msgAuth)
	e.WriteUint8(authPermissionDenied)
	e.WriteVarString(reason)
	return e.Bytes()
}
