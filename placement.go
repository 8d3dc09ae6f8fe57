package party

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Placement: the seam through which a Host becomes one node of many (the
// party/cluster module implements it on NATS). A Host without a Placer runs
// every room itself, and none of this costs it anything but a nil check.
//
// With a Placer, a room's first turn asks it where the room runs. Here: the
// room starts as usual, and the Placement's Lost channel tells when this
// node must stop running it. Elsewhere: the room on this node is a relay
// room, whose Server is the Placement's Relay; the connections that reach
// this node are held here, joined to the room where it runs with
// Relay.Admit before their upgrade is answered, and the node that runs the
// room joins each as a remote connection (Host.JoinRemote), whose sends and
// closes travel back over a Link.

// Placer decides which node runs each room. Place is called in a room's
// first turn, before its storage opens and its Server is built; it may
// block (claiming the room, or waiting for another node's claim to end)
// until ctx ends. An error fails the room's start, as an OnStart error does:
// a connection gets 1011 with the error as reason, a request 500, and the
// next one tries again.
type Placer interface {
	Place(ctx context.Context, party, room string) (Placement, error)
}

// Placement is a Placer's answer for one room.
type Placement struct {
	// Relay, if set, means the room runs on another node: this node's room
	// runs Relay as its Server, and opens no storage and no alarm. Nil means
	// the room runs here.
	Relay Relay

	// Lost, if set, is closed when this node must stop running the room
	// (its claim is gone, or for a relay, the room's node is). The Host then
	// drops the room at once: its connections are closed with 1012
	// (StatusServiceRestart, reason "room moved", so that clients
	// reconnect), and none of its handlers runs again, OnClose included.
	// The next request for the room builds a new one, placed anew. If Lost
	// closes while the room starts and its start then fails (OnStart's
	// storage write refused, say), the request that started it does not
	// fail for the move: the room is placed anew for it, up to 3 times.
	Lost <-chan struct{}

	// Release, if set, is called once, on a goroutine of its own, when the
	// room is dropped (idle, lost or Shutdown), after its storage is closed.
	Release func()
}

// Relay is the Server of a room that runs on another node. Besides Admit,
// it implements the handlers it needs (OnMessage and OnClose to forward
// what the clients held here say and when they leave, OnRequest to forward
// HTTP requests), which the room calls as it calls any Server's, with one
// exception: once the room is placed, OnRequest is called outside the
// room's turn, possibly concurrently with itself and the other handlers.
// Holding the turn while the other node answers would stall the clients
// held here for that long, and a cycle of Fetches between nodes would wait
// on it instead of being found. A Fetch from a room's handler carries the
// rooms waiting for it in the Party-Call-Chain header, which OnRequest
// must forward, and the other node's Host.Fetch refuses with ErrDeadlock
// (which OnRequest should answer as 508 Loop Detected).
type Relay interface {
	Server
	// Admit joins connection id, whose upgrade request is r, to the room
	// where it runs, and returns once it is a member there, so that the
	// client's socket opens only then ("open means joined", across nodes).
	// It is called in the relay room's turn, before the upgrade is
	// answered. An error refuses the upgrade: an *HTTPError with its status,
	// any other error with 503.
	Admit(id string, r *http.Request) error
	// Broadcast is Room.Broadcast called on the relay room (by code that
	// holds it from Host.Room, such as a background job): it must reach
	// every member of the room where it runs, but those whose id is in
	// without, as the room's own Broadcast would. It must not block.
	Broadcast(msg Message, without []string)
	// Congested is called when connection c, held here, goes over its
	// high-water mark (congested true) or back under it, or closes (false);
	// see Host.SendQueueMessages. The relay room already holds its own
	// clients back; the Relay tells the room where it runs, whose members
	// it holds back too (Remote.Congested there). It is called with c's
	// lock held, possibly inside a call of c.Send: it must not block, nor
	// call c's methods, nor wait for a lock held around c.Send.
	Congested(c *Connection, congested bool)
	// Abandon is called, in the turn, when the upgrade of connection id
	// fails after Admit succeeded (the client went away during the
	// handshake): the connection will not join here, and the room where it
	// runs must let it go.
	Abandon(id string)
}

// Link carries what a room does to one connection held by another node
// (given to JoinRemote). Its methods are called from the room's handlers and
// from any goroutine that sends; they must not block on the network, and
// must deliver in the order of the calls made for the room, across all its
// connections and Fanouts, since that is the order the room did things in.
type Link interface {
	// Joined says that the connection is now a member of the room: what
	// the room broadcasts after this reaches it. It is called in the room's
	// turn, before the connection's OnConnect.
	Joined()
	// Send delivers msg to the connection.
	Send(msg Message) error
	// Close closes the connection with code and reason, after what was
	// sent to it before.
	Close(code StatusCode, reason string)
	// Fanout returns the room's Fanout to the connection's node: the same
	// value (compared with ==) for every connection of the room held there.
	Fanout() Fanout
}

// Fanout delivers a room's broadcasts to the members held by one other
// node: Room.Broadcast calls it once per node, whatever the number of the
// node's members, and the node writes to its own sockets.
type Fanout interface {
	// Broadcast delivers msg to every member of the room held by the node,
	// but those whose id is in without.
	Broadcast(msg Message, without []string)
}

// placedRelay returns key's room, with a reference taken, if it is already
// placed elsewhere (a relay room), else nil: plain requests to a relay room
// go to its Relay's OnRequest without its turn (see Relay).
func (h *Host) placedRelay(key roomKey) *Room {
	if h.Placer == nil {
		return nil
	}
	if v, ok := h.rooms.Load(key); !ok || !v.(*Room).relayed.Load() {
		return nil
	}
	room, err := h.acquire(key, false)
	if err != nil {
		return nil
	}
	if !room.relayed.Load() || room.isLost() {
		room.release(false)
		return nil
	}
	return room
}

// ErrElsewhere is returned by JoinRemote for a room that this node does not
// run: its Placer placed it on another node.
var ErrElsewhere = errors.New("party: room runs on another node")

// Remote is a connection held by another node, joined to a room that runs
// on this one (see [Host.JoinRemote]). It is the far side's end of the
// connection: what the client says goes in with Receive, and its closing
// with Leave. Its methods are safe to call from any goroutine and never
// block.
type Remote struct {
	c      *Connection
	link   Link
	fanout Fanout // link.Fanout()

	mu          sync.Mutex
	in          []remoteMessage // given to Receive, not yet handled
	running     bool            // a goroutine handles in
	left        bool            // Leave was called
	leaveCode   StatusCode      // Leave's status, recorded once the messages before it are handled
	leaveReason string
	done        bool // the connection is out of the room
}

type remoteMessage struct {
	msg     Message
	handled func()
}

// JoinRemote joins connection id, held by another node, to room (party,
// room), as if it had connected to this Host with the upgrade request req
// (OnConnect sees req: its URL, headers and RemoteAddr). The room must run
// here: if this Host's Placer places it elsewhere, JoinRemote returns
// ErrElsewhere. It takes the room's turn (waiting until ctx ends), calls
// link.Joined, runs OnConnect, and returns once OnConnect has returned.
//
// The connection then behaves as one of the room's own: Send, Broadcast and
// Close reach it through link, GetConnections yields it, and the room's
// handlers see its messages (Remote.Receive) and its end (Remote.Leave).
// It counts toward MaxConnectionsPerRoom and keeps the room alive until it
// leaves. Keepalive, write timeouts and send queues are the holding node's
// business: its own Host applies them to the socket.
func (h *Host) JoinRemote(ctx context.Context, party, room, id string, req *http.Request, link Link) (*Remote, error) {
	if link == nil {
		return nil, errors.New("party: JoinRemote with a nil Link")
	}
	fanout := link.Fanout()
	if fanout == nil {
		return nil, errors.New("party: JoinRemote with a Link whose Fanout is nil")
	}
	if !h.enter() {
		return nil, ErrShutdown
	}
	key := roomKey{party, room}
	r, err := h.joinRemote(ctx, key, id, req, link, fanout)
	if err != nil {
		h.leave()
		return nil, err
	}
	return r, nil
}

func (h *Host) joinRemote(ctx context.Context, key roomKey, id string, req *http.Request, link Link, fanout Fanout) (*Remote, error) {
	if err := checkID("room id", key.id); err != nil {
		return nil, err
	}
	if err := checkID("connection id", id); err != nil {
		return nil, err
	}
	room, err := h.acquire(key, true)
	if err != nil {
		return nil, err
	}
	if err := room.lockContext(ctx); err != nil {
		room.release(true)
		return nil, err
	}
	if room.relay != nil {
		room.unlock()
		room.release(true)
		return nil, ErrElsewhere
	}
	rc := &Remote{link: link, fanout: fanout}
	c := &Connection{id: id, uri: requestURI(req), remoteAddr: req.RemoteAddr, opened: time.Now(), room: room, tags: []string{id}, remote: rc}
	rc.c = c
	stats := &room.factory.stats
	stats.opened.Add(1)
	stats.connections.Add(1)
	joined := room.join(c, req)
	room.unlock()
	if !joined {
		rc.finish(false)
		return nil, fmt.Errorf("party: joining the room: %w", c.failure())
	}
	return rc, nil
}

// ID returns the connection's id.
func (rc *Remote) ID() string { return rc.c.id }

// Receive hands msg, a message from the client, to the room's OnMessage.
// Messages are handled one at a time, in the order given; handled, if not
// nil, is called once msg has been handled (or dropped, the connection
// having left), on the goroutine that handles the room's messages. A
// message given after Leave is dropped.
func (rc *Remote) Receive(msg Message, handled func()) {
	rc.mu.Lock()
	if rc.left {
		rc.mu.Unlock()
		if handled != nil {
			handled()
		}
		return
	}
	rc.in = append(rc.in, remoteMessage{msg, handled})
	rc.startLocked()
	rc.mu.Unlock()
}

// Congested says that the client's socket, on its node, is over its
// high-water mark (congested true) or back under it (false); see
// Host.SendQueueMessages and Relay.Congested. While it is congested, the
// room reads no further message from any of its members, as for a
// congested socket of this Host, so that TCP slows the senders to the pace
// of the slow reader. Judging a slow reader (Host.SlowClientTimeout) is its
// node's business, as are its queue's hard bounds. The connection's end
// clears it. Because what carries Congested between nodes may lose a
// message, the holding node should repeat it, and the caller clear it when
// the repeats stop.
func (rc *Remote) Congested(congested bool) {
	c := rc.c
	c.mu.Lock()
	c.setCongestedLocked(congested && !c.closing.Load())
	c.mu.Unlock()
}

// Leave says that the client's socket closed with code and reason (1006
// if it broke, or if its node is gone). As with a socket of this Host,
// whose close frame is read after the messages before it, the messages
// already given to Receive are handled first; then the connection closes
// with code and reason (unless the server closed it first) and leaves the
// room (OnClose). Calling it again does nothing.
func (rc *Remote) Leave(code StatusCode, reason string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.left {
		return
	}
	rc.left, rc.leaveCode, rc.leaveReason = true, code, reason
	rc.startLocked()
}

func (rc *Remote) startLocked() {
	if !rc.running && !rc.done {
		rc.running = true
		go rc.run()
	}
}

// run handles what Receive and Leave queued, then goes away.
func (rc *Remote) run() {
	c := rc.c
	r := c.room
	stats := &r.factory.stats
	for {
		rc.mu.Lock()
		batch := rc.in
		rc.in = nil
		leaving := rc.left && len(batch) == 0
		if len(batch) == 0 && !leaving {
			rc.running = false
			rc.mu.Unlock()
			return
		}
		code, reason := rc.leaveCode, rc.leaveReason
		rc.mu.Unlock()
		if leaving {
			c.mu.Lock()
			c.setClosingLocked(code, reason, nil, ClosedByClient)
			c.mu.Unlock()
			rc.finish(true)
			r.host.leave()
			return
		}
		for _, m := range batch {
			stats.received(len(m.msg.Bytes()))
			r.received.Add(1)
			r.flow.wait()
			if !c.isClosing() {
				r.handleMessage(c, m.msg)
			}
			if m.handled != nil {
				m.handled()
			}
		}
	}
}

// finish takes the connection out of its room (OnClose, if it joined) and
// gives back the room's references. The caller then calls Host.leave
// (JoinRemote for a failed join, run for a connection that leaves).
func (rc *Remote) finish(joined bool) {
	rc.mu.Lock()
	rc.done, rc.running = true, false
	rest := rc.in
	rc.in = nil
	rc.mu.Unlock()
	for _, m := range rest {
		if m.handled != nil {
			m.handled()
		}
	}
	rc.c.ended(joined)
}

// remoteSend is Send for a remote connection: straight to its Link.
func (c *Connection) remoteSend(msg Message) error {
	if c.closing.Load() {
		c.room.factory.stats.refusedSend.Add(1)
		return ErrConnectionClosed
	}
	if err := c.remote.link.Send(msg); err != nil {
		c.room.factory.stats.refusedSend.Add(1)
		return err
	}
	c.room.factory.stats.sent(1, len(msg.Bytes()))
	return nil
}

// remoteClose is Close for a remote connection: the Link closes the socket
// on its node, whose Leave then takes the connection out of the room.
func (c *Connection) remoteClose(code StatusCode, reason string, err error, why CloseReason) {
	c.mu.Lock()
	first := c.setClosingLocked(code, reason, err, why)
	code, reason = c.code, c.reason
	c.mu.Unlock()
	if first {
		c.remote.link.Close(code, reason)
	}
}

// place asks the Host's Placer, if any, where the room runs; the caller
// holds the turn, before the room's storage opens.
func (r *Room) place(ctx context.Context) error {
	p := r.host.Placer
	if p == nil || r.placed {
		return nil
	}
	// Place may wait (for a claim to expire): Shutdown ends the wait.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.host.stopping, cancel)()
	pl, err := p.Place(ctx, r.key.party, r.key.id)
	if err != nil {
		return fmt.Errorf("party: placing the room: %w", err)
	}
	r.placed, r.relay, r.lostCh = true, pl.Relay, pl.Lost
	r.relayed.Store(pl.Relay != nil) // after r.relay: Broadcast reads it from any goroutine
	r.life.Lock()
	r.releasePlacement = pl.Release
	dead := r.dead
	r.life.Unlock()
	if dead {
		r.runRelease()
	}
	return nil
}

// watchPlacement starts watching the Placement's Lost, once. start calls it
// in the turn once the room's storage is open, not before: a room lost
// while its storage opened would be dropped before the handle existed, so
// the handle would never be closed, and Release would run before it was.
func (r *Room) watchPlacement() {
	lost := r.lostCh
	if lost == nil || r.watchingLost {
		return
	}
	r.watchingLost = true
	done := r.done
	go func() {
		select {
		case <-lost:
			r.lose()
		case <-done:
		}
	}()
}

// isLost reports whether the room's Placement is lost (its Lost closed),
// whether or not the room has been dropped for it yet.
func (r *Room) isLost() bool {
	select {
	case <-r.lostCh:
		return true
	default:
		return r.lost.Load()
	}
}

// lose drops the room at once: its node may no longer run it. A
// connection that joins after the snapshot taken here is closed by join,
// which looks at lost once it has added the connection.
func (r *Room) lose() {
	r.lost.Store(true)
	r.drop()
	for _, c := range r.snapshot() {
		c.closeAfterQueue(StatusServiceRestart, "room moved", nil, ClosedMoved)
	}
}

// runRelease calls the Placement's Release once, on its own goroutine.
func (r *Room) runRelease() {
	r.life.Lock()
	f := r.releasePlacement
	r.releasePlacement = nil
	r.life.Unlock()
	if f != nil {
		go f()
	}
}
