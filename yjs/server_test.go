package yjs

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"party"
)

func TestSync(t *testing.T) {
	h := serveRooms(t, nil, nil)
	a, sv := h.dial("r")
	if !bytes.Equal(sv, []byte{0}) {
		t.Fatalf("step 1 of an empty room: state vector %x, want 00", sv)
	}
	a.send(syncMsg(syncStep1, []byte{0}))
	if got := a.expectSync(syncStep2); !bytes.Equal(got, []byte{0, 0}) {
		t.Fatalf("step 2 of an empty room: %x, want the empty update 0000", got)
	}

	hello := typing(7, 0, "hello")
	a.send(syncMsg(syncUpdate, hello))
	a.fence()
	b, sv := h.dial("r")
	if want := (StateVector{{Client: 7, Clock: 5}}).Encode(); !bytes.Equal(sv, want) {
		t.Fatalf("step 1 after an update: state vector %x, want %x", sv, want)
	}
	b.send(syncMsg(syncStep1, []byte{0}))
	sameDocument(t, "step 2 for an empty client", b.expectSync(syncStep2), hello)
	b.send(syncMsg(syncStep1, sv))
	if got := b.expectSync(syncStep2); !bytes.Equal(got, []byte{0, 0}) {
		t.Fatalf("step 2 for a client that has everything: %x, want the empty update", got)
	}
	half := (StateVector{{Client: 7, Clock: 2}}).Encode()
	b.send(syncMsg(syncStep1, half))
	want, err := DiffUpdate(hello, half)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.expectSync(syncStep2); !bytes.Equal(got, want) {
		t.Fatalf("step 2 for a client with 2 of 5 ticks: %x, want DiffUpdate's %x", got, want)
	}
}

func TestUpdatesReachTheOthers(t *testing.T) {
	h := serveRooms(t, nil, nil)
	a, _ := h.dial("r")
	b, _ := h.dial("r")
	hello := typing(1, 0, "hello")
	a.send(syncMsg(syncUpdate, hello))
	if got := b.expectSync(syncUpdate); !bytes.Equal(got, hello) {
		t.Fatalf("b got update %x, want a's %x", got, hello)
	}
	a.fence() // a does not get its own update back: the fence's answer comes first

	// A step 2 is a change too (an offline client's edits).
	world := typing(2, 0, " world")
	b.send(syncMsg(syncStep2, world))
	if got := a.expectSync(syncUpdate); !bytes.Equal(got, world) {
		t.Fatalf("a got update %x, want b's step 2 %x", got, world)
	}
	b.fence()

	// A step 2 that adds nothing (a client that reconnects with what the
	// room has) is not sent on.
	b.send(syncMsg(syncStep2, hello))
	b.fence()
	a.fence()
	sameDocument(t, "document", h.document("r"), mustMerge(t, hello, world))
}

func TestAwareness(t *testing.T) {
	h := serveRooms(t, nil, nil)
	a, _ := h.dial("r")
	b, _ := h.dial("r")
	alice := awarenessEntry{client: 10, clock: 1, state: `{"user":"alice"}`}
	a.send(awarenessMsg(alice))
	for name, c := range map[string]*yclient{"a (the sender)": a, "b": b} {
		if got := c.expectAwareness(); !slices.Equal(got, []awarenessEntry{alice}) {
			t.Fatalf("%s got awareness %v, want %v", name, got, alice)
		}
	}

	c, _ := h.dial("r")
	if got := c.expectAwareness(); !slices.Equal(got, []awarenessEntry{alice}) {
		t.Fatalf("a new connection got awareness %v, want the states %v", got, alice)
	}

	// An older clock changes nothing and is not sent on.
	b.send(awarenessMsg(awarenessEntry{client: 10, clock: 0, state: `{"user":"mallory"}`}))
	if got := b.fence(); !slices.Equal(got, []awarenessEntry{alice}) {
		t.Fatalf("query after a stale update: %v, want %v", got, alice)
	}

	bob := awarenessEntry{client: 20, clock: 3, state: `{"user":"bob"}`}
	b.send(awarenessMsg(bob))
	for _, cl := range []*yclient{a, b, c} {
		cl.expectAwareness()
	}
	if got := c.fence(); !slices.Equal(got, []awarenessEntry{alice, bob}) {
		t.Fatalf("query: %v, want both states", got)
	}

	a.close()
	gone := awarenessEntry{client: 10, clock: 1, state: nullState}
	for name, cl := range map[string]*yclient{"b": b, "c": c} {
		if got := cl.expectAwareness(); !slices.Equal(got, []awarenessEntry{gone}) {
			t.Fatalf("%s got %v when a closed, want %v", name, got, gone)
		}
	}
	if got := c.fence(); !slices.Equal(got, []awarenessEntry{bob}) {
		t.Fatalf("query after a left: %v, want %v", got, bob)
	}

	// A client that removes its own state is not removed again at close.
	b.send(awarenessMsg(awarenessEntry{client: 20, clock: 4, state: nullState}))
	b.expectAwareness()
	c.expectAwareness()
	b.close()
	if got := c.fence(); len(got) != 0 {
		t.Fatalf("query after every state left: %v, want none", got)
	}
}

func TestReadOnly(t *testing.T) {
	opts := &Options{ReadOnly: func(c *party.Connection, r *http.Request) bool { return r.URL.Query().Get("ro") == "1" }}
	h := serveRooms(t, opts, nil)
	w, _ := h.dial("r")
	hello := typing(1, 0, "hello")
	w.send(syncMsg(syncUpdate, hello))
	w.fence()

	ro, _ := h.dial("r?ro=1")
	ro.send(syncMsg(syncStep1, []byte{0}))
	sameDocument(t, "a read-only client's step 2", ro.expectSync(syncStep2), hello)
	ro.send(syncMsg(syncStep2, hello)) // what the document has: no complaint
	ro.fence()

	ro.send(syncMsg(syncUpdate, typing(2, 0, "spam")))
	m := ro.read()
	if m.kind != msgAuth || string(m.payload) != readOnlyReason {
		t.Fatalf("read-only client got %d %q, want the auth message %q", m.kind, m.payload, readOnlyReason)
	}
	ro.send(syncMsg(syncStep2, typing(2, 4, "more")))
	ro.fence() // told once only
	w.fence()  // the writer saw none of it
	sameDocument(t, "document after read-only writes", h.document("r"), hello)

	// It still receives changes and takes part in awareness.
	more := typing(1, 5, "!")
	w.send(syncMsg(syncUpdate, more))
	if got := ro.expectSync(syncUpdate); !bytes.Equal(got, more) {
		t.Fatalf("read-only client got %x, want the writer's update", got)
	}
	ro.send(awarenessMsg(awarenessEntry{client: 5, clock: 1, state: `{}`}))
	w.expectAwareness()
}

func TestRefusals(t *testing.T) {
	big := typing(3, 0, strings.Repeat("x", 100))
	cases := []struct {
		name string
		send func(c *yclient)
		code websocket.StatusCode
		err  error
	}{
		{"text", func(c *yclient) { c.sendText("hello") }, 1003, ErrUnsupported},
		{"auth from a client", func(c *yclient) { c.send(permissionDenied("no")) }, 1003, ErrUnsupported},
		{"unknown type", func(c *yclient) { c.send([]byte{4}) }, 1003, ErrUnsupported},
		{"unknown sync type", func(c *yclient) { c.send(syncMsg(3, []byte{0})) }, 1003, ErrUnsupported},
		{"empty", func(c *yclient) { c.send([]byte{}) }, 1007, ErrMalformed},
		{"truncated", func(c *yclient) { c.send([]byte{0, 2, 5, 1}) }, 1007, ErrMalformed},
		{"overlong type", func(c *yclient) { c.send([]byte{0x80, 0}) }, 1007, ErrMalformed},
		{"bytes after", func(c *yclient) { c.send(append(syncMsg(syncUpdate, typing(3, 0, "a")), 0)) }, 1007, ErrMalformed},
		{"malformed update", func(c *yclient) { c.send(syncMsg(syncUpdate, []byte{1, 1, 3, 0, 9})) }, 1007, ErrMalformed},
		{"malformed step 2", func(c *yclient) { c.send(syncMsg(syncStep2, []byte{0})) }, 1007, ErrMalformed},
		{"malformed state vector", func(c *yclient) { c.send(syncMsg(syncStep1, []byte{1, 5})) }, 1007, ErrMalformed},
		{"awareness not JSON", func(c *yclient) { c.send(awarenessMsg(awarenessEntry{client: 1, clock: 1, state: "{"})) }, 1007, ErrMalformed},
		{"awareness truncated", func(c *yclient) { c.send([]byte{1, 2, 1, 1}) }, 1007, ErrMalformed},
		{"update too large", func(c *yclient) { c.send(syncMsg(syncUpdate, big)) }, 1009, ErrTooLarge},
		{"document full", func(c *yclient) { c.send(syncMsg(syncUpdate, typing(4, 0, strings.Repeat("y", 80)))) }, 1009, ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := make(chan error, 10)
			h := serveRooms(t, &Options{
				MaxUpdateBytes: 100, MaxDocumentBytes: 120,
				OnError: func(c *party.Connection, err error) { errs <- err },
			}, nil)
			first := typing(1, 0, strings.Repeat("a", 40))
			other, _ := h.dial("r")
			other.send(syncMsg(syncUpdate, first))
			other.fence()

			c, _ := h.dial("r")
			tc.send(c)
			c.send(syncMsg(syncUpdate, typing(2, 0, "after"))) // ignored: the connection is closing
			if ce := c.closed(); ce.Code != tc.code {
				t.Fatalf("closed with %d %q, want %d", ce.Code, ce.Reason, tc.code)
			}
			if err := <-errs; !errors.Is(err, tc.err) {
				t.Fatalf("OnError got %v, want an error wrapping %v", err, tc.err)
			}
			other.fence() // nothing reached the others
			if got := h.document("r"); !bytes.Equal(got, first) {
				t.Fatalf("document changed to %x, want %x", got, first)
			}
		})
	}
}
