package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/coder/websocket"
)

// Buffer sizes of a hijacked connection. net/http hands over 4 KiB for each;
// most real-time messages are far smaller, larger ones are read and written
// straight through, and every idle connection saves the difference.
const (
	readBuffer  = 512
	writeBuffer = 128 // holds any control frame (behaviour 2); the Socket gathers a batch's data frames itself
)

// Accept completes the WebSocket handshake of r with coder/websocket's
// Accept, over a [Socket] with smaller buffers than net/http's, and returns
// both. On error Accept has answered the request.
//
// The caller must have validated the handshake and the Origin: Accept is
// told to skip its own origin check (party checks it before the room is
// touched, and its refusal names the Host.OriginPatterns entry to add).
func Accept(w http.ResponseWriter, r *http.Request, subprotocols []string) (*websocket.Conn, *Socket, error) {
	sb := &smallBuffers{ResponseWriter: w}
	ws, err := websocket.Accept(sb, r, &websocket.AcceptOptions{
		Subprotocols:       subprotocols,
		InsecureSkipVerify: true, // see above
	})
	if err != nil {
		return nil, nil, err
	}
	return ws, sb.sock, nil
}

// smallBuffers makes coder/websocket's Accept use smaller buffers than the
// ones net/http hands over with the hijacked connection.
type smallBuffers struct {
	http.ResponseWriter
	sock *Socket // the hijacked connection
}

func (w *smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("party: the http.ResponseWriter cannot be hijacked")
	}
	hijacked, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	conn := &Socket{Conn: hijacked, raw: rawConn(hijacked)}
	w.sock = conn
	br := bufio.NewReaderSize(conn, readBuffer)
	if n := brw.Reader.Buffered(); n > 0 {
		conn.early = true
		// The client spoke right after its handshake. Accept keeps only
		// what is buffered in the reader it gets (behaviour 1: it resets
		// the reader's source to conn), so those bytes must sit in br's
		// buffer.
		early, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(n, readBuffer))
		if _, err := br.Peek(n); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	conn.br = br
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, writeBuffer)), nil
}
