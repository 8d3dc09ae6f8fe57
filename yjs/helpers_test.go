package yjs

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
	"party/storage"
)

// fixture is one case of testdata/fixtures.json, written by
// interop/yjs/fixtures.mjs with the npm yjs package.
type fixture struct {
	Name              string
	GC                bool
	Updates           []string
	StateVectors      []string
	Merged            string
	MergedStateVector string
	Diffs             []struct {
		Of       int // index into Updates, -1 for Merged
		SV, Diff string
	}
}

var loadFixtures = sync.OnceValues(func() ([]fixture, error) {
	b, err := os.ReadFile("testdata/fixtures.json")
	if err != nil {
		return nil, err
	}
	var f struct{ Cases []fixture }
	err = json.Unmarshal(b, &f)
	return f.Cases, err
})

func fixtures(t testing.TB) []fixture {
	t.Helper()
	cases, err := loadFixtures()
	if err != nil {
		t.Fatalf("testdata/fixtures.json: %v (regenerate with: cd interop && node yjs/fixtures.mjs)", err)
	}
	return cases
}

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %.20q: %v", s, err)
	}
	return b
}

// updates returns the case's updates decoded from base64.
func (f fixture) updates(t testing.TB) [][]byte {
	out := make([][]byte, len(f.Updates))
	for i, s := range f.Updates {
		out[i] = unb64(t, s)
	}
	return out
}

// benchFrames returns the frames of testdata/bench-text.bin.gz: the final
// state (~1 MB), the state before the last 1000 edits, a state vector from
// halfway, and the last 1000 edits' updates.
func benchFrames(t testing.TB) (final, base, half []byte, edits [][]byte) {
	f, err := os.Open("testdata/bench-text.bin.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(raw)
	var frames [][]byte
	for d.Remaining() > 0 {
		b, err := d.ReadVarBytes()
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, bytes.Clone(b))
	}
	if len(frames) < 4 {
		t.Fatalf("bench-text.bin.gz has %d frames, want at least 4", len(frames))
	}
	return frames[0], frames[1], frames[2], frames[3:]
}

// ---- rooms over real sockets ------------------------------------------------

// testHost is a party Host serving yjs.NewServer rooms over httptest.
type testHost struct {
	t    testing.TB
	host *party.Host
	url  string // ws://…/parties/main/
}

// serveRooms serves rooms built with opts (which may be nil) and kept in
// store (nil: the Host's own MemoryStore). IdleTimeout is negative: a room is
// dropped as soon as its last connection leaves, so the next connection
// builds it again from storage.
func serveRooms(t testing.TB, opts *Options, store storage.Provider) *testHost {
	t.Helper()
	h := party.Handler(func(r *party.Room) party.Server { return NewServer(r, opts) })
	h.Storage = store
	h.IdleTimeout = -1
	h.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
		srv.Close()
	})
	return &testHost{t: t, host: h, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/parties/main/"}
}

// call runs f with the room's Server, in the room's turn.
func (h *testHost) call(room string, f func(s *Server) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.host.Call(ctx, party.DefaultParty, room, func(s party.Server) error { return f(s.(*Server)) })
}

// document returns the room's merged document, through Host.Call.
func (h *testHost) document(room string) []byte {
	h.t.Helper()
	var doc []byte
	if err := h.call(room, func(s *Server) (err error) { doc, err = s.Document(); return err }); err != nil {
		h.t.Fatalf("Document of room %s: %v", room, err)
	}
	return doc
}

// yclient is a client speaking the protocol with this package's encoder.
type yclient struct {
	t    testing.TB
	conn *websocket.Conn
}

// dial connects to room and reads the Server's greeting: its sync step 1,
// whose state vector it returns.
func (h *testHost) dial(room string) (*yclient, []byte) {
	h.t.Helper()
	c := h.connect(room)
	return c, c.expectSync(syncStep1)
}

// connect connects to room without reading anything.
func (h *testHost) connect(room string) *yclient {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, h.url+room, nil)
	if err != nil {
		h.t.Fatalf("dial room %s: %v", room, err)
	}
	conn.SetReadLimit(64 << 20)
	c := &yclient{t: h.t, conn: conn}
	h.t.Cleanup(func() { conn.CloseNow() })
	return c
}

func (c *yclient) send(b []byte) {
	c.t.Helper()
	if err := c.conn.Write(context.Background(), websocket.MessageBinary, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *yclient) sendText(s string) {
	c.t.Helper()
	if err := c.conn.Write(context.Background(), websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next message, parsed, failing the test after 5 seconds.
func (c *yclient) read() inbound {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageBinary {
		c.t.Fatalf("got a text message %q", b)
	}
	d := NewDecoder(b)
	kind, err := d.ReadVarUint()
	if err != nil {
		c.t.Fatalf("message %x: %v", b, err)
	}
	m := inbound{kind: kind}
	switch kind {
	case msgSync:
		m.sync, err = d.ReadVarUint()
		if err == nil {
			m.payload, err = d.ReadVarBytes()
		}
	case msgAwareness:
		m.payload, err = d.ReadVarBytes()
	case msgAuth:
		if _, err = d.ReadVarUint(); err == nil {
			var reason string
			reason, err = d.ReadVarString()
			m.payload = []byte(reason)
		}
	}
	if err != nil || d.Remaining() > 0 {
		c.t.Fatalf("message %x from the server: %v (%d bytes left)", b, err, d.Remaining())
	}
	return m
}

// expectSync reads the next message, which must be a sync message of type
// sub, and returns its payload.
func (c *yclient) expectSync(sub uint64) []byte {
	c.t.Helper()
	m := c.read()
	if m.kind != msgSync || m.sync != sub {
		c.t.Fatalf("got message type %d/%d, want sync %d", m.kind, m.sync, sub)
	}
	return m.payload
}

// expectAwareness reads the next message, which must be an awareness
// message, and returns its entries.
func (c *yclient) expectAwareness() []awarenessEntry {
	c.t.Helper()
	m := c.read()
	if m.kind != msgAwareness {
		c.t.Fatalf("got message type %d/%d, want awareness", m.kind, m.sync)
	}
	entries, err := decodeAwareness(m.payload)
	if err != nil {
		c.t.Fatalf("awareness from the server: %v", err)
	}
	return entries
}

// fence asks for the awareness states and expects the answer next: whatever
// the server sent before it has been read.
func (c *yclient) fence() []awarenessEntry {
	c.t.Helper()
	c.send([]byte{msgQueryAwareness})
	return c.expectAwareness()
}

// closed reads until the connection ends and returns the server's close
// frame.
func (c *yclient) closed() websocket.CloseError {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := c.conn.Read(ctx)
		if err == nil {
			_ = b
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce
	}
}

func (c *yclient) close() { c.conn.Close(websocket.StatusNormalClosure, "") }

// ---- updates written by hand ------------------------------------------------

// typing returns the update of client typing text at the end of its own
// run in the root text "t", from clock on (clock 0 starts the run).
func typing(client, clock uint64, text string) []byte {
	item := &Item{Content: &ContentString{Text: text}}
	if clock == 0 {
		item.Parent = &Parent{IsRoot: true, Root: "t"}
	} else {
		item.Origin = &ID{Client: client, Clock: clock - 1}
	}
	u := &Update{Clients: []ClientStructs{{Client: client, Clock: clock, Structs: []Struct{item}}}}
	return u.Encode()
}

// deleting returns the update deleting n ticks of client from clock.
func deleting(client, clock, n uint64) []byte {
	u := &Update{Deletes: DeleteSet{{Client: client, Ranges: []DeleteRange{{Clock: clock, Len: n}}}}}
	return u.Encode()
}

func syncMsg(sub byte, payload []byte) []byte { return syncMessage(sub, payload) }

func awarenessMsg(entries ...awarenessEntry) []byte {
	return awarenessMessage(encodeAwareness(entries))
}

// mustMerge merges updates, failing the test on an error.
func mustMerge(t testing.TB, updates ...[]byte) []byte {
	t.Helper()
	if len(updates) == 0 {
		return (&Update{}).Encode()
	}
	m, err := MergeUpdates(updates...)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	return m
}

// sameDocument fails the test unless got and want are the same document:
// merging either into the other adds nothing to it.
func sameDocument(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	g, w := normalized(t, got), normalized(t, want)
	if !bytes.Equal(mustMerge(t, got, want), g) || !bytes.Equal(mustMerge(t, want, got), w) {
		t.Fatalf("%s: documents differ:\n got  %x\n want %x", what, got, want)
	}
}

// normalized returns b as Merge writes it.
func normalized(t testing.TB, b []byte) []byte {
	t.Helper()
	u, err := DecodeUpdate(b)
	if err != nil {
		t.Fatalf("decode %x: %v", b, err)
	}
	return Merge(u).Encode()
}

// shutdown shuts the Host down, as a restart would.
func (h *testHost) shutdown() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.host.Shutdown(ctx); err != nil {
		h.t.Fatalf("Shutdown: %v", err)
	}
}

// dropped waits (up to 5 seconds) until the room is no longer in memory.
func (h *testHost) dropped(room string) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.host.Room(party.DefaultParty, room) != nil {
		if time.Now().After(deadline) {
			h.t.Fatalf("room %s still in memory after 5s", room)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// storedKeys lists the keys of room (in party main) in store.
func storedKeys(t testing.TB, store storage.Provider, room string) []string {
	t.Helper()
	st, err := store.Open(party.DefaultParty, room)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kvs, err := st.List(storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key
	}
	return keys
}

// countKeys returns how many of keys are snapshot chunks and log entries.
func countKeys(keys []string) (chunks, logged int) {
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, docPrefix):
			chunks++
		case strings.HasPrefix(k, logPrefix):
			logged++
		}
	}
	return chunks, logged
}

// flakyStore is a MemoryStore whose rooms' Puts fail while fail is set, and
// that counts the Puts that succeeded.
type flakyStore struct {
	*storage.MemoryStore
	fail atomic.Bool
	puts atomic.Int64
}

func (f *flakyStore) Open(partyName, room string) (storage.Storage, error) {
	st, err := f.MemoryStore.Open(partyName, room)
	if err != nil {
		return nil, err
	}
	return &flakyStorage{Storage: st, store: f}, nil
}

type flakyStorage struct {
	storage.Storage
	store *flakyStore
}

var errDiskOnFire = errors.New("disk on fire")

func (s *flakyStorage) Put(key string, value []byte) error {
	if s.store.fail.Load() {
		return errDiskOnFire
	}
	s.store.puts.Add(1)
	return s.Storage.Put(key, value)
}

// discard reads and drops messages in the background until the connection
// ends, so that the client answers the server's close frame.
func (c *yclient) discard() {
	go func() {
		for {
			if _, _, err := c.conn.Read(context.Background()); err != nil {
				return
			}
		}
	}()
}
