// Package protocol holds what a party server and its clients share on the
// wire: a [Message] (text or binary, kept apart) and the [StatusCode] a
// connection closes with. It imports nothing but the standard library, so a
// client (party/partysocket) can use it without the server.
//
// The server package re-exports every name here (party.Message, party.Text,
// party.StatusPolicyViolation...): the types are the same, so code written
// against either package works with the other.
package protocol

// Message is one WebSocket message, text or binary. The two are kept apart:
// a text message received is forwarded as text, a binary one as the same
// bytes.
//
// Ownership: a Message received (a server's OnMessage, a client's
// OnMessage) owns fresh bytes, which the receiver may keep, change or
// forward. A Message that is sent shares its bytes with every recipient's
// queue, without copying: they must not change afterwards.
type Message struct {
	data   []byte
	binary bool
}

// Text returns a text message carrying s.
func Text(s string) Message { return Message{data: []byte(s)} }

// TextBytes returns a text message carrying b, not copied: b must be valid
// UTF-8 (a client closes the connection on invalid text, 1007) and must not
// change afterwards. It saves the copy [Text] makes of bytes already at hand,
// such as the output of json.Marshal.
func TextBytes(b []byte) Message { return Message{data: b} }

// Binary returns a binary message carrying b (not copied).
func Binary(b []byte) Message { return Message{data: b, binary: true} }

// IsBinary reports whether m is a binary message.
func (m Message) IsBinary() bool { return m.binary }

// String returns m's payload as a string.
func (m Message) String() string { return string(m.data) }

// Bytes returns m's payload. The slice is shared with m, not copied.
func (m Message) Bytes() []byte { return m.data }

// StatusCode is a WebSocket close code (RFC 6455, section 7.4).
type StatusCode int

// Close codes a party server sends or reports, and when.
const (
	StatusNormalClosure   StatusCode = 1000 // a normal close, by either side
	StatusGoingAway       StatusCode = 1001 // the client is leaving (a browser tab closing)
	StatusNoStatus        StatusCode = 1005 // the close frame carried no code
	StatusAbnormalClosure StatusCode = 1006 // never sent: the socket broke, or missed the keepalive
	StatusInvalidPayload  StatusCode = 1007 // a text message that is not valid UTF-8
	StatusPolicyViolation StatusCode = 1008 // the server's send queue for the connection overflowed
	StatusMessageTooBig   StatusCode = 1009 // a message over the receiver's read limit
	StatusInternalError   StatusCode = 1011 // the room failed to start, or a handler panicked
	StatusServiceRestart  StatusCode = 1012 // the server is shutting down: reconnect
	StatusReplaced        StatusCode = 4409 // a newer connection arrived with the same id (like HTTP 409 Conflict)
)
