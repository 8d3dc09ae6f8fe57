package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"party"
)

// The owner's side: a room that runs here, whose members may be held by
// other nodes. Each such member is a party.Remote joined with a link; the
// room's broadcasts go once per node through a fanout.

// owned is a room this node runs, from its claim to its release.
type owned struct {
	n     *Node
	ref   roomRef
	lease *Lease

	mu      sync.Mutex
	fanouts map[string]*fanout // by node
}

// own records the room just claimed and returns its Placement.
func (n *Node) own(ref roomRef, lease *Lease) party.Placement {
	o := &owned{n: n, ref: ref, lease: lease, fanouts: make(map[string]*fanout)}
	n.releasing.Add(1)
	n.mu.Lock()
	n.owned[ref] = o
	close(n.ownedChanged)
	n.ownedChanged = make(chan struct{})
	n.mu.Unlock()
	return party.Placement{Lost: lease.Lost(), Release: o.release}
}

// release gives the lease up once the room is dropped, and tells the nodes
// that relayed it, so that they place it anew at once.
func (o *owned) release() {
	n := o.n
	defer n.releasing.Done()
	n.mu.Lock()
	if n.owned[o.ref] == o {
		delete(n.owned, o.ref)
	}
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), n.joinTimeout)
	defer cancel()
	if err := o.lease.Release(ctx); err != nil && !errors.Is(err, ErrLeaseLost) && !errors.Is(err, ErrClosed) {
		n.log.Warn("cluster: releasing a room's lease", "party", o.ref.party, "room", o.ref.room, "err", err)
	}
	o.mu.Lock()
	nodes := make([]string, 0, len(o.fanouts))
	for node := range o.fanouts {
		nodes = append(nodes, node)
	}
	o.mu.Unlock()
	for _, node := range nodes {
		n.publish(node, o.envelope(kindGone, 0, nil))
	}
}

func (o *owned) envelope(k kind, seq uint64, payload []byte) *envelope {
	return &envelope{kind: k, token: o.lease.Token(), party: o.ref.party, room: o.ref.room, from: o.n.name, seq: seq, payload: payload}
}

func (o *owned) fanout(node string) *fanout {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.fanouts[node]
	if f == nil {
		f = &fanout{o: o, node: node}
		o.fanouts[node] = f
	}
	return f
}

// fanout implements party.Fanout: a room's broadcasts to one node. It
// also keeps which of the node's clients it last said are congested.
type fanout struct {
	o    *owned
	node string

	congMu    sync.Mutex
	congested map[uint64]bool // by seq: marked congested here
	expiry    *time.Timer     // clears them if no report comes
}

func (f *fanout) Broadcast(msg party.Message, without []string) {
	k := kindBroadcastText
	if msg.IsBinary() {
		k = kindBroadcastBinary
	}
	f.o.n.publish(f.node, f.o.envelope(k, 0, broadcastPayload(without, msg.Bytes())), msg.Bytes())
}

// remote is a connection held by another node, joined to a room run here.
type remote struct {
	ref      roomRef
	rc       *party.Remote   // nil until JoinRemote returns; under the Node's mu
	early    []party.Message // what the client sent before that, in order; under the Node's mu
	handled  atomic.Uint64   // messages handled so far
	credited atomic.Uint64   // the count in the last credit sent
}

// link implements party.Link for one remote connection.
type link struct {
	f   *fanout
	seq uint64
}

func (l *link) Joined()              { l.f.o.n.publish(l.f.node, l.f.o.envelope(kindJoined, l.seq, nil)) }
func (l *link) Fanout() party.Fanout { return l.f }

func (l *link) Send(msg party.Message) error {
	k := kindSendText
	if msg.IsBinary() {
		k = kindSendBinary
	}
	l.f.o.n.publish(l.f.node, l.f.o.envelope(k, l.seq, msg.Bytes()))
	return nil
}

func (l *link) Close(code party.StatusCode, reason string) {
	l.f.o.n.publish(l.f.node, l.f.o.envelope(kindClose, l.seq, closeStatus(int(code), reason)))
}

// toOwner handles a message from a node holding clients of a room run here.
func (n *Node) toOwner(e envelope, m *nats.Msg) {
	ref := roomRef{e.party, e.room}
	n.mu.Lock()
	o := n.owned[ref]
	n.mu.Unlock()
	if o == nil && e.kind == kindJoin {
		// The join may have overtaken this node's claim: the claim's reply
		// is still on its way here when the claiming node's relays learn
		// of it from the bucket.
		go n.joinWhenOwned(e, m)
		return
	}
	if o == nil || o.lease.Token() != e.token {
		n.stale(e, m)
		return
	}
	switch e.kind {
	case kindJoin:
		go n.joinRemote(o, e)
	case kindFetch:
		go n.fetch(o, e, m)
	case kindText, kindBinary, kindLeave:
		n.fromClient(e)
	case kindBroadcast:
		n.broadcastHere(e)
	case kindCongested:
		n.congestion(o, e)
	case kindCreditQuery:
		n.answerCredit(e)
	}
}

// congestion applies a holding node's report of its congested clients.
func (n *Node) congestion(o *owned, e envelope) {
	rd := reader{e.payload, nil}
	count := rd.uvarint()
	if count > uint64(len(e.payload)) {
		rd.err = errMalformed
	}
	now := make(map[uint64]bool)
	for i := uint64(0); i < count && rd.err == nil; i++ {
		now[rd.uvarint()] = true
	}
	if rd.err != nil || len(rd.b) != 0 {
		n.log.Warn("cluster: dropped a malformed congestion report", "from", e.from, "party", e.party, "room", e.room)
		return
	}
	o.fanout(e.from).setCongested(now)
}

// setCongested marks the node's clients in now congested, and those it no
// longer lists clear; with any congested, it clears them all unless a
// report comes within congestionExpiry.
func (f *fanout) setCongested(now map[uint64]bool) {
	f.congMu.Lock()
	defer f.congMu.Unlock()
	f.setCongestedLocked(now)
}

func (f *fanout) setCongestedLocked(now map[uint64]bool) {
	for seq := range f.congested {
		if !now[seq] {
			f.o.n.remoteCongested(f.node, f.o.ref, seq, false)
		}
	}
	marked := make(map[uint64]bool, len(now))
	for seq := range now {
		// One still joining is left out, to be marked at the next report.
		if f.congested[seq] || f.o.n.remoteCongested(f.node, f.o.ref, seq, true) {
			marked[seq] = true
		}
	}
	f.congested = marked
	if f.expiry != nil {
		f.expiry.Stop()
		f.expiry = nil
	}
	if len(marked) > 0 {
		var t *time.Timer
		t = time.AfterFunc(congestionExpiry, func() {
			f.congMu.Lock()
			defer f.congMu.Unlock()
			if f.expiry == t {
				f.o.n.log.Warn("cluster: no congestion report from a node; its clients are taken as clear", "node", f.node, "party", f.o.ref.party, "room", f.o.ref.room)
				f.setCongestedLocked(nil)
			}
		})
		f.expiry = t
	}
}

// remoteCongested marks connection seq of node, in room ref, congested or
// clear; it reports whether the connection is joined here.
func (n *Node) remoteCongested(node string, ref roomRef, seq uint64, congested bool) bool {
	n.mu.Lock()
	var rc *party.Remote
	if rem := n.remotes[connRef{node, seq}]; rem != nil && rem.ref == ref {
		rc = rem.rc
	}
	n.mu.Unlock()
	if rc == nil {
		return false
	}
	rc.Congested(congested)
	return true
}

// broadcastHere broadcasts, in the room run here, what another node asked
// for (party.Room.Broadcast on its relay room, or Node.Broadcast).
func (n *Node) broadcastHere(e envelope) {
	if len(e.payload) == 0 {
		n.log.Warn("cluster: dropped a malformed broadcast", "from", e.from)
		return
	}
	without, data, err := readBroadcast(e.payload[1:])
	if err != nil {
		n.log.Warn("cluster: dropped a malformed broadcast", "from", e.from, "err", err)
		return
	}
	if room := n.host.Room(e.party, e.room); room != nil {
		room.Broadcast(message(e.payload[0] == 1, data), without...)
	}
}

// stale answers a message for a room not run here (any more): a join is
// refused, a request answered 503, a client's message makes its node close
// it with 1012, so that the client reconnects and the room is placed anew.
func (n *Node) stale(e envelope, m *nats.Msg) {
	n.log.Debug("cluster: message for a room not run here", "from", e.from, "kind", e.kind, "party", e.party, "room", e.room)
	status := func(code int, why string) *envelope {
		k := kindRefused
		if e.kind != kindJoin {
			k = kindClose
		}
		return &envelope{kind: k, token: e.token, party: e.party, room: e.room, from: n.name, seq: e.seq, payload: closeStatus(code, why)}
	}
	switch e.kind {
	case kindJoin:
		n.publish(e.from, status(http.StatusServiceUnavailable, "room moved: try again"))
	case kindText, kindBinary, kindCreditQuery:
		n.publish(e.from, status(int(party.StatusServiceRestart), "room moved"))
	case kindFetch:
		n.reply(m, &http.Response{StatusCode: http.StatusServiceUnavailable, Body: http.NoBody}, "room moved: try again")
	}
}

// joinWhenOwned waits up to a second for the room of a join to be owned
// here, then joins the client or refuses it.
func (n *Node) joinWhenOwned(e envelope, m *nats.Msg) {
	ref := roomRef{e.party, e.room}
	deadline := time.NewTimer(time.Second)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		o, changed := n.owned[ref], n.ownedChanged
		n.mu.Unlock()
		if o != nil && o.lease.Token() == e.token {
			n.joinRemote(o, e)
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			n.stale(e, m)
			return
		case <-n.stop:
			n.stale(e, m)
			return
		}
	}
}

// joinRemote joins a client held by e.from to the room, and answers.
func (n *Node) joinRemote(o *owned, e envelope) {
	var jr joinRequest
	if err := json.Unmarshal(e.payload, &jr); err != nil {
		n.log.Warn("cluster: malformed join", "from", e.from, "err", err)
		return
	}
	req, err := http.NewRequest(jr.Method, "http://"+jr.Host+jr.URL, nil)
	if err != nil {
		n.refuse(o, e, http.StatusBadRequest, "malformed request: "+err.Error())
		return
	}
	req.Host, req.Header, req.RemoteAddr, req.RequestURI = jr.Host, jr.Header, jr.RemoteAddr, jr.URL
	if jr.TLS {
		req.TLS = &tls.ConnectionState{}
	}
	ref := connRef{e.from, e.seq}
	l := &link{f: o.fanout(e.from), seq: e.seq}
	ctx, cancel := context.WithTimeout(context.Background(), n.joinTimeout)
	defer cancel()
	rem := &remote{ref: o.ref}
	n.mu.Lock()
	n.remotes[ref] = rem // before the join: the client's first messages may follow its joined at once
	n.mu.Unlock()
	rc, err := n.host.JoinRemote(ctx, o.ref.party, o.ref.room, jr.ID, req, l)
	if err != nil {
		n.mu.Lock()
		delete(n.remotes, ref)
		n.mu.Unlock()
		status := http.StatusServiceUnavailable
		var he *party.HTTPError
		if errors.As(err, &he) {
			status = he.Status
		}
		n.refuse(o, e, status, err.Error())
		return
	}
	n.mu.Lock()
	rem.rc = rc
	// What the client sent while OnConnect ran goes first: under mu, so
	// that fromClient, which now hands messages to rc itself, cannot
	// overtake it (Receive never blocks).
	for _, msg := range rem.early {
		rc.Receive(msg, n.credit(rem, e))
	}
	rem.early = nil
	pending := n.remotes[ref] != rem // left while joining
	n.mu.Unlock()
	if pending {
		rc.Leave(party.StatusAbnormalClosure, "left while joining")
	}
}

func (n *Node) refuse(o *owned, e envelope, status int, why string) {
	n.publish(e.from, o.envelope(kindRefused, e.seq, closeStatus(status, why)))
}

// fromClient hands a client's message, or its leaving, to its connection.
func (n *Node) fromClient(e envelope) {
	ref := connRef{e.from, e.seq}
	n.mu.Lock()
	rem := n.remotes[ref]
	if e.kind == kindLeave && rem != nil {
		delete(n.remotes, ref)
	}
	var rc *party.Remote
	if rem != nil && rem.ref == (roomRef{e.party, e.room}) {
		rc = rem.rc
		if rc == nil && e.kind != kindLeave {
			// Still joining: the client's socket opened when the room
			// said joined, before its OnConnect, and JoinRemote returns
			// after OnConnect. joinRemote hands these to the room first.
			rem.early = append(rem.early, message(e.kind == kindBinary, e.payload))
			n.mu.Unlock()
			return
		}
	}
	n.mu.Unlock()
	if rem == nil || rem.ref != (roomRef{e.party, e.room}) {
		if e.kind != kindLeave {
			n.unknownConnection(e)
		}
		return
	}
	if rc == nil {
		// A leave while joining: joinRemote sees it gone and makes it
		// leave, after what it sent.
		return
	}
	if e.kind == kindLeave {
		code, reason, err := readCloseStatus(e.payload)
		if err != nil {
			code, reason = int(party.StatusAbnormalClosure), ""
		}
		rc.Leave(party.StatusCode(code), reason)
		return
	}
	rc.Receive(message(e.kind == kindBinary, e.payload), n.credit(rem, e))
}

// unknownConnection answers a frame for a connection unknown here (it
// left, or its node was declared gone): its node closes it, and it
// reconnects.
func (n *Node) unknownConnection(e envelope) {
	n.log.Warn("cluster: message for an unknown connection", "from", e.from, "kind", e.kind, "party", e.party, "room", e.room, "seq", e.seq)
	n.publish(e.from, &envelope{kind: kindClose, token: e.token, party: e.party, room: e.room, from: n.name, seq: e.seq,
		payload: closeStatus(int(party.StatusServiceRestart), "connection unknown to the room's node")})
}

// credit returns the callback of a message of rem, which e carried: every
// relayWindow/4 messages handled, it tells the holding node how many of
// the connection's messages are handled so far (a running total, so that a
// lost credit is made up for by the next).
func (n *Node) credit(rem *remote, e envelope) func() {
	return func() {
		if total := rem.handled.Add(1); total-rem.credited.Load() >= relayWindow/4 {
			rem.credited.Store(total)
			n.sendCredit(e, total)
		}
	}
}

// sendCredit tells the node that sent e that total of its connection's
// messages are handled.
func (n *Node) sendCredit(e envelope, total uint64) {
	if n.dropCredits.Load() > 0 && n.dropCredits.Add(-1) >= 0 {
		return // a test loses it
	}
	n.publish(e.from, &envelope{kind: kindCredit, token: e.token, party: e.party, room: e.room, from: n.name, seq: e.seq,
		payload: binary.AppendUvarint(nil, total)})
}

// answerCredit answers a holding node that waits for credit with the
// count of its connection's messages handled so far.
func (n *Node) answerCredit(e envelope) {
	n.mu.Lock()
	rem := n.remotes[connRef{e.from, e.seq}]
	n.mu.Unlock()
	if rem == nil || rem.ref != (roomRef{e.party, e.room}) {
		n.unknownConnection(e)
		return
	}
	n.sendCredit(e, rem.handled.Load())
}

// fetch answers an HTTP request forwarded by another node.
func (n *Node) fetch(o *owned, e envelope, m *nats.Msg) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(e.payload)))
	if err != nil {
		n.reply(m, &http.Response{StatusCode: http.StatusBadRequest, Body: http.NoBody}, "malformed request: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.joinTimeout)
	defer cancel()
	resp, err := n.host.Fetch(o.ref.party, o.ref.room, req.WithContext(ctx))
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, party.ErrDeadlock) {
			status = http.StatusLoopDetected // a cycle of Fetches across nodes
		}
		n.reply(m, &http.Response{StatusCode: status, Body: http.NoBody}, err.Error())
		return
	}
	n.reply(m, resp, "")
}

// reply answers a forwarded request with resp (or a plain-text error).
func (n *Node) reply(m *nats.Msg, resp *http.Response, text string) {
	if m.Reply == "" {
		return
	}
	if text != "" {
		resp.Header = http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
		resp.ContentLength = int64(len(text))
		resp.Body = io.NopCloser(strings.NewReader(text))
	}
	resp.ProtoMajor, resp.ProtoMinor = 1, 1
	var buf bytes.Buffer
	if err := resp.Write(&buf); err != nil {
		n.log.Warn("cluster: writing a forwarded answer", "err", err)
		return
	}
	if err := m.Respond(buf.Bytes()); err != nil {
		n.log.Warn("cluster: answering a forwarded request", "err", err)
	}
}
