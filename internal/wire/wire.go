// Package wire is the one place where party works below coder/websocket's
// API: every byte-level decision about the WebSocket protocol that party
// makes itself, and every behaviour of coder/websocket it relies on.
//
// coder/websocket (github.com/coder/websocket) does the handshake, reads
// every message and writes every control frame. Around it, for speed and
// for small idle connections, party:
//
//   - frames outgoing data messages itself ([Socket.WriteMessage]), and
//     coalesces a batch of them into one write ([Socket.BeginBatch]);
//   - writes its keepalive pings itself ([Socket.Ping], [Socket.TryPing]),
//     and takes the client's pongs off the socket before coder/websocket
//     would ([Socket.TakePong]);
//   - waits for a client's bytes without a reader on the stack
//     ([Socket.WaitReadable], a peek at the file descriptor);
//   - hijacks the connection with smaller buffers than net/http's
//     ([Accept]);
//   - notices a message cut short by the client vanishing ([Socket.Failed]).
//
// That is safe because of what coder/websocket v1.8 does, each pinned by a
// test in pin_test.go that fails, naming the behaviour, if a new version
// changes it:
//
//  1. Accept writes every control frame (pong, close) through the
//     bufio.Writer of the hijacked connection, and keeps the bytes buffered
//     in the hijacked bufio.Reader. (The 101 response is written by net/http
//     before the hijack, so it never passes through the Socket.)
//  2. It writes each control frame whole, in one Write to the connection
//     (the 128-byte writer given to it holds any control frame), so data
//     frames written between two of its Writes never split a frame.
//  3. Its close frame's first byte is 0x88 (FIN, opcode 8).
//  4. Its reader takes an io.EOF met at a frame boundary, or inside the next
//     frame's header, for the end of the message: a message whose client
//     vanished inside it comes out whole.
//  5. Besides Read, only Close reads from the connection (the client's
//     answer to its close frame); CloseNow does not read.
//  6. Read answers a client's close frame with the same code and reason,
//     and a message over the read limit with 1009 and ErrMessageTooBig.
//  7. It never negotiates compression unless asked to, so data frames are
//     never compressed.
//  8. Its client answers a ping with an empty masked pong, 6 bytes, as
//     browsers do.
package wire

import "encoding/binary"

// Opcodes and flags of the frames party reads or writes itself (RFC 6455,
// section 5.2).
const (
	finText   = 0x81 // FIN, text
	finBinary = 0x82 // FIN, binary
	finClose  = 0x88 // FIN, close
	finPing   = 0x89 // FIN, ping
	finPong   = 0x8a // FIN, pong
	masked    = 0x80 // the mask bit of the second byte: set on every client frame
)

// pingFrame is an unmasked ping with no payload, as a server sends it.
var pingFrame = []byte{finPing, 0x00}

// pongLen is the length of a client's answer to pingFrame: an empty masked
// pong (two header bytes, a four-byte masking key).
const pongLen = 6

// isPong reports whether b starts with the client's answer to pingFrame.
func isPong(b []byte) bool { return len(b) >= pongLen && b[0] == finPong && b[1] == masked }

// isCloseFrame reports whether p, one Write of coder/websocket, is its close
// frame (see behaviour 2 and 3 in the package doc). That holds only because
// data never goes through coder/websocket's Conn.Write, which would write a
// long message in pieces, one of which could start with 0x88: party's
// writer frames every data message itself ([Socket.WriteMessage]), and must
// keep doing so.
func isCloseFrame(p []byte) bool { return len(p) > 0 && p[0] == finClose }

// maxHeader is the longest header of an unmasked frame.
const maxHeader = 10

// putHeader writes the header of one unfragmented, unmasked data frame of n
// bytes into hdr and returns its length.
func putHeader(hdr *[maxHeader]byte, binaryMsg bool, n int) int {
	hdr[0] = finText
	if binaryMsg {
		hdr[0] = finBinary
	}
	switch {
	case n < 126:
		hdr[1] = byte(n)
		return 2
	case n <= 0xffff:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		return 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		return 10
	}
}
