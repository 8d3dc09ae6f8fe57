package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"party"
)

// envelopeRoom is what a message between nodes may need besides the
// client's message: its kind, token, party, room, node and sequence.
const envelopeRoom = 4096

// Defaults of [Config].
const (
	DefaultPrefix      = "party"
	DefaultJoinTimeout = 5 * time.Second
)

// Config configures [Join]. Every node of a cluster uses the same TTL,
// Prefix, Owners.Bucket and Store settings.
type Config struct {
	// Node is this node's name, unique among live nodes: letters, digits,
	// '-' and '_'. Empty means a fresh random one.
	Node string
	// TTL is the rooms' lease TTL (OwnersConfig.TTL): a node that dies
	// stops owning its rooms within it. Zero means DefaultLeaseTTL.
	TTL time.Duration
	// Prefix starts every NATS subject the nodes use: Prefix.node.<name>
	// for what is sent to a node, Prefix.alive for the nodes' heartbeats.
	// Empty means DefaultPrefix.
	Prefix string
	// Owners configures the leases (Bucket, Margin, Replicas); Join sets its
	// Node and TTL.
	Owners OwnersConfig
	// Store configures the rooms' storage and alarms on JetStream; Join sets
	// its Token, so that writes are fenced by this node's leases.
	Store StoreConfig
	// JoinTimeout bounds how long a node waits for a room's owner to join a
	// client (the client's upgrade waits meanwhile), and for an answer to a
	// request forwarded to the owner. Zero means DefaultJoinTimeout.
	JoinTimeout time.Duration
	// Logger receives what goes wrong between nodes. Nil means the Host's
	// Logger, or slog.Default().
	Logger *slog.Logger
}

// Node is one node of a cluster: a party.Host whose rooms are placed on NATS
// (see the package documentation). Its methods are safe for concurrent use.
type Node struct {
	host        *party.Host
	nc          *nats.Conn
	name        string
	prefix      string
	subject     string // Prefix.node.<name>
	ttl         time.Duration
	joinTimeout time.Duration
	beat        time.Duration // heartbeat interval
	deadAfter   time.Duration // a node unheard for this long is gone
	log         *slog.Logger
	owners      *Owners
	store       *Store

	subs      []*nats.Subscription
	releasing sync.WaitGroup // owned rooms not released yet
	bg        sync.WaitGroup // background work (resumeAlarms)
	stop      chan struct{}
	done      chan struct{}

	dropCredits atomic.Int64 // tests: how many credits to lose, as NATS may

	mu           sync.Mutex
	seen         map[string]time.Time // last heartbeat of each other node
	gone         map[string]bool      // nodes declared gone (until heard again)
	relays       map[roomRef]*relay   // rooms run elsewhere, with clients held here
	owned        map[roomRef]*owned   // rooms run here
	ownedChanged chan struct{}        // closed (and replaced) when a room is owned here
	remotes      map[connRef]*remote  // connections held elsewhere, in rooms run here
	nextSeq      uint64
	leaving      bool
	shutdown     bool
}

// roomRef names a room.
type roomRef struct{ party, room string }

// connRef names a connection held by node, with the sequence number that
// node gave it.
type connRef struct {
	node string
	seq  uint64
}

var nodeName = regexp.MustCompile(`^[-_a-zA-Z0-9]+$`)

// Join makes host one node of the cluster on nc: it sets host.Placer and
// host.Storage (call it before the Host serves), opens the leases' bucket
// and the storage stream (creating them if absent), and starts the node's
// subscriptions and heartbeat. nc stays the caller's: Shutdown does not
// close it.
//
// A client's message travels between nodes as one NATS message, so it must
// fit the server's max_payload (1 MiB by default) with 4 KiB to spare: if
// host.ReadLimit is zero (party.DefaultReadLimit, 1 MiB), Join lowers it to
// what fits (a larger message closes its connection with 1009, as any over
// ReadLimit); if it is set higher than what fits, Join logs a warning, and
// such a message closes its connection with 1009 when it is forwarded.
// Raise max_payload in the server's configuration to carry more.
func Join(ctx context.Context, host *party.Host, nc *nats.Conn, cfg Config) (*Node, error) {
	if cfg.Node == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		cfg.Node = hex.EncodeToString(b)
	}
	if !nodeName.MatchString(cfg.Node) {
		return nil, fmt.Errorf("cluster: node name %q: use letters, digits, '-' and '_'", cfg.Node)
	}
	ttl := cmp.Or(cfg.TTL, cfg.Owners.TTL, DefaultLeaseTTL)
	n := &Node{
		host: host, nc: nc, name: cfg.Node,
		prefix:       cmp.Or(cfg.Prefix, DefaultPrefix),
		ttl:          ttl,
		joinTimeout:  cmp.Or(cfg.JoinTimeout, DefaultJoinTimeout),
		beat:         min(ttl/10, time.Second),
		log:          cmp.Or(cfg.Logger, host.Logger, slog.Default()),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
		seen:         make(map[string]time.Time),
		gone:         make(map[string]bool),
		relays:       make(map[roomRef]*relay),
		owned:        make(map[roomRef]*owned),
		ownedChanged: make(chan struct{}),
		remotes:      make(map[connRef]*remote),
	}
	n.deadAfter = 3 * n.beat
	n.subject = n.nodeSubject(n.name)
	n.log = n.log.With("node", n.name)
	if err := n.open(ctx, cfg); err != nil {
		return nil, err
	}
	fits := nc.MaxPayload() - envelopeRoom
	switch {
	case host.ReadLimit == 0 && fits < party.DefaultReadLimit:
		host.ReadLimit = fits
	case host.ReadLimit > fits:
		n.log.Warn("cluster: Host.ReadLimit is over what the NATS server's max_payload carries: a client message too big for it closes its connection with 1009",
			"max_payload", nc.MaxPayload(), "read_limit", host.ReadLimit)
	}
	host.Storage = n.store
	host.Placer = n
	go n.heartbeat()
	n.background(n.resumeAlarms)
	return n, nil
}

// open opens the leases and the store, and subscribes.
func (n *Node) open(ctx context.Context, cfg Config) error {
	js, err := jetstream.New(n.nc)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	oc := cfg.Owners
	oc.Node, oc.TTL = n.name, n.ttl
	if n.owners, err = NewOwners(ctx, js, oc); err != nil {
		return err
	}
	sc := cfg.Store
	sc.Token = n.owners.Token
	if n.store, err = NewStore(ctx, js, sc); err != nil {
		n.owners.Close(ctx)
		return err
	}
	for subj, handle := range map[string]nats.MsgHandler{n.subject: n.receive, n.prefix + ".alive": n.heard} {
		sub, err := n.nc.Subscribe(subj, handle)
		if err != nil {
			n.unsubscribe()
			n.owners.Close(ctx)
			return fmt.Errorf("cluster: subscribing to %s: %w", subj, err)
		}
		sub.SetPendingLimits(-1, 256<<20) // bounded in bytes: a slow node drops, and says so
		n.subs = append(n.subs, sub)
	}
	if _, ok := ctx.Deadline(); !ok {
		return n.nc.FlushTimeout(DefaultJoinTimeout)
	}
	return n.nc.FlushWithContext(ctx)
}

func (n *Node) unsubscribe() {
	for _, s := range n.subs {
		s.Unsubscribe()
	}
}

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

func (n *Node) nodeSubject(name string) string { return n.prefix + ".node." + name }

// Shutdown hands the node's rooms over: it tells the other nodes it is
// leaving (they stop relaying to it at once), shuts the Host down (its
// clients, and the clients other nodes hold in its rooms, are closed with
// 1012 and reconnect, to any node), releases its leases (the rooms can be
// claimed at once, without waiting for the TTL), and stops. It does not
// close the NATS connection. It returns the Host's Shutdown error, if any.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	if n.shutdown {
		n.mu.Unlock()
		return nil
	}
	n.shutdown, n.leaving = true, true
	n.mu.Unlock()
	n.publishBeat()
	err := n.host.Shutdown(ctx)
	released := make(chan struct{})
	go func() { n.releasing.Wait(); close(released) }()
	select {
	case <-released:
	case <-ctx.Done():
	}
	close(n.stop)
	<-n.done
	n.bg.Wait()
	n.unsubscribe()
	if cerr := n.owners.Close(ctx); cerr != nil && err == nil {
		err = cerr
	}
	n.nc.Flush()
	return err
}

// Place implements party.Placer: it claims the room for this node, or
// relays to the node that holds it. A holder that is gone (no heartbeat) has
// a lease that expires within the TTL: Place waits for that, claiming again
// every 50 ms, for up to TTL plus a second.
func (n *Node) Place(ctx context.Context, partyName, room string) (party.Placement, error) {
	ref := roomRef{partyName, room}
	deadline := time.Now().Add(n.ttl + time.Second)
	for {
		lease, err := n.owners.Claim(ctx, partyName, room)
		if err == nil {
			return n.own(ref, lease), nil
		}
		var held *HeldError
		if !errors.As(err, &held) {
			return party.Placement{}, err
		}
		if held.Owner.Node != n.name && n.alive(held.Owner.Node) {
			r := n.newRelay(ref, held.Owner)
			return party.Placement{Relay: r, Lost: r.lost, Release: r.release}, nil
		}
		// Our own lease, being released, or a gone node's, expiring.
		if time.Now().After(deadline) {
			return party.Placement{}, fmt.Errorf("cluster: room held by node %s, which is gone, and its lease did not expire within the TTL", held.Owner.Node)
		}
		select {
		case <-ctx.Done():
			return party.Placement{}, ctx.Err()
		case <-n.stop:
			return party.Placement{}, ErrClosed
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Broadcast sends msg to every connection of room (party partyName) but
// those whose id is in without, on every node, wherever the room runs: the
// cluster-wide form of party.Host.Room(partyName, room).Broadcast, for code
// outside the room's handlers (a background job). On a node that runs the
// room, or relays it, that is what Host.Room's Broadcast does; elsewhere the
// room's owner is looked up and asked. A room that runs nowhere has nobody
// to reach: Broadcast then does nothing and returns nil. It returns an error
// only if the owner cannot be looked up (NATS unreachable, ctx ended). Like
// Room.Broadcast, it does not wait for delivery.
func (n *Node) Broadcast(ctx context.Context, partyName, room string, msg party.Message, without ...string) error {
	if r := n.host.Room(partyName, room); r != nil {
		r.Broadcast(msg, without...)
		return nil
	}
	own, err := n.owners.Owner(ctx, partyName, room)
	if errors.Is(err, ErrNoOwner) {
		return nil
	}
	if err != nil {
		return err
	}
	e := &envelope{kind: kindBroadcast, token: own.Token, party: partyName, room: room, from: n.name, payload: broadcastRequest(msg, without)}
	n.publish(own.Node, e, msg.Bytes())
	return nil
}

// alive reports whether node has been heard from recently (this node is).
func (n *Node) alive(node string) bool {
	if node == n.name {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.seen[node]
	return ok && !n.gone[node] && time.Since(t) < n.deadAfter
}

// heartbeat publishes this node's heartbeat every beat, and declares gone
// the nodes that have not been heard for deadAfter.
func (n *Node) heartbeat() {
	defer close(n.done)
	t := time.NewTicker(n.beat)
	defer t.Stop()
	n.publishBeat()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.publishBeat()
			n.sweepNodes()
		}
	}
}

func (n *Node) publishBeat() {
	n.mu.Lock()
	payload := []byte(n.name)
	if n.leaving {
		payload = append(payload, '!')
	}
	n.mu.Unlock()
	n.nc.Publish(n.prefix+".alive", payload)
}

// heard records another node's heartbeat; "name!" says it is leaving.
func (n *Node) heard(m *nats.Msg) {
	name := string(m.Data)
	leaving := len(name) > 0 && name[len(name)-1] == '!'
	if leaving {
		name = name[:len(name)-1]
	}
	if name == n.name || !nodeName.MatchString(name) {
		return
	}
	n.mu.Lock()
	if leaving {
		delete(n.seen, name)
		wasGone := n.gone[name]
		n.gone[name] = true
		n.mu.Unlock()
		if !wasGone {
			n.nodeGone(name, "left")
		}
		return
	}
	n.seen[name] = time.Now()
	delete(n.gone, name)
	n.mu.Unlock()
}

// sweepNodes declares gone the nodes unheard for deadAfter.
func (n *Node) sweepNodes() {
	var gone []string
	n.mu.Lock()
	for name, t := range n.seen {
		if time.Since(t) >= n.deadAfter && !n.gone[name] {
			n.gone[name] = true
			gone = append(gone, name)
		}
	}
	n.mu.Unlock()
	for _, name := range gone {
		n.nodeGone(name, "silent")
	}
}

// nodeGone ends what this node shares with node: the rooms it relays to
// node are lost (their clients closed with 1012, to reconnect), and the
// connections node held in rooms run here leave (1006). Its rooms' alarms
// then need a new owner.
func (n *Node) nodeGone(node, why string) {
	n.log.Info("cluster: node gone", "gone", node, "why", why)
	n.mu.Lock()
	var lost []*relay
	for _, r := range n.relays {
		if r.owner == node {
			lost = append(lost, r)
		}
	}
	var left []*party.Remote
	for ref, rem := range n.remotes {
		if ref.node == node {
			if rem.rc != nil { // (one still joining: joinRemote sees it gone and makes it leave)
				left = append(left, rem.rc)
			}
			delete(n.remotes, ref)
		}
	}
	n.mu.Unlock()
	for _, r := range lost {
		r.lose()
	}
	for _, rc := range left {
		rc.Leave(party.StatusAbnormalClosure, "node "+node+" gone")
	}
	n.background(n.resumeAlarms)
}

// background runs f on a goroutine that Shutdown waits for, unless the node
// is shutting down.
func (n *Node) background(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.shutdown {
		return
	}
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		f()
	}()
}

// resumeAlarms starts, here, the rooms with an alarm that no node owns, so
// that their alarms fire: at Join, and when a node is gone.
func (n *Node) resumeAlarms() {
	alarms, err := n.store.Alarms()
	if err != nil {
		if !errors.Is(err, ErrClosed) {
			n.log.Warn("cluster: listing alarms", "err", err)
		}
		return
	}
	for _, a := range alarms {
		select {
		case <-n.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.joinTimeout)
		if _, err := n.owners.Owner(ctx, a.Party, a.Room); errors.Is(err, ErrNoOwner) {
			err := n.host.Call(ctx, a.Party, a.Room, func(party.Server) error { return nil })
			if err != nil && !errors.Is(err, party.ErrElsewhere) && !errors.Is(err, party.ErrShutdown) {
				n.log.Warn("cluster: starting a room for its alarm", "party", a.Party, "room", a.Room, "err", err)
			}
		}
		cancel()
	}
}

// publish sends a message to node, logging a failure (the NATS connection
// is closed or its buffer full while reconnecting: the far node will find
// this node gone).
func (n *Node) publish(node string, e *envelope, tail ...[]byte) {
	size := len(e.payload)
	for _, t := range tail {
		size += len(t)
	}
	buf := append(e.header(size), e.payload...)
	for _, t := range tail {
		buf = append(buf, t...)
	}
	if err := n.nc.Publish(n.nodeSubject(node), buf); err != nil {
		n.log.Warn("cluster: sending to a node", "to", node, "kind", e.kind, "party", e.party, "room", e.room, "err", err)
	}
}

// receive handles a message sent to this node. Messages from one node
// arrive in the order it sent them; receive runs them one at a time, never
// blocking on a room (joins and fetches go on their own goroutines).
func (n *Node) receive(m *nats.Msg) {
	e, err := decode(m.Data)
	if err != nil {
		n.log.Warn("cluster: dropped a message", "err", err, "bytes", len(m.Data))
		return
	}
	switch e.kind {
	case kindJoin, kindText, kindBinary, kindLeave, kindFetch, kindBroadcast, kindCongested, kindCreditQuery:
		n.toOwner(e, m)
	default:
		n.toRelay(e)
	}
}
