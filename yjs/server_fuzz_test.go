package yjs

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
	"party/storage"
)

// fuzzMessage is one message of a fuzzed client.
type fuzzMessage struct {
	text bool
	data []byte
}

// fuzzSession is a fuzz input: whether the client is read-only, and its
// messages. The encoding: a flags byte (bit 0: read-only), then for each
// message a flags byte (bit 0: text) and a varUint8Array of its bytes; what
// does not parse ends the list.
type fuzzSession struct {
	readOnly bool
	msgs     []fuzzMessage
}

const fuzzMaxMessages = 32

func parseSession(b []byte) fuzzSession {
	var s fuzzSession
	if len(b) == 0 {
		return s
	}
	s.readOnly = b[0]&1 != 0
	d := NewDecoder(b[1:])
	for len(s.msgs) < fuzzMaxMessages {
		flags, err := d.ReadUint8()
		if err != nil {
			break
		}
		data, err := d.ReadVarBytes()
		if err != nil {
			break
		}
		m := fuzzMessage{text: flags&1 != 0, data: bytes.Clone(data)}
		if m.text {
			m.data = []byte(strings.ToValidUTF8(string(m.data), "?"))
		}
		s.msgs = append(s.msgs, m)
	}
	return s
}

func (s fuzzSession) encode() []byte {
	e := &Encoder{}
	if s.readOnly {
		e.WriteUint8(1)
	} else {
		e.WriteUint8(0)
	}
	for _, m := range s.msgs {
		if m.text {
			e.WriteUint8(1)
		} else {
			e.WriteUint8(0)
		}
		e.WriteVarBytes(m.data)
	}
	return e.Bytes()
}

// The fuzzed rooms take small updates, so that the limit is reached, and
// keep a short log, so that compactions happen within a session.
const (
	fuzzMaxUpdate = 1500
	fuzzMaxLog    = 3
)

// expected is what the protocol says of a session: the updates the Server
// must accept, in order, and the error it must refuse a message with (nil
// if it refuses none). A message after a refused one is never handled.
func expected(s fuzzSession) (accepted [][]byte, refused error) {
	for _, m := range s.msgs {
		if m.text {
			return accepted, ErrUnsupported
		}
		in, err := parseMessage(m.data)
		if err != nil {
			return accepted, err
		}
		switch {
		case in.kind == msgSync && in.sync == syncStep1:
			_, err = DecodeStateVector(in.payload)
		case in.kind == msgSync && len(in.payload) > fuzzMaxUpdate:
			err = ErrTooLarge
		case in.kind == msgSync:
			var u *Update
			if u, err = DecodeUpdate(in.payload); err == nil && !s.readOnly && !empty(u) {
				accepted = append(accepted, in.payload)
			}
		case in.kind == msgAwareness:
			_, err = decodeAwareness(in.payload)
		}
		if err != nil {
			return accepted, err
		}
	}
	return accepted, nil
}

func fuzzSeeds(f *testing.F) []fuzzSession {
	var ups [][]byte
	for _, fx := range fixtures(f)[:6] {
		ups = append(ups, unb64(f, fx.Merged))
		for _, u := range fx.Updates {
			ups = append(ups, unb64(f, u))
		}
	}
	bin := func(b []byte) fuzzMessage { return fuzzMessage{data: b} }
	aware := bin(awarenessMsg(awarenessEntry{client: 1, clock: 1, state: `{"a":1}`}))
	var seeds []fuzzSession
	for i := 0; i+2 < len(ups); i += 3 {
		seeds = append(seeds, fuzzSession{readOnly: i%9 == 6, msgs: []fuzzMessage{
			bin(syncMsg(syncStep1, []byte{0})), bin(syncMsg(syncUpdate, ups[i])), aware,
			bin(syncMsg(syncStep2, ups[i+1])), bin([]byte{msgQueryAwareness}), bin(syncMsg(syncUpdate, ups[i+2])),
			bin(syncMsg(syncUpdate, ups[i])),
		}})
	}
	seeds = append(seeds,
		fuzzSession{msgs: []fuzzMessage{bin(syncMsg(syncUpdate, ups[0])), {text: true, data: []byte("hi")}}},
		fuzzSession{msgs: []fuzzMessage{bin(syncMsg(syncUpdate, ups[1])), bin([]byte{0, 2, 3, 1})}},
		fuzzSession{msgs: []fuzzMessage{bin(syncMsg(syncUpdate, typing(1, 0, strings.Repeat("x", 2000))))}},
		fuzzSession{msgs: []fuzzMessage{bin(awarenessMsg(awarenessEntry{client: 1, clock: 1, state: "{"}))}},
	)
	return seeds
}

// Any sequence of messages from a client leaves the room's stored document
// decodable and equal to the merge of the updates the protocol says were
// accepted (before and after the compaction at the last leave), the live
// Document equal to it, and the connection open or closed with the code of
// the refusal.
func FuzzProtocol(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.encode())
	}
	store := storage.NewMemoryStore()
	h := serveRooms(f, &Options{
		MaxUpdateBytes: fuzzMaxUpdate, MaxLogUpdates: fuzzMaxLog,
		OnError:  func(*party.Connection, error) {}, // runSession checks the close code instead
		ReadOnly: func(c *party.Connection, r *http.Request) bool { return r.URL.Query().Get("ro") == "1" },
	}, store)
	rooms := 0
	f.Fuzz(func(t *testing.T, input []byte) {
		h := &testHost{t: t, host: h.host, url: h.url}
		s := parseSession(input)
		accepted, refused := expected(s)
		rooms++
		room := fmt.Sprintf("fuzz-%d", rooms)
		url := h.url + room
		if s.readOnly {
			url += "?ro=1"
		}
		runSession(t, url, s, refused)
		want := mustMerge(t, accepted...)
		checkStored(t, store, room, want, "after the session")
		var doc []byte
		if err := h.call(room, func(sv *Server) (err error) { doc, err = sv.Document(); return err }); err != nil {
			t.Fatalf("Document: %v", err)
		}
		sameBytes(t, "the live document", doc, want)
		h.dropped(room) // Call's reference is gone: the room drops, compacting
		checkStored(t, store, room, want, "after the last leave")
		st, _ := store.Open(party.DefaultParty, room)
		st.DeleteAll()
		st.Close()
	})
}

// runSession sends a session's messages and waits until the Server has
// handled them: for the close it predicts (refused), or for the answer to a
// final sync step 1 (the step 2 answers are counted: the session's own step
// 1s are answered first).
func runSession(t *testing.T, url string, s fuzzSession, refused error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(64 << 20)
	for _, m := range s.msgs {
		typ := websocket.MessageBinary
		if m.text {
			typ = websocket.MessageText
		}
		if conn.Write(ctx, typ, m.data) != nil {
			break // closed after a refusal
		}
	}
	answers := 1 // the final step 1's
	for _, m := range s.msgs {
		if in, err := parseMessage(m.data); err == nil && !m.text && in.kind == msgSync && in.sync == syncStep1 {
			answers++
		}
	}
	conn.Write(ctx, websocket.MessageBinary, syncMsg(syncStep1, []byte{0}))
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); refused == nil || code != websocket.StatusCode(closeCode(refused)) {
				t.Fatalf("connection ended with %v, want the refusal %v (code %d)", err, refused, closeCode(refused))
			}
			return
		}
		if len(b) > 1 && b[0] == msgSync && b[1] == syncStep2 && refused == nil {
			if answers--; answers == 0 {
				conn.Close(websocket.StatusNormalClosure, "")
				return
			}
		}
	}
}

// checkStored reads the room's document back from its storage, as OnStart
// does, and compares it with want.
func checkStored(t *testing.T, store storage.Provider, room string, want []byte, when string) {
	t.Helper()
	st, err := store.Open(party.DefaultParty, room)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, kept, err := loadLog(st)
	if err != nil {
		t.Fatalf("%s: reading the stored document: %v", when, err)
	}
	doc, err := replay(kept)
	if err != nil {
		t.Fatalf("%s: the stored document does not decode: %v", when, err)
	}
	sameBytes(t, "the stored document "+when, doc.bytes(), want)
}

// sameBytes compares two documents as Merge writes them.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if g, w := normalized(t, got), normalized(t, want); !bytes.Equal(g, w) {
		t.Fatalf("%s:\n got  %x\n want %x", what, g, w)
	}
}
