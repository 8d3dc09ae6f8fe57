package yjs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"party"
	"party/storage"
)

// notes embeds the Server and adds a command of its own: a text message
// appends its text to the document, written by the server (client 100).
type notes struct {
	*Server
	clock uint64
}

func (n *notes) OnMessage(msg party.Message, c *party.Connection) {
	if msg.IsBinary() {
		n.Server.OnMessage(msg, c)
		return
	}
	text := msg.String()
	if err := n.Apply(typing(100, n.clock, text)); err != nil {
		c.Close(party.StatusInternalError, err.Error())
		return
	}
	n.clock += uint64(len(text))
}

func TestApplyFromAHandler(t *testing.T) {
	h := serveRooms(t, nil, nil)
	h.host.Party("notes", func(r *party.Room) party.Server { return &notes{Server: NewServer(r, nil)} })
	url := strings.Replace(h.url, "/main/", "/notes/", 1)
	dial := func() *yclient {
		c := (&testHost{t: t, host: h.host, url: url}).connect("n")
		c.expectSync(syncStep1)
		return c
	}
	a, b := dial(), dial()
	a.sendText("hi")
	want := typing(100, 0, "hi")
	for name, c := range map[string]*yclient{"a (who asked)": a, "b": b} {
		if got := c.expectSync(syncUpdate); !bytes.Equal(got, want) {
			t.Fatalf("%s got %x, want the applied update %x", name, got, want)
		}
	}
	var doc []byte
	err := h.host.Call(context.Background(), "notes", "n", func(s party.Server) (err error) {
		doc, err = s.(*notes).Document()
		return err
	})
	if err != nil || !bytes.Equal(doc, want) {
		t.Fatalf("Document: %x, %v; want %x", doc, err, want)
	}
}

func TestApplyThroughCall(t *testing.T) {
	h := serveRooms(t, &Options{MaxUpdateBytes: 64}, nil)
	a, _ := h.dial("r")
	hello := typing(5, 0, "hello")
	if err := h.call("r", func(s *Server) error { return s.Apply(hello) }); err != nil {
		t.Fatal(err)
	}
	if got := a.expectSync(syncUpdate); !bytes.Equal(got, hello) {
		t.Fatalf("client got %x, want the applied update", got)
	}
	for _, tc := range []struct {
		update []byte
		want   error
	}{
		{[]byte{1, 2, 3}, ErrMalformed},
		{typing(6, 0, strings.Repeat("x", 64)), ErrTooLarge},
	} {
		if err := h.call("r", func(s *Server) error { return s.Apply(tc.update) }); !errors.Is(err, tc.want) {
			t.Fatalf("Apply(%x) = %v, want an error wrapping %v", tc.update, err, tc.want)
		}
	}
	if err := h.call("r", func(s *Server) error { return s.Apply([]byte{0, 0}) }); err != nil {
		t.Fatalf("Apply of the empty update: %v", err)
	}
	a.fence() // no update reached the client for those
	if got := h.document("r"); !bytes.Equal(got, hello) {
		t.Fatalf("document %x, want %x", got, hello)
	}
}

// Apply from several goroutines through Host.Call while clients type: every
// change lands once, and everyone converges.
func TestApplyConcurrently(t *testing.T) {
	h := serveRooms(t, nil, nil)
	a, _ := h.dial("r")
	b, _ := h.dial("r")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all [][]byte
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				u := typing(uint64(200+g), uint64(i), "x")
				if err := h.call("r", func(s *Server) error { return s.Apply(u) }); err != nil {
					t.Errorf("Apply: %v", err)
					return
				}
				mu.Lock()
				all = append(all, u)
				mu.Unlock()
			}
		}()
	}
	typed := edits(1, 50)
	for _, u := range typed {
		a.send(syncMsg(syncUpdate, u))
	}
	wg.Wait()
	all = append(all, typed...)
	got := map[string]int{}
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 150 && time.Now().Before(deadline) {
		got[fmt.Sprintf("%x", b.expectSync(syncUpdate))]++
	}
	if len(got) != 150 {
		t.Fatalf("b got %d distinct updates, want 150", len(got))
	}
	sameDocument(t, "document", h.document("r"), mustMerge(t, all...))
}

func TestNotStarted(t *testing.T) {
	s := NewServer(nil, nil)
	if _, err := s.Document(); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Document before OnStart: %v, want ErrNotStarted", err)
	}
	if err := s.Apply(typing(1, 0, "a")); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Apply before OnStart: %v, want ErrNotStarted", err)
	}
}

func TestApplyAfterTheRoomIsDropped(t *testing.T) {
	h := serveRooms(t, nil, nil)
	var kept *Server
	if err := h.call("r", func(s *Server) error { kept = s; return s.Apply(typing(1, 0, "a")) }); err != nil {
		t.Fatal(err)
	}
	h.dropped("r")
	if err := kept.Apply(typing(1, 1, "b")); !errors.Is(err, storage.ErrStorageClosed) {
		t.Fatalf("Apply on a dropped room's Server: %v, want storage.ErrStorageClosed", err)
	}
	if doc, err := kept.Document(); err != nil || !bytes.Equal(doc, typing(1, 0, "a")) {
		t.Fatalf("Document of a dropped room's Server: %x, %v", doc, err)
	}
}
