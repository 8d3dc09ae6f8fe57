package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of [OwnersConfig].
const (
	DefaultOwnersBucket = "party_owners"
	DefaultLeaseTTL     = 5 * time.Second
)

// OwnersConfig configures [NewOwners]. Every node of a cluster must use the
// same Bucket and TTL (NewOwners refuses a bucket whose TTL differs).
type OwnersConfig struct {
	// Node names this node to the others: the value a claim records, which
	// Owners.Owner and HeldError return so that a node can relay to the
	// owner. Required; unique per live node.
	Node string
	// Bucket is the JetStream key-value bucket of the leases. Defaults to
	// DefaultOwnersBucket; created if absent, with History 1 and TTL.
	Bucket string
	// TTL is the bucket's TTL: the server removes a lease that was not
	// renewed for TTL, after which another node can claim the room.
	// Defaults to DefaultLeaseTTL.
	TTL time.Duration
	// Margin is how long before the server could remove an unrenewed lease
	// this node declares it lost: a lease is valid until its last
	// successful renewal's send time + TTL - Margin, on the local monotonic
	// clock. It must cover the clocks' rate drift over a TTL and the time
	// the room needs to stop acting. Defaults to TTL/4; must be under
	// TTL*2/3, so that a lease has two renewals (every TTL/3) before it is
	// declared lost.
	Margin time.Duration
	// Replicas is the bucket's replica count when NewOwners creates it.
	// Defaults to 1 (a single server's disk); use 3 on a cluster of NATS
	// servers, so that leases survive the loss of one server.
	Replicas int
}

// Owners claims, renews and releases the leases of rooms for one node: a room
// has at most one live lease at a time (see the package documentation for
// the assumptions). Its methods are safe for concurrent use.
type Owners struct {
	kv     jetstream.KeyValue
	node   string
	ttl    time.Duration
	margin time.Duration
	every  time.Duration // renewal interval: ttl/3

	mu     sync.Mutex
	leases map[string]*Lease // by room key: this node's live leases
	closed bool
	wg     sync.WaitGroup // renewal loops

	// dropRenewals makes renewals fail without being sent (tests).
	dropRenewals atomic.Bool
}

// Owner is the holder of a room's lease, as read from the bucket.
type Owner struct {
	// Node is the holder's OwnersConfig.Node.
	Node string
	// Token is the lease's fencing token: the revision of the claim that
	// created it. A later claim of the room has a greater token.
	Token uint64
	// Revision is the lease's current revision (its last renewal).
	Revision uint64
}

// leaseValue is the JSON value of a lease in the bucket.
type leaseValue struct {
	Node  string `json:"node"`
	Nonce string `json:"nonce"`           // this claim's own, among the node's claims
	Token uint64 `json:"token,omitempty"` // 0 in the claim itself: its revision is the token
}

// NewOwners opens (creating it if absent) the lease bucket described by cfg
// on js.
func NewOwners(ctx context.Context, js jetstream.JetStream, cfg OwnersConfig) (*Owners, error) {
	if cfg.Node == "" {
		return nil, errors.New("cluster: OwnersConfig.Node is empty")
	}
	cfg.Bucket = cmp.Or(cfg.Bucket, DefaultOwnersBucket)
	cfg.TTL = cmp.Or(cfg.TTL, DefaultLeaseTTL)
	cfg.Margin = cmp.Or(cfg.Margin, cfg.TTL/4)
	if cfg.Margin <= 0 || cfg.Margin >= cfg.TTL*2/3 {
		return nil, fmt.Errorf("cluster: OwnersConfig.Margin %v must be in (0, %v)", cfg.Margin, cfg.TTL*2/3)
	}
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "party: the owner of each room",
		History:     1,
		TTL:         cfg.TTL,
		Replicas:    max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: bucket %s: %w", cfg.Bucket, err)
	}
	if st.TTL() != cfg.TTL {
		return nil, fmt.Errorf("cluster: bucket %s has TTL %v, this node wants %v", cfg.Bucket, st.TTL(), cfg.TTL)
	}
	return &Owners{
		kv: kv, node: cfg.Node, ttl: cfg.TTL, margin: cfg.Margin, every: cfg.TTL / 3,
		leases: make(map[string]*Lease),
	}, nil
}

// openBucket returns the bucket cfg.Bucket, creating it with cfg if absent.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) { // another node, just now
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// Node returns this node's name.
func (o *Owners) Node() string { return o.node }

// Claim takes the lease of room in party for this node, if no live lease
// holds it: the claim is a create-if-absent of the room's key, so of any
// number of concurrent claims on any nodes exactly one succeeds. The returned
// Lease is renewed in the background until it is released or lost.
//
// If a live lease holds the room (this node's included), Claim returns a
// *[HeldError] (errors.Is(err, ErrHeld)) naming its node. Any other error
// means the claim may or may not have been recorded: if it was, the key
// expires within the TTL, since nothing renews it.
func (o *Owners) Claim(ctx context.Context, party, room string) (*Lease, error) {
	key, err := roomKey(party, room)
	if err != nil {
		return nil, err
	}
	if err := o.heldHere(key); err != nil {
		return nil, err
	}
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	v := leaseValue{Node: o.node, Nonce: hex.EncodeToString(nonce)}
	first, _ := json.Marshal(v) // a struct of strings and a number
	for range 3 {
		sent := time.Now()
		rev, err := o.kv.Create(ctx, key, first)
		if err == nil {
			v.Token = rev
			return o.start(party, room, key, v, rev, sent)
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("cluster: claim %s: %w", key, err)
		}
		own, err := o.owner(ctx, key)
		if errors.Is(err, ErrNoOwner) {
			continue // expired or released since: claim again
		}
		if err != nil {
			return nil, err
		}
		return nil, &HeldError{Owner: own}
	}
	return nil, fmt.Errorf("cluster: claim %s: the key kept changing", key)
}

// heldHere returns a *HeldError if this node holds a live lease on key.
func (o *Owners) heldHere(key string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	if l := o.leases[key]; l != nil && l.Valid() {
		return &HeldError{Owner: Owner{Node: o.node, Token: l.token, Revision: l.revision()}}
	}
	return nil
}

// start registers and starts renewing the lease just claimed.
func (o *Owners) start(party, room, key string, v leaseValue, rev uint64, sent time.Time) (*Lease, error) {
	value, _ := json.Marshal(v)
	ctx, cancel := context.WithCancel(context.Background())
	l := &Lease{
		o: o, party: party, room: room, key: key, nonce: v.Nonce, token: rev, value: value,
		rev: rev, sent: sent, lost: make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		cancel()
		close(l.done)
		err := l.Release(context.Background())
		return nil, errors.Join(ErrClosed, err)
	}
	o.leases[key] = l
	o.wg.Add(1)
	o.mu.Unlock()
	go l.run()
	return l, nil
}

// forget drops l from the live leases, if it is still registered.
func (o *Owners) forget(l *Lease) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.leases[l.key] == l {
		delete(o.leases, l.key)
	}
}

// Owner returns the live lease holding room in party, or an error wrapping
// ErrNoOwner if none does. The answer is a read of the bucket: by the time it
// returns, the lease may have expired or been released.
func (o *Owners) Owner(ctx context.Context, party, room string) (Owner, error) {
	key, err := roomKey(party, room)
	if err != nil {
		return Owner{}, err
	}
	return o.owner(ctx, key)
}

func (o *Owners) owner(ctx context.Context, key string) (Owner, error) {
	own, _, err := o.read(ctx, key)
	return own, err
}

// read returns the lease stored under key and its nonce.
func (o *Owners) read(ctx context.Context, key string) (Owner, string, error) {
	e, err := o.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Owner{}, "", fmt.Errorf("%w: %s", ErrNoOwner, key)
	}
	if err != nil {
		return Owner{}, "", fmt.Errorf("cluster: owner of %s: %w", key, err)
	}
	var v leaseValue
	if err := json.Unmarshal(e.Value(), &v); err != nil || v.Node == "" {
		return Owner{}, "", fmt.Errorf("cluster: owner of %s: not a lease: %q", key, e.Value())
	}
	own := Owner{Node: v.Node, Token: cmp.Or(v.Token, e.Revision()), Revision: e.Revision()}
	return own, v.Nonce, nil
}

// Token returns the fencing token of this node's lease on room in party, if
// the lease is valid now, or an error wrapping ErrNoOwner. It is the function
// a [Store] asks before opening a room or writing its alarm (StoreConfig.Token).
func (o *Owners) Token(party, room string) (uint64, error) {
	key, err := roomKey(party, room)
	if err != nil {
		return 0, err
	}
	o.mu.Lock()
	l := o.leases[key]
	o.mu.Unlock()
	if l == nil || !l.Valid() {
		return 0, fmt.Errorf("%w: node %s holds no valid lease on %s", ErrNoOwner, o.node, key)
	}
	return l.token, nil
}

// Close releases every lease this node holds (each room stops being owned
// here at once, and can be claimed elsewhere without waiting for the TTL),
// waits for their renewal loops to end, and makes later Claims fail with
// ErrClosed. It returns the errors of the releases that failed.
func (o *Owners) Close(ctx context.Context) error {
	o.mu.Lock()
	o.closed = true
	var held []*Lease
	for _, l := range o.leases {
		held = append(held, l)
	}
	o.mu.Unlock()
	var errs []error
	for _, l := range held {
		if err := l.Release(ctx); err != nil && !errors.Is(err, ErrLeaseLost) {
			errs = append(errs, err)
		}
	}
	o.wg.Wait()
	return errors.Join(errs...)
}
