// Package partysocket is a Go client for party rooms (and PartyKit servers)
// that behaves like the npm partysocket client: it connects to
// /parties/{party}/{room}?_pk={id}, keeps the same id across reconnects,
// reconnects after every close with partysocket's backoff, and queues what
// is sent while it is disconnected, writing it first, in order, when the
// next connection opens.
//
// The PartyKit guide's client, in Go:
//
//	s, err := partysocket.Dial(ctx, partysocket.Options{
//		Host: "localhost:1999",
//		Room: "my-room",
//		OnMessage: func(s *partysocket.Socket, msg protocol.Message) {
//			fmt.Println(msg)
//		},
//	})
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//	s.Send(protocol.Text("Hello everyone"))
//
// # Reconnection
//
// After a connection closes, whatever its code, the Socket connects again
// after MinReconnectDelay (3s), then waits ReconnectGrowth (1.3) times
// longer before each further attempt, up to MaxReconnectDelay (10s). The
// count starts again once a connection has stayed open for MinUptime (5s).
// Each attempt is bounded by ConnectionTimeout (4s). Options.ShouldReconnect
// stops it for a close code of your choice (4000–4999 are the application's),
// and Options.MaxRetries after so many failed attempts.
//
// # Differences from npm partysocket
//
// A Go Socket has a bounded send queue (Send returns ErrQueueFull rather
// than dropping silently), refuses Send after Close (ErrClosed), can send
// HTTP headers, does not report the close it was asked for by Close, and
// reports failed attempts to OnError only (OnClose follows only a
// connection that opened). Its default id is an xid, not a UUID.
//
// # Messages
//
// Messages and close codes are party/protocol's [protocol.Message] and
// [protocol.StatusCode], the very types the server package re-exports as
// party.Message and party.StatusCode: a client imports party/protocol and
// not the server, and code written with either name works with both.
package partysocket

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"party/protocol"
)

// closeTimeout bounds how long Close lets the messages already queued be
// written before the connection is dropped.
const closeTimeout = 5 * time.Second

// Socket is a reconnecting connection to one room. Create it with Dial or
// New. Its methods are safe to call from any goroutine, callbacks included.
//
// A Socket runs one goroutine for its whole life, plus one writer goroutine
// while a connection is open; Close ends them both.
type Socket struct {
	cfg       *config
	clock     clock
	transport *http.Transport // the Socket's own, if Options.HTTPClient is nil

	ctx    context.Context // ends when the Socket stops
	cancel context.CancelFunc
	done   chan struct{} // closed when the Socket's goroutine has returned
	opened chan struct{} // closed once the first connection has opened
	wake   chan struct{} // one token: the writer has something to do

	mu         sync.Mutex
	queue      queue           // accepted by Send, not yet written
	closed     bool            // Close was called, or the Socket gave up
	conn       *websocket.Conn // the open connection, nil between connections
	inCallback bool            // the Socket's goroutine is in a callback
	lastErr    error           // of the last failed attempt, for Dial
	closeTimer *time.Timer     // Close's bound on flushing the queue
}

// New returns a Socket that starts connecting at once, in the background,
// and keeps reconnecting until it is closed. Send may be called right away:
// messages are queued until the connection opens. New fails only for
// invalid Options.
func New(opts Options) (*Socket, error) {
	cfg, err := opts.config()
	if err != nil {
		return nil, err
	}
	return start(cfg, clock{now: time.Now, sleep: sleep}), nil
}

func start(cfg *config, clk clock) *Socket {
	ctx, cancel := context.WithCancel(context.Background())
	var transport *http.Transport
	if cfg.HTTPClient == nil {
		// A Transport of the Socket's own, so that Close can stop a dial in
		// progress (the shared one finishes it and keeps the connection).
		cfg.HTTPClient = http.DefaultClient
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			transport = t.Clone()
			transport.DisableKeepAlives = true
			cfg.HTTPClient = &http.Client{Transport: transport}
		}
	}
	s := &Socket{
		transport: transport,
		cfg:       cfg,
		clock:     clk,
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
		opened:    make(chan struct{}),
		wake:      make(chan struct{}, 1),
	}
	go s.run()
	return s
}

// Dial is New followed by a wait for the first connection to open: it
// returns once OnOpen has returned. Failed attempts are retried as
// Options say until ctx ends; then, or if the Socket gives up first
// (ShouldReconnect, MaxRetries), Dial closes it and returns an error
// wrapping ctx's error or the last attempt's. ctx bounds Dial only, not the
// Socket it returns.
func Dial(ctx context.Context, opts Options) (*Socket, error) {
	s, err := New(opts)
	if err != nil {
		return nil, err
	}
	select {
	case <-s.opened:
		return s, nil
	case <-s.done:
	case <-ctx.Done():
	}
	select {
	case <-s.opened:
		return s, nil
	default:
	}
	s.Close()
	<-s.done // Dial is never the Socket's goroutine: wait even during a callback
	s.mu.Lock()
	last := s.lastErr
	s.mu.Unlock()
	switch {
	case ctx.Err() != nil && last != nil:
		return nil, fmt.Errorf("partysocket: dial %s: %w (last attempt: %w)", s.RoomURL(), ctx.Err(), last)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("partysocket: dial %s: %w", s.RoomURL(), ctx.Err())
	case last != nil:
		return nil, fmt.Errorf("partysocket: dial %s: gave up: %w", s.RoomURL(), last)
	}
	return nil, fmt.Errorf("partysocket: dial %s: %w", s.RoomURL(), ErrClosed)
}

// ID returns the connection id sent as _pk: Options.ID, or the random id
// chosen by New. The server's Connection.ID is the same after every
// reconnect.
func (s *Socket) ID() string { return s.cfg.ID }

// RoomURL returns the room's WebSocket URL without the query (partysocket's
// roomUrl), for example "ws://localhost:1999/parties/main/my-room".
func (s *Socket) RoomURL() string { return s.cfg.roomURL("ws") }

// Done returns a channel that is closed when the Socket has stopped for
// good: after Close, or when ShouldReconnect or MaxRetries ended it.
func (s *Socket) Done() <-chan struct{} { return s.done }

// Send queues msg for the server and returns at once; messages are written
// in the order Send accepted them. While the Socket is disconnected they
// wait for the next connection, where they are written before anything
// else and before OnOpen runs. A message is taken off the queue once
// written to a socket; one whose write failed is written again on the next
// connection (one written just before a connection broke can still be
// lost, as with any WebSocket). Send returns ErrQueueFull if
// Options.MaxQueued messages are waiting already, and ErrClosed after
// Close. msg's bytes must not change after Send.
func (s *Socket) Send(msg protocol.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.queue.len() >= s.cfg.maxQueue {
		return ErrQueueFull
	}
	s.queue.push(msg)
	s.signal()
	return nil
}

// signal wakes the writer, if one is running. s.mu is held.
func (s *Socket) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close stops the Socket for good. If a connection is open, the messages
// already queued are written (for at most 5 seconds) and the connection is
// closed with 1000 (normal closure); a connection attempt or reconnection
// wait in progress is abandoned. Close returns when the Socket's goroutines
// have ended, except when a callback is running (Close called from a
// callback, say): then it does not wait, and they end as soon as the
// callback returns. No callback starts once Close has been called. Close
// may be called more than once; it always returns nil.
func (s *Socket) Close() error {
	s.mu.Lock()
	inCallback := s.inCallback
	if !s.closed {
		s.closed = true
		if s.conn != nil {
			s.closeTimer = time.AfterFunc(closeTimeout, s.abort)
			s.signal()
		} else {
			s.cancel()
		}
	}
	s.mu.Unlock()
	if !inCallback {
		<-s.done
	}
	return nil
}

// abort ends Close's wait for the queue to be written: it stops the Socket
// and drops its connection without a close handshake.
func (s *Socket) abort() {
	s.cancel()
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		conn.CloseNow()
	}
}

// run is the Socket's goroutine: connect, serve, wait, connect again.
func (s *Socket) run() {
	defer s.exit()
	attempt := -1 // partysocket's retry count: 0 is the first connection
	for {
		if limit := s.cfg.MaxRetries; limit != 0 && attempt >= max(limit, 0) {
			return
		}
		attempt++
		if s.clock.sleep(s.ctx, s.cfg.delay(attempt)) != nil {
			return
		}
		conn, err := s.dial()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			s.lastErr = err
			s.mu.Unlock()
			if s.cfg.OnError != nil && s.enter() {
				s.cfg.OnError(s, err)
				s.leave()
			}
			if !s.shouldReconnect(CloseEvent{Code: protocol.StatusAbnormalClosure, Err: err}) {
				return
			}
			continue
		}
		openedAt := s.clock.now()
		ev, ok := s.serve(conn)
		if !ok {
			return
		}
		if s.clock.now().Sub(openedAt) >= s.cfg.MinUptime {
			attempt = 0
		}
		if !s.shouldReconnect(ev) {
			return
		}
	}
}

// exit marks the Socket closed and releases it; the last thing run does.
func (s *Socket) exit() {
	s.mu.Lock()
	s.closed = true
	s.queue = queue{}
	if s.closeTimer != nil {
		s.closeTimer.Stop()
	}
	s.mu.Unlock()
	s.cancel()
	if s.transport != nil {
		s.transport.CloseIdleConnections() // also cancels a dial in progress
	}
	close(s.done)
}

// enter marks the start of a callback, unless Close has been called: then
// it returns false and the callback must not run. A callback that panics
// crashes the program (as a panic in any goroutine), so leave needs no
// defer.
func (s *Socket) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.inCallback = true
	return true
}

// leave marks the end of a callback.
func (s *Socket) leave() {
	s.mu.Lock()
	s.inCallback = false
	s.mu.Unlock()
}

// shouldReconnect asks Options.ShouldReconnect, unless Close was called.
func (s *Socket) shouldReconnect(ev CloseEvent) bool {
	if !s.enter() {
		return false
	}
	defer s.leave()
	return s.cfg.ShouldReconnect == nil || s.cfg.ShouldReconnect(ev)
}
