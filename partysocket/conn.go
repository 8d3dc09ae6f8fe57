package partysocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/coder/websocket"

	"party/protocol"
)

// One connection of a Socket: dialled, then served (its reader on the
// Socket's goroutine, its writer on one of its own) until it ends.

// dial makes one connection attempt.
func (s *Socket) dial() (*websocket.Conn, error) {
	u, err := s.cfg.url(s.ctx, "ws")
	if err != nil {
		return nil, fmt.Errorf("partysocket: %s: query: %w", s.RoomURL(), err)
	}
	ctx := s.ctx
	if t := s.cfg.ConnectionTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient:   s.cfg.HTTPClient,
		HTTPHeader:   s.cfg.Header.Clone(),
		Subprotocols: s.cfg.Subprotocols,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(resp.Body)
			}
			err = &HandshakeError{StatusCode: resp.StatusCode, Body: string(body)}
		} else if errors.Is(ctx.Err(), context.DeadlineExceeded) && s.ctx.Err() == nil {
			err = fmt.Errorf("%w after %v: %v", ErrConnectionTimeout, s.cfg.ConnectionTimeout, err)
		}
		return nil, fmt.Errorf("partysocket: connect %s: %w", s.RoomURL(), err)
	}
	conn.SetReadLimit(s.cfg.ReadLimit)
	return conn, nil
}

// serve runs one open connection until it ends and reports how; ok is false
// when it ended because of Close.
func (s *Socket) serve(conn *websocket.Conn) (ev CloseEvent, ok bool) {
	defer conn.CloseNow()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return CloseEvent{}, false
	}
	s.conn = conn
	s.mu.Unlock()

	// Reads and writes use no context (a cancelable one costs allocations
	// on every call): closing conn is what interrupts them.
	ctx, cancel := context.WithCancel(s.ctx) // ends the writer's wait
	flushed := make(chan struct{})
	writerDone := make(chan struct{})
	var writeErr error
	go func() {
		defer close(writerDone)
		writeErr = s.write(ctx, conn, flushed)
	}()
	select { // partysocket writes the queue before the open event
	case <-flushed:
	case <-writerDone:
	}
	if s.cfg.OnOpen != nil && s.enter() {
		s.cfg.OnOpen(s)
		s.leave()
	}
	select {
	case <-s.opened:
	default:
		close(s.opened)
	}

	readErr := s.read(conn)
	conn.CloseNow() // interrupts a write in progress
	cancel()
	<-writerDone
	s.mu.Lock()
	s.conn = nil
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return CloseEvent{}, false
	}

	var ce websocket.CloseError
	if errors.As(readErr, &ce) {
		ev = CloseEvent{Code: protocol.StatusCode(ce.Code), Reason: ce.Reason}
	} else {
		err := readErr
		if writeErr != nil {
			err = writeErr
		}
		ev = CloseEvent{Code: protocol.StatusAbnormalClosure, Err: err}
		if errors.Is(err, websocket.ErrMessageTooBig) {
			ev.Code = protocol.StatusMessageTooBig // sent to the server too
		}
		if s.cfg.OnError != nil && s.enter() {
			s.cfg.OnError(s, err)
			s.leave()
		}
	}
	if s.cfg.OnClose != nil && s.enter() {
		s.cfg.OnClose(s, ev)
		s.leave()
	}
	return ev, true
}

// read hands conn's messages to OnMessage until a read fails, and returns
// that error.
func (s *Socket) read(conn *websocket.Conn) error {
	for {
		typ, b, err := conn.Read(context.Background())
		if err != nil {
			return err
		}
		msg := protocol.Binary(b)
		if typ == websocket.MessageText {
			msg = protocol.TextBytes(b) // b is fresh for each message
		}
		if s.cfg.OnMessage != nil && s.enter() {
			s.cfg.OnMessage(s, msg)
			s.leave()
		}
	}
}

// write is a connection's writer: it writes the queue in order, closing
// flushed once it has emptied it the first time, and, once Close was
// called, writes what is left and closes the connection with 1000. A
// failed write leaves its message at the head of the queue and drops the
// connection.
func (s *Socket) write(ctx context.Context, conn *websocket.Conn, flushed chan<- struct{}) error {
	for {
		s.mu.Lock()
		if s.queue.len() == 0 {
			closed := s.closed
			s.mu.Unlock()
			if flushed != nil {
				close(flushed)
				flushed = nil
			}
			if closed {
				conn.Close(websocket.StatusNormalClosure, "")
				return nil
			}
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		msg := s.queue.peek()
		s.mu.Unlock()

		typ := websocket.MessageText
		if msg.IsBinary() {
			typ = websocket.MessageBinary
		}
		if err := conn.Write(context.Background(), typ, msg.Bytes()); err != nil {
			conn.CloseNow()
			return err
		}
		s.mu.Lock()
		s.queue.pop() // only this writer pops, and exit waits for it
		s.mu.Unlock()
	}
}
