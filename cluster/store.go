package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"party/storage"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of [StoreConfig].
const (
	DefaultStoreStream  = "PARTY_STORAGE"
	DefaultStoreSubject = "party.storage"
	DefaultAlarmBucket  = "party_alarms"
	DefaultCompactEvery = 1000
	DefaultStoreTimeout = 10 * time.Second
)

// StoreConfig configures [NewStore]. Every node of a cluster must use the
// same Stream, Subject and AlarmBucket.
type StoreConfig struct {
	// Stream is the JetStream stream holding every room's records.
	// Defaults to DefaultStoreStream; created if absent (file storage, no
	// limits, subject rollups allowed).
	Stream string
	// Subject prefixes the rooms' subjects: a room's records are published
	// on Subject.<party>.<room>, each name encoded by EncodeName. Defaults
	// to DefaultStoreSubject.
	Subject string
	// AlarmBucket is the key-value bucket of the rooms' alarms. Defaults to
	// DefaultAlarmBucket; created if absent.
	AlarmBucket string
	// Replicas is the replica count of the stream and the alarm bucket when
	// NewStore creates them. Defaults to 1: the data is on one NATS server's
	// disk, and lost with it. 3, on a cluster of NATS servers, keeps every
	// acknowledged write through the loss of any one server.
	Replicas int
	// Token returns this node's fencing token for a room (Owners.Token):
	// Open and SetAlarm refuse a room for which it fails, and a write fails
	// with ErrFenced once it fails or returns another token than the room
	// was opened with. Nil means no leases: every node writes with token 0,
	// and only the revision checks keep concurrent writers apart.
	Token func(party, room string) (uint64, error)
	// CompactEvery is how many records a room's subject may gain before the
	// room rewrites its whole state as one snapshot that replaces them.
	// Defaults to DefaultCompactEvery.
	CompactEvery int
	// Timeout bounds each call's round trips to the server. Defaults to
	// DefaultStoreTimeout.
	Timeout time.Duration
}

// Store is a [storage.Provider] and a [storage.AlarmStore] on NATS
// JetStream: any node can open any room's storage and see what the room's
// previous owner wrote, and each room's writes are fenced by its owner's
// lease. See the package documentation for its design and guarantees. Its
// methods, and those of the handles it opens, are safe for concurrent use.
type Store struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	alarms   jetstream.KeyValue
	cfg      StoreConfig
	maxBytes int // the most bytes a record may have: the server's max_payload less room for headers

	mu    sync.Mutex
	rooms map[string]*storeRoom // open rooms, by room key
}

var (
	_ storage.Provider   = (*Store)(nil)
	_ storage.AlarmStore = (*Store)(nil)
)

// recordHeaderRoom is what NewStore keeps free of the server's max_payload
// for a record's headers.
const recordHeaderRoom = 1024

// NewStore opens (creating them if absent) the stream and alarm bucket
// described by cfg on js.
func NewStore(ctx context.Context, js jetstream.JetStream, cfg StoreConfig) (*Store, error) {
	cfg.Stream = cmp.Or(cfg.Stream, DefaultStoreStream)
	cfg.Subject = cmp.Or(cfg.Subject, DefaultStoreSubject)
	cfg.AlarmBucket = cmp.Or(cfg.AlarmBucket, DefaultAlarmBucket)
	cfg.Replicas = max(cfg.Replicas, 1)
	cfg.CompactEvery = cmp.Or(cfg.CompactEvery, DefaultCompactEvery)
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultStoreTimeout)
	stream, err := js.Stream(ctx, cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		stream, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        cfg.Stream,
			Description: "party: the storage of every room",
			Subjects:    []string{cfg.Subject + ".>"},
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			AllowRollup: true,
			AllowDirect: true,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			stream, err = js.Stream(ctx, cfg.Stream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: stream %s: %w", cfg.Stream, err)
	}
	if !stream.CachedInfo().Config.AllowRollup {
		return nil, fmt.Errorf("cluster: stream %s does not allow rollups", cfg.Stream)
	}
	alarms, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      cfg.AlarmBucket,
		Description: "party: the alarm of each room",
		History:     1,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, err
	}
	return &Store{
		js: js, stream: stream, alarms: alarms, cfg: cfg,
		maxBytes: int(js.Conn().MaxPayload()) - recordHeaderRoom,
		rooms:    make(map[string]*storeRoom),
	}, nil
}

// Open returns a handle on the storage of room in party, loaded from the
// stream. With StoreConfig.Token set, it asks for this node's token first,
// and fails with an error wrapping ErrFenced if there is none, or if a newer
// owner has already opened the room; a newer token than the room's last
// writer's fences the room (see the package documentation), so that the
// previous owner's writes fail from then on.
//
// Handles of the same room opened on the same Store share one in-memory
// copy; each must be closed once.
func (s *Store) Open(party, room string) (storage.Storage, error) {
	var token uint64
	if s.cfg.Token != nil {
		t, err := s.cfg.Token(party, room)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFenced, err)
		}
		token = t
	}
	key, err := roomKey(party, room)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	r := s.rooms[key]
	if r == nil {
		r = &storeRoom{s: s, party: party, id: room, key: key, subject: s.cfg.Subject + "." + key}
		s.rooms[key] = r
	}
	r.refs++
	s.mu.Unlock()
	r.mu.Lock()
	err = r.openWith(token)
	r.mu.Unlock()
	if err != nil {
		s.release(r)
		return nil, err
	}
	return &handle{r: r}, nil
}

// release drops a reference to r, and r with the last one.
func (s *Store) release(r *storeRoom) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.refs--
	if r.refs == 0 && s.rooms[r.key] == r {
		delete(s.rooms, r.key)
	}
}

// context returns a context for one call's round trips.
func (s *Store) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.Timeout)
}

// checkToken returns an error wrapping ErrFenced unless this node still
// holds token for the room (always nil without StoreConfig.Token).
func (s *Store) checkToken(party, room string, token uint64) error {
	if s.cfg.Token == nil {
		return nil
	}
	t, err := s.cfg.Token(party, room)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	if t != token {
		return fmt.Errorf("%w: room %q of party %q was opened with token %d, this node now holds %d", ErrFenced, room, party, token, t)
	}
	return nil
}
