package party

import (
	"unicode/utf8"

	"party/protocol"
)

// Message is one WebSocket message, text or binary, as the package
// protocol defines it (the Go client, party/partysocket, shares it). The two
// kinds are kept apart: a text message received is forwarded as text, a
// binary one as the same bytes.
//
// Ownership: a Message given to OnMessage owns fresh bytes, which the
// handler may keep, change or forward. A Message passed to Send or Broadcast
// shares its bytes with every recipient's queue, without copying: they must
// not change afterwards.
type Message = protocol.Message

// Text returns a text message carrying s.
func Text(s string) Message { return protocol.Text(s) }

// TextBytes returns a text message carrying b, not copied: b must be valid
// UTF-8 and must not change afterwards (see [protocol.TextBytes]).
func TextBytes(b []byte) Message { return protocol.TextBytes(b) }

// Binary returns a binary message carrying b (not copied).
func Binary(b []byte) Message { return protocol.Binary(b) }

// StatusCode is a WebSocket close code.
type StatusCode = protocol.StatusCode

// Close codes the package sends or reports, and why.
const (
	StatusNormalClosure   = protocol.StatusNormalClosure   // Close with code 0, or the client's own normal close
	StatusGoingAway       = protocol.StatusGoingAway       // the client is leaving
	StatusNoStatus        = protocol.StatusNoStatus        // the client's close frame carried no code
	StatusAbnormalClosure = protocol.StatusAbnormalClosure // never sent: the socket broke, or missed the keepalive
	StatusInvalidPayload  = protocol.StatusInvalidPayload  // a text message that is not valid UTF-8
	StatusPolicyViolation = protocol.StatusPolicyViolation // the connection's send queue overflowed (a client that stopped reading)
	StatusMessageTooBig   = protocol.StatusMessageTooBig   // a message over Host.ReadLimit
	StatusInternalError   = protocol.StatusInternalError   // OnStart failed, or OnStart/OnConnect panicked
	StatusServiceRestart  = protocol.StatusServiceRestart  // Host.Shutdown: partysocket reconnects
	StatusReplaced        = protocol.StatusReplaced        // a newer connection arrived with the same id (like HTTP 409 Conflict)
)

// maxReasonLength is the longest close reason a close frame can carry.
const maxReasonLength = 123

// truncateReason cuts s to a close reason's length, on a rune boundary.
func truncateReason(s string) string {
	if len(s) <= maxReasonLength {
		return s
	}
	s = s[:maxReasonLength]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
