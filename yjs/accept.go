package yjs

import (
	"bytes"
	"fmt"

	"party"
)

// readOnlyReason is what a read-only connection is told when it tries to
// change the document.
const readOnlyReason = "read-only connection: the server does not apply its changes"

// receive handles a client's sync step 2 or update. A step 2 that adds
// nothing (a reconnecting client answering the Server's step 1 with what the
// document has) is neither stored nor sent.
func (s *Server) receive(p *peer, update []byte, step2 bool) error {
	u, err := s.check(update)
	if err != nil || empty(u) {
		return err
	}
	if p.readOnly {
		if !p.denied && s.doc.lacks(u) {
			p.denied = true
			p.conn.Send(party.Binary(permissionDenied(readOnlyReason)))
		}
		return nil
	}
	if step2 && !s.doc.lacks(u) {
		return nil
	}
	return s.add(u, update, p.conn)
}

// check decodes an update, refusing it if it is over MaxUpdateBytes or
// malformed.
func (s *Server) check(update []byte) (*Update, error) {
	if len(update) > s.opts.MaxUpdateBytes {
		return nil, fmt.Errorf("%w: an update of %d bytes (Options.MaxUpdateBytes is %d)",
			ErrTooLarge, len(update), s.opts.MaxUpdateBytes)
	}
	return DecodeUpdate(update)
}

// accept validates, stores, merges and sends an update from Apply.
func (s *Server) accept(update []byte) error {
	u, err := s.check(update)
	if err != nil || empty(u) {
		return err
	}
	return s.add(u, update, nil)
}

// add stores, merges and sends a valid update u (encoded as update) from a
// client (from) or from Apply (from is nil); an error means nothing changed.
func (s *Server) add(u *Update, update []byte, from *party.Connection) error {
	if !s.doc.fits(u, len(update), s.opts.MaxDocumentBytes) {
		return fmt.Errorf("%w: the document would pass Options.MaxDocumentBytes (%d) with an update of %d bytes",
			ErrTooLarge, s.opts.MaxDocumentBytes, len(update))
	}
	if err := s.log.append(update); err != nil {
		return err
	}
	s.doc.add(u, len(update))
	msg := party.Binary(syncMessage(syncUpdate, update))
	if from != nil {
		s.room.Broadcast(msg, from.ID())
	} else {
		s.room.Broadcast(msg)
	}
	if s.changes != nil {
		s.changes.touch()
	}
	if len(s.log.keys) > s.opts.MaxLogUpdates || s.log.bytes > s.opts.MaxLogBytes {
		s.compactLocked()
	}
	return nil
}

// compactLocked merges the log into the snapshot; a failure is reported once
// the lock is released (the document kept is whole either way).
func (s *Server) compactLocked() {
	if err := s.log.compact(s.doc.bytes()); err != nil {
		s.deferred = append(s.deferred, err)
	}
}

// receiveAwareness applies a client's awareness update, notes which clients
// the connection announced, and sends what changed to everyone.
func (s *Server) receiveAwareness(p *peer, update []byte) error {
	entries, err := decodeAwareness(update)
	if err != nil {
		return err
	}
	changed := s.aware.apply(entries)
	for _, e := range changed {
		owner := s.owners[e.client]
		if owner != nil && (owner != p || e.state == nullState) {
			delete(owner.clients, e.client)
			delete(s.owners, e.client)
		}
		if e.state != nullState {
			s.owners[e.client] = p
			p.clients[e.client] = true
		}
	}
	if len(changed) > 0 {
		s.room.Broadcast(party.Binary(awarenessMessage(encodeAwareness(changed))))
	}
	return nil
}

// reportChange calls Options.OnChange with the merged document (the
// debouncer's fire). A panic in it is recovered and reported to OnError.
func (s *Server) reportChange() {
	s.mu.Lock()
	doc := bytes.Clone(s.doc.bytes())
	s.unlock()
	defer func() {
		if p := recover(); p != nil {
			s.report(nil, fmt.Errorf("yjs: Options.OnChange panicked: %v", p))
		}
	}()
	s.opts.OnChange(doc)
}
