package yjs

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"party"
)

// Server is a room's party.Server for one Yjs document: it speaks the
// y-websocket protocol to the real providers (y-websocket's
// WebsocketProvider, y-partykit's YPartyKitProvider), keeps the document in
// the room's Storage, and relays awareness (cursors, presence).
//
// Use it as the room's Server:
//
//	h := party.Handler(func(r *party.Room) party.Server { return yjs.NewServer(r, nil) })
//
// or embed it in a Server of your own, which then has its handlers:
//
//	type Notes struct{ *yjs.Server }
//
// An embedding type that defines a handler the Server has (OnStart,
// OnConnect, OnMessage, OnClose) must call the Server's from it, or the
// protocol breaks: without OnStart the document is never loaded; a
// connection whose OnConnect did not reach the Server is closed with 1011 at
// its first message.
//
// # Protocol
//
// On connect, the Server sends its sync step 1 (the document's state vector)
// and, if any client has one, the awareness states. It answers a client's
// step 1 with a step 2 holding what the client lacks. A client's step 2 or
// update is validated, stored, merged and then sent, as a sync update, to
// every other connection. Awareness updates are applied as y-protocols'
// Awareness applies them and what changed is sent to every connection, the
// sender too (as y-partykit does; it keeps the sender's provider from timing
// out); when a connection closes, the states of the clients it announced are
// removed and a null state is sent for each. A query-awareness message is
// answered with every state.
//
// Where y-partykit differs: it sends each change back to its sender too
// (harmless, and left out here); it neither answers query-awareness nor says
// anything to a read-only connection; it ignores what it cannot read, where
// this Server closes the connection, as follows.
//
// A message that is not part of the protocol is refused and its connection
// closed, after which its later messages are ignored: a text message (so
// YPartyKitProvider's chunking of messages over 1 MB, whose markers are
// text, is not supported: raise Host.ReadLimit instead), an auth message, or
// an unknown message or sync type with 1003 (wrapping ErrUnsupported); a
// truncated or malformed message, state vector, update or awareness update,
// or bytes after its payload, with 1007 (ErrMalformed); an update over
// Options.MaxUpdateBytes, or one the document cannot take under
// Options.MaxDocumentBytes, with 1009 (ErrTooLarge). An update the Storage
// fails to store is neither applied nor sent, and its connection is closed
// with 1011, so that the client's provider reconnects and sends it again
// with its sync step 2. A refused message changes nothing. Options.OnError
// sees each refusal. y-websocket's provider reconnects after any of these
// codes (it stops only for 4400–4499) and, after 1009, sends the same
// content again: set the limits above what a legitimate client sends.
//
// # Persistence
//
// Every accepted update is stored, with one Storage Put, before it is merged
// and sent to anyone: with a storage.FileStore, a change another client has
// seen survives a crash of the process or machine. The update log is merged
// into a snapshot as Options.Persistence says; the document is read back in
// OnStart (see StoragePrefix for the keys).
//
// # Concurrency
//
// The Server's handlers run in the room's turn. Document and Apply take the
// Server's own lock, so they are safe from its handlers, from Host.Call (the
// way to reach a room from outside: it starts the room, and its OnStart, if
// needed), and from any goroutine while the room is live. A Server kept
// after its room was dropped still reads, but Apply fails: the room's
// Storage is closed (storage.ErrStorageClosed).
type Server struct {
	room    *party.Room
	opts    Options
	changes *debouncer // nil without Options.OnChange

	mu       sync.Mutex
	started  bool
	doc      document
	log      *updateLog
	aware    awareness
	peers    map[*party.Connection]*peer
	owners   map[uint64]*peer // awareness client -> the connection that announced it
	deferred []error          // failures to report once the lock is released
}

// peer is what the Server knows of one connection.
type peer struct {
	conn     *party.Connection
	readOnly bool
	denied   bool            // it was told it may not write
	refused  bool            // it was closed for a message: the rest are ignored
	clients  map[uint64]bool // the awareness clients it announced
}

var (
	_ party.OnStartHandler   = (*Server)(nil)
	_ party.OnConnectHandler = (*Server)(nil)
	_ party.OnMessageHandler = (*Server)(nil)
	_ party.OnCloseHandler   = (*Server)(nil)
)

// NewServer returns the Server of room, configured by opts (nil means every
// default; opts is copied). Call it from the party's factory; the document
// is loaded by OnStart.
func NewServer(room *party.Room, opts *Options) *Server {
	s := &Server{
		room:   room,
		opts:   opts.withDefaults(),
		aware:  newAwareness(),
		peers:  map[*party.Connection]*peer{},
		owners: map[uint64]*peer{},
	}
	if s.opts.OnChange != nil {
		s.changes = &debouncer{wait: s.opts.OnChangeWait, maxWait: s.opts.OnChangeMaxWait,
			clock: s.opts.clock, fire: s.reportChange}
	}
	return s
}

// OnStart reads the document from the room's Storage (the snapshot and the
// update log), or, if there is none, from Options.Load. It fails, and the
// room with it, if the Storage cannot be read or holds what this package did
// not write, or if Load fails or returns an update DecodeUpdate refuses or
// over Options.MaxDocumentBytes.
func (s *Server) OnStart() error {
	st := s.room.Storage()
	if st == nil {
		return errors.New("yjs: the room has no storage (OnStart called outside the room's start?)")
	}
	log, kept, err := loadLog(st)
	if err != nil {
		return err
	}
	if kept.snapshot == nil && len(kept.updates) == 0 && s.opts.Load != nil {
		if kept.snapshot, err = s.load(log); err != nil {
			return err
		}
	}
	doc, err := replay(kept)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.doc, s.log, s.started = doc, log, true
	s.mu.Unlock()
	return nil
}

// load calls Options.Load and stores what it returns as the snapshot.
func (s *Server) load(log *updateLog) ([]byte, error) {
	b, err := s.opts.Load()
	if err != nil {
		return nil, fmt.Errorf("yjs: Options.Load: %w", err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	if _, err := DecodeUpdate(b); err != nil {
		return nil, fmt.Errorf("yjs: the document Options.Load returned: %w", err)
	}
	if len(b) > s.opts.MaxDocumentBytes {
		return nil, fmt.Errorf("%w: the document Options.Load returned has %d bytes (Options.MaxDocumentBytes is %d)",
			ErrTooLarge, len(b), s.opts.MaxDocumentBytes)
	}
	if err := log.compact(b); err != nil {
		return nil, err
	}
	return b, nil
}

// replay merges the stored snapshot and updates into a document.
func replay(kept stored) (document, error) {
	var all []*Update
	if kept.snapshot != nil {
		u, err := DecodeUpdate(kept.snapshot)
		if err != nil {
			return document{}, fmt.Errorf("yjs: the stored snapshot: %w", err)
		}
		all = append(all, u)
	}
	for i, b := range kept.updates {
		u, err := DecodeUpdate(b)
		if err != nil {
			return document{}, fmt.Errorf("yjs: stored update %d of %d: %w", i+1, len(kept.updates), err)
		}
		all = append(all, u)
	}
	if len(all) == 1 {
		return newDocument(all[0], kept.snapshot), nil
	}
	return newDocument(Merge(all...), nil), nil
}

// OnConnect asks Options.ReadOnly about c, then sends c the Server's sync
// step 1 and the awareness states.
func (s *Server) OnConnect(c *party.Connection, r *http.Request) {
	readOnly := s.opts.ReadOnly != nil && s.opts.ReadOnly(c, r)
	s.mu.Lock()
	defer s.unlock()
	if !s.started {
		c.Close(party.StatusInternalError, ErrNotStarted.Error())
		return
	}
	s.peers[c] = &peer{conn: c, readOnly: readOnly, clients: map[uint64]bool{}}
	c.Send(party.Binary(syncMessage(syncStep1, s.doc.stateVector())))
	if states := s.aware.all(); len(states) > 0 {
		c.Send(party.Binary(awarenessMessage(encodeAwareness(states))))
	}
}

// OnMessage handles one message of the protocol from c (see Server).
func (s *Server) OnMessage(msg party.Message, c *party.Connection) {
	s.mu.Lock()
	p := s.peers[c]
	var err error
	switch {
	case p == nil:
		err = errors.New("yjs: a message from a connection the Server's OnConnect did not see")
	case p.refused:
		s.unlock()
		return
	default:
		if err = s.handle(msg, p); err != nil {
			p.refused = true
		}
	}
	s.unlock()
	if err != nil {
		c.Close(closeCode(err), err.Error())
		s.report(c, err)
	}
}

// handle runs a client's message; an error refuses it.
func (s *Server) handle(msg party.Message, p *peer) error {
	if !msg.IsBinary() {
		return fmt.Errorf("%w: a text message (the protocol's messages are binary)", ErrUnsupported)
	}
	m, err := parseMessage(msg.Bytes())
	if err != nil {
		return err
	}
	switch m.kind {
	case msgSync:
		if m.sync == syncStep1 {
			sv, err := DecodeStateVector(m.payload)
			if err != nil {
				return within(err, "sync step 1")
			}
			p.conn.Send(party.Binary(syncMessage(syncStep2, s.doc.diff(sv))))
			return nil
		}
		return s.receive(p, m.payload, m.sync == syncStep2)
	case msgAwareness:
		return s.receiveAwareness(p, m.payload)
	}
	p.conn.Send(party.Binary(awarenessMessage(encodeAwareness(s.aware.all())))) // msgQueryAwareness
	return nil
}

// OnClose removes the awareness states c announced, telling the others, and,
// when c was the last connection, compacts the log (PersistSnapshot) and
// makes a pending OnChange call, waiting for it.
func (s *Server) OnClose(c *party.Connection) {
	s.mu.Lock()
	if p := s.peers[c]; p != nil {
		delete(s.peers, c)
		clients := make([]uint64, 0, len(p.clients))
		for client := range p.clients {
			clients = append(clients, client)
			delete(s.owners, client)
		}
		slices.Sort(clients)
		if removed := s.aware.remove(clients); len(removed) > 0 {
			s.room.Broadcast(party.Binary(awarenessMessage(encodeAwareness(removed))))
		}
	}
	last := len(s.peers) == 0 && s.started
	if last && s.opts.Persistence == PersistSnapshot && len(s.log.keys) > 0 {
		s.compactLocked()
	}
	s.unlock()
	if last && s.changes != nil {
		s.changes.flush()
	}
}

// Document returns the merged document: an encoded v1 update holding
// everything accepted (a Y.Doc that applies it holds the room's content),
// which the caller owns. It fails with ErrNotStarted before the
// room's OnStart has run.
func (s *Server) Document() ([]byte, error) {
	s.mu.Lock()
	defer s.unlock()
	if !s.started {
		return nil, ErrNotStarted
	}
	return bytes.Clone(s.doc.bytes()), nil
}

// Apply accepts an update of the app's own (an encoded v1 update, as
// Y.encodeStateAsUpdate or a Y.Doc's 'update' event gives it) as if a client
// had sent it: it is validated, stored, merged and sent to every connection,
// and counts as a change for OnChange. It returns an error wrapping
// ErrMalformed or ErrTooLarge for an update it refuses, the Storage's error
// if storing failed, ErrNotStarted before OnStart; the document is unchanged
// then. An update that changes nothing (no structs, no deletions) is
// accepted and neither stored nor sent.
func (s *Server) Apply(update []byte) error {
	s.mu.Lock()
	defer s.unlock()
	if !s.started {
		return ErrNotStarted
	}
	return s.accept(update)
}

// unlock releases the lock, then reports the failures deferred under it.
func (s *Server) unlock() {
	errs := s.deferred
	s.deferred = nil
	s.mu.Unlock()
	for _, err := range errs {
		s.report(nil, err)
	}
}

// report gives err to Options.OnError, or logs it.
func (s *Server) report(c *party.Connection, err error) {
	if s.opts.OnError != nil {
		s.opts.OnError(c, err)
		return
	}
	args := []any{"party", s.room.Party(), "room", s.room.ID(), "err", err}
	if c != nil {
		args = append(args, "connection", c.ID())
	}
	slog.Default().Warn("yjs: "+describe(err), args...)
}

func describe(err error) string {
	if errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnsupported) {
		return "message refused"
	}
	return "document not stored"
}

// closeCode is the close code of a connection whose message was refused
// with err.
func closeCode(err error) party.StatusCode {
	switch {
	case errors.Is(err, ErrMalformed):
		return party.StatusInvalidPayload
	case errors.Is(err, ErrTooLarge):
		return party.StatusMessageTooBig
	case errors.Is(err, ErrUnsupported):
		return statusUnsupportedData
	}
	return party.StatusInternalError
}

// statusUnsupportedData is the close code for data of a kind the endpoint
// cannot accept (RFC 6455, 7.4.1).
const statusUnsupportedData party.StatusCode = 1003
