package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"party/storage"
)

// storeRoom is the in-memory copy of one room's store, shared by the handles of
// a Store open on it.
type storeRoom struct {
	s              *Store
	party, id, key string
	subject        string
	refs           int // guarded by Store.mu
	mu             sync.Mutex
	x              index
	loaded         bool   // x and last reflect the subject
	token          uint64 // what this room's writes carry
	last           uint64 // sequence of the subject's last record
	since          int    // records since the last snapshot
	nonce          string // names this load's writes (message ids)
	fenced         error  // once set, every write fails with it
}

// openWith loads the room for a writer holding token, or checks token
// against the loaded room.
func (r *storeRoom) openWith(token uint64) error {
	if r.loaded && token == r.token {
		return nil
	}
	if r.loaded && token < r.token {
		return fmt.Errorf("%w: room %q of party %q is open here with token %d, above %d", ErrFenced, r.id, r.party, r.token, token)
	}
	r.token, r.fenced = token, nil
	return r.load()
}

// load rebuilds the index from the subject and, if this room's token is
// newer than every record's, fences the subject with it. It retries when a
// write lands between the replay and the fence.
func (r *storeRoom) load() error {
	ctx, cancel := r.s.context()
	defer cancel()
	r.loaded = false
	for range 5 {
		newest, err := r.replay(ctx)
		if err != nil {
			return err
		}
		if r.token < newest {
			return fmt.Errorf("%w: room %q of party %q was opened with token %d, above %d", ErrFenced, r.id, r.party, newest, r.token)
		}
		r.loaded = true
		if r.token == newest {
			return nil // this writer (this lease) wrote last: nothing to fence
		}
		err = r.compact(ctx, kindFence)
		if err == nil || !wrongLastSequence(err) {
			return err
		}
		r.loaded = false
	}
	return fmt.Errorf("cluster: room %q of party %q: the subject kept changing while loading", r.id, r.party)
}

// replay reads the subject's records into a fresh index and returns the
// greatest token among them.
func (r *storeRoom) replay(ctx context.Context) (uint64, error) {
	r.x.reset()
	r.last, r.since = 0, 0
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	r.nonce = hex.EncodeToString(nonce)
	lastMsg, err := r.s.stream.GetLastMsgForSubject(ctx, r.subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, r.fail("read", err)
	}
	cons, err := r.s.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     r.subject,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	})
	if err != nil {
		return 0, r.fail("read", err)
	}
	defer func() {
		dctx, cancel := r.s.context()
		defer cancel()
		_ = r.s.stream.DeleteConsumer(dctx, cons.CachedInfo().Name) // else it expires by itself
	}()
	var newest uint64
	for r.last < lastMsg.Sequence {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return 0, r.fail("read", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			rec, err := decodeMsg(m)
			if err != nil {
				return 0, fmt.Errorf("cluster: room %q of party %q: %w", r.id, r.party, err)
			}
			applyRecord(&r.x, rec)
			newest, r.last = max(newest, rec.token), rec.seq
			r.since++
			if rec.kind == kindSnapshot {
				r.since = 0
			}
		}
		if err := batch.Error(); err != nil {
			return 0, r.fail("read", err)
		}
		if n == 0 {
			if err := ctx.Err(); err != nil {
				return 0, r.fail("read", err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return newest, nil
}

// commit publishes one record of ops on the subject, expecting the subject's
// last record to be the one this room saw last, and applies ops to the index
// once the server has stored it. The caller holds r.mu.
func (r *storeRoom) commit(kind string, ops []op) error {
	if err := r.writable(); err != nil {
		return err
	}
	ctx, cancel := r.s.context()
	defer cancel()
	if err := r.publish(ctx, kind, ops); err != nil {
		return err
	}
	if kind == kindSnapshot {
		r.x.reset()
	}
	r.x.apply(ops)
	if r.since >= r.s.cfg.CompactEvery {
		if err := r.compact(ctx, kindSnapshot); errors.Is(err, ErrFenced) {
			r.fenced = err
		}
	}
	return nil
}

// writable returns why the room cannot be written, if it cannot: fenced,
// this node's lease gone, or (after a write whose outcome is unknown) the
// reload failing.
func (r *storeRoom) writable() error {
	if r.fenced != nil {
		return r.fenced
	}
	if err := r.s.checkToken(r.party, r.id, r.token); err != nil {
		r.fenced = err
		return err
	}
	if !r.loaded {
		return r.load()
	}
	return nil
}

// publish appends one record, with the expected last sequence of the
// subject; the message id makes a retried publish a duplicate rather than a
// conflict.
func (r *storeRoom) publish(ctx context.Context, kind string, ops []op) error {
	m := newRecordMsg(r.subject, kind, r.token, ops)
	if len(m.Data) > r.s.maxBytes {
		return fmt.Errorf("%w: a record of %d bytes, over the NATS server's max_payload less %d", storage.ErrValueTooLarge, len(m.Data), recordHeaderRoom)
	}
	id := r.nonce + ":" + strconv.FormatUint(r.last, 10)
	ack, err := r.s.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(r.last), jetstream.WithMsgID(id))
	switch {
	case wrongLastSequence(err):
		if kind == kindFence {
			return err // load replays and tries again
		}
		r.fenced = r.whyFenced(ctx, err)
		return r.fenced
	case err != nil:
		r.loaded = false // it may have landed: reload before the next call
		return r.fail("write", err)
	}
	r.last = ack.Sequence
	r.since++
	if kind != kindWrite {
		r.since = 0
	}
	return nil
}

// compact publishes the whole state as one snapshot replacing the subject's
// records (or, if it is too large for one message, a plain fence record).
func (r *storeRoom) compact(ctx context.Context, kind string) error {
	ops := make([]op, 0, r.x.len())
	size := 0
	for _, k := range r.x.keys() {
		v, _ := r.x.get(k)
		ops = append(ops, op{key: k, value: v})
		size += len(k) + len(v) + 20
	}
	if size > r.s.maxBytes {
		if kind != kindFence {
			r.since = 0 // try again after CompactEvery more records
			return nil
		}
		return r.publish(ctx, kindFence, nil)
	}
	return r.publish(ctx, kindSnapshot, ops)
}

// whyFenced explains a write refused because the subject moved on, reading
// its last record.
func (r *storeRoom) whyFenced(ctx context.Context, cause error) error {
	m, err := r.s.stream.GetLastMsgForSubject(ctx, r.subject)
	if err != nil {
		return fmt.Errorf("%w: room %q of party %q was written by another writer (%v)", ErrFenced, r.id, r.party, cause)
	}
	tok, _ := strconv.ParseUint(m.Header.Get(hdrToken), 10, 64)
	if tok > r.token {
		return fmt.Errorf("%w: room %q of party %q was opened by a newer owner (token %d, this writer's %d)", ErrFenced, r.id, r.party, tok, r.token)
	}
	return fmt.Errorf("%w: room %q of party %q was written by another writer with token %d (this writer's %d)", ErrFenced, r.id, r.party, tok, r.token)
}

// fail wraps a JetStream error of step.
func (r *storeRoom) fail(step string, err error) error {
	return fmt.Errorf("cluster: %s room %q of party %q: %w", step, r.id, r.party, err)
}

// wrongLastSequence reports whether err is JetStream's refusal of a publish
// whose expected last sequence is not the subject's.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
