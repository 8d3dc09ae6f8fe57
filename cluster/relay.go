package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"party"
)

// The holding side: a room that runs on another node, with clients held
// here. The Host runs a relay as the room's Server; the relay joins each
// client to the room on its owner (Admit, before the client's socket
// opens), forwards what the clients say and when they leave, and delivers
// what the owner sends back, in the order the owner sent it.

// relayWindow is how many messages of one connection may be forwarded and
// not yet handled by the owner: the relay's OnMessage then waits for the
// owner's credit, holding the relay room's turn, so that the holding node
// stops reading from the room's clients and TCP slows them down. The
// owner's queue for a connection stays under it.
const relayWindow = 256

// Congestion crosses nodes as state, not as events: while any client a
// relay holds is congested (over its high-water mark, see
// party.Host.SendQueueMessages), the relay tells the owner which ones, at
// once on each change and again every congestionRepeat; the owner marks
// them congested (party.Remote.Congested), so that its room holds its
// senders back, and clears them when a report leaves them out, or when no
// report came for congestionExpiry (NATS may lose the one that clears).
const (
	congestionRepeat = 250 * time.Millisecond
	congestionExpiry = 4 * congestionRepeat
)

// creditQueryInterval is how long a relay waits for credit before it asks
// the owner for its count: NATS delivers at most once, so a credit may be
// lost, and credit is a running total, so any later one makes up for it.
const creditQueryInterval = time.Second

// relay is the Server of a room run by owner, for the clients held here.
type relay struct {
	n       *Node
	ref     roomRef
	owner   string
	token   uint64 // the owner's lease token: messages with another are stale
	lost    chan struct{}
	lostMu  sync.Once
	release func()

	mu        sync.Mutex
	members   map[uint64]*member // by seq
	byConn    map[*party.Connection]*member
	admitting *member // between Admit and OnConnect, both in the relay room's turn

	maxInflight int // the most messages of one connection ever in flight (tests check the bound)

	// Congestion (Congested, reportCongestion). congMu is a leaf, taken
	// under the connections' locks; reportMu keeps reports in order.
	congMu    sync.Mutex
	congested map[*party.Connection]bool
	reporting bool          // a reportCongestion runs
	congWake  chan struct{} // wakes it at a change
	reportMu  sync.Mutex
}

// member is one client held here, as the owner knows it.
type member struct {
	seq       uint64
	id        string
	conn      *party.Connection // nil until OnConnect
	joined    bool              // the owner's joined message arrived
	pending   []party.Message   // sent by the owner before conn was set
	closing   *[2]any           // a close from the owner before conn was set: code, reason
	admitted  chan error        // Admit's answer: nil once joined, or why not
	forwarded uint64            // messages forwarded to the owner
	handled   uint64            // of those, the most the owner said it handled (its credit)
	closed    bool              // the owner closed it
	credit    chan struct{}     // signalled when credit arrives, or the owner closes it
}

func (n *Node) newRelay(ref roomRef, own Owner) *relay {
	r := &relay{
		n: n, ref: ref, owner: own.Node, token: own.Token,
		lost:    make(chan struct{}),
		members: make(map[uint64]*member),
		byConn:  make(map[*party.Connection]*member),

		congested: make(map[*party.Connection]bool),
		congWake:  make(chan struct{}, 1),
	}
	r.release = func() {
		n.mu.Lock()
		if n.relays[ref] == r {
			delete(n.relays, ref)
		}
		n.mu.Unlock()
	}
	n.mu.Lock()
	old := n.relays[ref]
	n.relays[ref] = r
	gone := n.gone[own.Node] // declared gone since Place found it alive: nodeGone missed r
	n.mu.Unlock()
	if old != nil {
		old.lose() // a stale one: its room was dropped and is going
	}
	if gone {
		r.lose()
	}
	return r
}

// lose drops the relay room: its clients are closed with 1012 and
// reconnect, to be placed anew. The dropped room runs no OnClose, so lose
// tells the owner that each member left: else its connections would stay
// in the owner's room, and an owner that is shutting down (whose leaving
// made this node drop the relay) would wait for them until its Shutdown's
// context ends. (A leave the owner no longer expects is ignored.)
func (r *relay) lose() {
	r.lostMu.Do(func() {
		close(r.lost)
		r.mu.Lock()
		seqs := make([]uint64, 0, len(r.members))
		for seq := range r.members {
			seqs = append(seqs, seq)
		}
		r.mu.Unlock()
		for _, seq := range seqs {
			r.left(seq, party.StatusServiceRestart, "room moved")
		}
	})
}

// left tells the owner that connection seq left, with code and reason.
func (r *relay) left(seq uint64, code party.StatusCode, reason string) {
	r.n.publish(r.owner, r.envelope(kindLeave, seq, closeStatus(int(code), reason)))
}

func (r *relay) envelope(k kind, seq uint64, payload []byte) *envelope {
	return &envelope{kind: k, token: r.token, party: r.ref.party, room: r.ref.room, from: r.n.name, seq: seq, payload: payload}
}

// joinRequest is what the owner's OnConnect sees of the client's upgrade.
type joinRequest struct {
	ID         string      `json:"id"`
	Method     string      `json:"method"`
	URL        string      `json:"url"` // the request URI, as sent
	Host       string      `json:"host"`
	Header     http.Header `json:"header"`
	RemoteAddr string      `json:"remoteAddr"`
	TLS        bool        `json:"tls,omitempty"`
}

// Admit implements party.Relay: it asks the owner to join the client, and
// waits for its answer.
func (r *relay) Admit(id string, req *http.Request) error {
	r.n.mu.Lock()
	r.n.nextSeq++
	seq := r.n.nextSeq
	r.n.mu.Unlock()
	m := &member{seq: seq, id: id, admitted: make(chan error, 1), credit: make(chan struct{}, 1)}
	r.mu.Lock()
	r.members[seq] = m
	r.mu.Unlock()
	jr, _ := json.Marshal(joinRequest{ID: id, Method: req.Method, URL: req.RequestURI, Host: req.Host,
		Header: req.Header, RemoteAddr: req.RemoteAddr, TLS: req.TLS != nil})
	r.n.publish(r.owner, r.envelope(kindJoin, seq, jr))
	var err error
	select {
	case err = <-m.admitted:
	case <-r.lost:
		err = fmt.Errorf("cluster: the room's node %s is gone", r.owner)
	case <-time.After(r.n.joinTimeout):
		err = fmt.Errorf("cluster: node %s did not answer within %v", r.owner, r.n.joinTimeout)
		r.lose() // an owner that does not answer: place the room anew
	}
	r.mu.Lock()
	if err != nil {
		delete(r.members, seq)
	} else {
		r.admitting = m
	}
	r.mu.Unlock()
	if err != nil {
		// Tell the owner in case it joined the client after all.
		r.left(seq, party.StatusAbnormalClosure, "not admitted")
	}
	return err
}

// Broadcast implements party.Relay: Room.Broadcast on the relay room goes
// to the owner, which broadcasts to every node.
func (r *relay) Broadcast(msg party.Message, without []string) {
	r.n.publish(r.owner, r.envelope(kindBroadcast, 0, broadcastRequest(msg, without)), msg.Bytes())
}

// Abandon implements party.Relay: the client admitted last went away
// before its socket opened; the owner lets it go.
func (r *relay) Abandon(id string) {
	r.mu.Lock()
	m := r.admitting
	r.admitting = nil
	if m != nil {
		delete(r.members, m.seq)
	}
	r.mu.Unlock()
	if m != nil {
		r.left(m.seq, party.StatusAbnormalClosure, "upgrade failed")
	}
}

// OnConnect binds the client's connection to the member Admit created, and
// delivers what the owner sent it meanwhile.
func (r *relay) OnConnect(c *party.Connection, _ *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.admitting
	r.admitting = nil
	if m == nil || m.id != c.ID() {
		c.Close(party.StatusInternalError, "cluster: connection not admitted")
		return
	}
	m.conn = c
	r.byConn[c] = m
	for _, msg := range m.pending {
		c.Send(msg)
	}
	m.pending = nil
	if m.closing != nil {
		c.Close(m.closing[0].(party.StatusCode), m.closing[1].(string))
	}
}

// OnMessage forwards a client's message to the owner, waiting for credit
// when relayWindow messages are in flight.
func (r *relay) OnMessage(msg party.Message, c *party.Connection) {
	r.mu.Lock()
	m := r.byConn[c]
	if m == nil {
		r.mu.Unlock()
		return
	}
	m.forwarded++
	r.maxInflight = max(r.maxInflight, m.inflight())
	wait := m.inflight() > relayWindow
	r.mu.Unlock()
	k := kindText
	if msg.IsBinary() {
		k = kindBinary
	}
	e := r.envelope(k, m.seq, msg.Bytes())
	if err := r.n.nc.Publish(r.n.nodeSubject(r.owner), e.encode()); err != nil {
		r.n.log.Warn("cluster: forwarding a message to the room's node", "to", r.owner, "party", r.ref.party, "room", r.ref.room, "bytes", len(msg.Bytes()), "err", err)
		c.Close(party.StatusMessageTooBig, "cluster: message not forwarded to the room's node")
		return
	}
	if !wait {
		return
	}
	// Wait as long as the owner's room holds the client back, as a room
	// holds its senders on one node: a slow reader, or a slow handler. A
	// credit that may have been lost is asked for again; an owner that is
	// gone loses the relay; one that forgot the client closes it.
	ask := time.NewTicker(creditQueryInterval)
	defer ask.Stop()
	for wait {
		select {
		case <-m.credit:
		case <-r.lost:
			return
		case <-r.n.stop:
			return
		case <-ask.C:
			r.n.publish(r.owner, r.envelope(kindCreditQuery, m.seq, nil))
		}
		r.mu.Lock()
		wait = m.inflight() > relayWindow && !m.closed && r.byConn[c] == m
		r.mu.Unlock()
	}
}

// inflight is how many of the member's messages the owner has not yet
// handled, as far as its credit tells. The caller holds the relay's mu.
func (m *member) inflight() int { return int(m.forwarded - min(m.handled, m.forwarded)) }

// Congested implements party.Relay: client c is congested, or clear again.
// It is called under c's lock, often inside member.send under r.mu, so it
// takes only congMu, and leaves telling the owner to reportCongestion.
func (r *relay) Congested(c *party.Connection, congested bool) {
	r.congMu.Lock()
	if congested {
		r.congested[c] = true
	} else {
		delete(r.congested, c)
	}
	start := !r.reporting && congested
	r.reporting = r.reporting || congested
	r.congMu.Unlock()
	if start {
		go r.reportCongestion()
		return
	}
	select {
	case r.congWake <- struct{}{}:
	default:
	}
}

// reportCongestion tells the owner which clients are congested, at each
// change and every congestionRepeat, until none is (that too is said) or
// the relay is lost.
func (r *relay) reportCongestion() {
	t := time.NewTicker(congestionRepeat)
	defer t.Stop()
	for {
		if !r.reportOnce() {
			return
		}
		select {
		case <-r.congWake:
		case <-t.C:
		case <-r.lost:
			r.congMu.Lock()
			r.reporting = false
			r.congMu.Unlock()
			return
		}
	}
}

// reportOnce sends one report; it returns false, and ends the reporting,
// once it said that none is congested.
func (r *relay) reportOnce() bool {
	r.reportMu.Lock() // a reporter that ends and one that starts send in order
	defer r.reportMu.Unlock()
	r.congMu.Lock()
	conns := make([]*party.Connection, 0, len(r.congested))
	for c := range r.congested {
		conns = append(conns, c)
	}
	if len(conns) == 0 {
		r.reporting = false
	}
	r.congMu.Unlock()
	seqs := make([]uint64, 0, len(conns))
	r.mu.Lock()
	for _, c := range conns {
		if m := r.byConn[c]; m != nil {
			seqs = append(seqs, m.seq)
		}
	}
	r.mu.Unlock()
	payload := binary.AppendUvarint(nil, uint64(len(seqs)))
	for _, seq := range seqs {
		payload = binary.AppendUvarint(payload, seq)
	}
	r.n.publish(r.owner, r.envelope(kindCongested, 0, payload))
	return len(conns) > 0
}

// OnClose tells the owner that the client left.
func (r *relay) OnClose(c *party.Connection) {
	r.mu.Lock()
	m := r.byConn[c]
	delete(r.byConn, c)
	if m != nil {
		delete(r.members, m.seq)
	}
	r.mu.Unlock()
	if m == nil {
		return
	}
	code, reason := c.CloseStatus()
	r.left(m.seq, code, reason)
}

// OnRequest forwards an HTTP request to the owner, and writes its answer.
// Once the room is placed, the Host calls it outside the relay room's turn,
// concurrently with itself and the other handlers (see party.Relay): it
// reads only what does not change after newRelay.
func (r *relay) OnRequest(w http.ResponseWriter, req *http.Request) {
	var buf bytes.Buffer
	if req.Body == nil {
		req.Body = http.NoBody // a Fetch's request may have none
	}
	req.Body = http.MaxBytesReader(w, req.Body, 1<<20)
	out := req.Clone(req.Context())
	out.Header.Del("Connection")
	if err := out.Write(&buf); err != nil {
		http.Error(w, "cluster: reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), r.n.joinTimeout)
	defer cancel()
	reply, err := r.n.nc.RequestWithContext(ctx, r.n.nodeSubject(r.owner), r.envelope(kindFetch, 0, buf.Bytes()).encode())
	if err != nil {
		http.Error(w, fmt.Sprintf("cluster: the room's node %s did not answer: %v", r.owner, err), http.StatusBadGateway)
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(reply.Data)), req)
	if err != nil {
		http.Error(w, "cluster: malformed answer from the room's node: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// toRelay handles a message from a room's owner.
func (n *Node) toRelay(e envelope) {
	n.mu.Lock()
	r := n.relays[roomRef{e.party, e.room}]
	n.mu.Unlock()
	switch {
	case r == nil || e.from != r.owner:
		if e.kind != kindGone && e.kind != kindCredit {
			n.log.Debug("cluster: dropped a message for a room not relayed here", "from", e.from, "kind", e.kind, "party", e.party, "room", e.room)
		}
		return
	case e.token < r.token:
		n.log.Warn("cluster: dropped a message from a node that no longer owns the room", "from", e.from, "kind", e.kind, "party", e.party, "room", e.room)
		return
	case e.token > r.token || e.kind == kindGone:
		r.lose() // the owner runs a newer incarnation of the room, or none
		return
	}
	if err := r.deliver(e); err != nil {
		n.log.Warn("cluster: dropped a malformed message", "from", e.from, "kind", e.kind, "err", err)
	}
}

// deliver applies one message of the owner to the room's members.
func (r *relay) deliver(e envelope) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.kind == kindBroadcastText || e.kind == kindBroadcastBinary {
		without, data, err := readBroadcast(e.payload)
		if err != nil {
			return err
		}
		msg := message(e.kind == kindBroadcastBinary, data)
		for _, m := range r.members {
			if m.joined && !slices.Contains(without, m.id) {
				m.send(msg)
			}
		}
		return nil
	}
	m := r.members[e.seq]
	if m == nil {
		return nil // gone since
	}
	switch e.kind {
	case kindJoined:
		m.joined = true
		m.answer(nil)
	case kindRefused:
		status, why, err := readCloseStatus(e.payload)
		if err != nil {
			return err
		}
		m.answer(&party.HTTPError{Status: status, Message: why})
	case kindSendText, kindSendBinary:
		m.send(message(e.kind == kindSendBinary, e.payload))
	case kindClose:
		code, reason, err := readCloseStatus(e.payload)
		if err != nil {
			return err
		}
		if m.conn != nil {
			m.conn.Close(party.StatusCode(code), reason)
		} else {
			m.closing = &[2]any{party.StatusCode(code), reason}
		}
		m.closed = true
		m.wake()
	case kindCredit:
		rd := reader{e.payload, nil}
		handled := rd.uvarint()
		if rd.err != nil {
			return rd.err
		}
		m.handled = max(m.handled, handled) // credits may arrive late, or twice
		m.wake()
	default:
		return fmt.Errorf("%w: %s to a relay", errMalformed, e.kind)
	}
	return nil
}

// wake wakes OnMessage if it waits for credit.
func (m *member) wake() {
	select {
	case m.credit <- struct{}{}:
	default:
	}
}

// answer gives Admit the owner's answer; a second one is dropped.
func (m *member) answer(err error) {
	select {
	case m.admitted <- err:
	default:
	}
}

// send delivers msg to the member's client, or keeps it until OnConnect.
// The caller holds the relay's mu.
func (m *member) send(msg party.Message) {
	if m.conn != nil {
		m.conn.Send(msg)
		return
	}
	m.pending = append(m.pending, msg)
}

// message copies data (which aliases a NATS message) into a Message.
func message(binary bool, data []byte) party.Message {
	b := bytes.Clone(data)
	if binary {
		return party.Binary(b)
	}
	return party.TextBytes(b)
}
