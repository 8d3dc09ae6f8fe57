package party_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"party"
)

// counter is a room with state other rooms read and change through Call.
type counter struct {
	room *party.Room
	n    int
}

func (s *counter) OnRequest(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		b, _ := io.ReadAll(r.Body)
		s.n += len(b)
	}
	fmt.Fprintf(w, "%s=%d", s.room.ID(), s.n)
}

// relay forwards "call {party} {room}" messages as a Call from its handler.
type relay struct {
	room    *party.Room
	entered chan string // signalled when a handler is about to call
	proceed chan struct{}
}

func (s *relay) OnMessage(m party.Message, c *party.Connection) {
	var target string
	fmt.Sscanf(m.String(), "call %s", &target)
	if s.entered != nil {
		s.entered <- s.room.ID()
		<-s.proceed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.room.Call(ctx, "relay", target, func(srv party.Server) error {
		return nil
	})
	switch {
	case errors.Is(err, party.ErrDeadlock):
		c.Send(party.Text("deadlock"))
	case err != nil:
		c.Send(party.Text("error " + err.Error()))
	default:
		c.Send(party.Text("ok"))
	}
}

func TestCallAndFetch(t *testing.T) {
	h := party.Handler(func(r *party.Room) party.Server { return &counter{room: r} })
	ws, _ := serve(t, h)
	_ = ws

	// From outside any handler: the room is created on demand.
	var got int
	err := h.Call(context.Background(), "main", "c1", func(s party.Server) error {
		c := s.(*counter)
		c.n += 5
		got = c.n
		return nil
	})
	if err != nil || got != 5 {
		t.Fatalf("Call = %v, n = %d; want nil, 5", err, got)
	}
	req := httptest.NewRequest(http.MethodPost, "/parties/main/c1", strings.NewReader("abc"))
	resp, err := h.Fetch("main", "c1", req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "c1=8" {
		t.Errorf("Fetch = %d %q, want 200 c1=8", resp.StatusCode, body)
	}
	if err := h.Call(context.Background(), "nope", "x", func(party.Server) error { return nil }); err == nil {
		t.Error("Call to an unknown party succeeded")
	}
	want := errors.New("from f")
	if err := h.Call(context.Background(), "main", "c1", func(party.Server) error { return want }); err != want {
		t.Errorf("Call returned %v, want f's error", err)
	}
	err = h.Call(context.Background(), "main", "c1", func(party.Server) error { panic("boom") })
	if !errors.Is(err, party.ErrHandlerPanic) {
		t.Errorf("Call with a panicking f returned %v, want ErrHandlerPanic", err)
	}
}

func TestCallCycles(t *testing.T) {
	entered := make(chan string, 2)
	proceed := make(chan struct{})
	h := party.Handler(newChat)
	h.Party("relay", func(r *party.Room) party.Server {
		rl := &relay{room: r}
		if r.ID() == "a" || r.ID() == "b" {
			rl.entered, rl.proceed = entered, proceed
		}
		return rl
	})
	ws, _ := serve(t, h)

	t.Run("a room calling itself runs at once", func(t *testing.T) {
		c := dial(t, ws+"/parties/relay/self")
		defer c.close()
		c.send("call self")
		c.expect("ok")
	})
	t.Run("two rooms calling each other at once", func(t *testing.T) {
		a := dial(t, ws+"/parties/relay/a")
		defer a.close()
		b := dial(t, ws+"/parties/relay/b")
		defer b.close()
		a.send("call b")
		b.send("call a")
		<-entered
		<-entered // both handlers hold their turn and are about to call the other
		close(proceed)
		results := []string{a.readText(), b.readText()}
		ok, dead := 0, 0
		for _, r := range results {
			switch r {
			case "ok":
				ok++
			case "deadlock":
				dead++
			}
		}
		if ok != 1 || dead != 1 {
			t.Errorf("results %q: want one call to fail with ErrDeadlock and the other to succeed", results)
		}
	})
	t.Run("a chain without a cycle waits", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &client{t: t, conn: mustDial(t, fmt.Sprintf("%s/parties/relay/chain%d", ws, i))}
				defer c.close()
				c.send(fmt.Sprintf("call chain%d", i+1))
				c.expect("ok")
			}()
		}
		wg.Wait()
	})
}

// created answers 201 with a header of its own and a body; a "GET ?panic"
// panics before writing anything.
type created struct{}

func (created) OnRequest(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("panic") {
		panic("boom")
	}
	w.Header().Set("X-Room", "made")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, "<p>made</p>")
}

// Fetch answers as the same request over HTTP does: the room's OnRequest
// (status, headers, body), 426 with "Upgrade: websocket" from a room without
// OnRequest, 500 when OnRequest panics before writing.
func TestFetchAnswersAsHTTP(t *testing.T) {
	var logs logBuffer
	h := party.Handler(func(*party.Room) party.Server { return struct{}{} })
	h.Logger = logs.logger()
	h.Party("created", func(*party.Room) party.Server { return created{} })
	_, srv := serve(t, h)
	for _, tc := range []struct {
		party, room, path string
		wantStatus        int
	}{
		{"created", "r1", "/parties/created/r1", http.StatusCreated},
		{"created", "r1", "/parties/created/r1?panic", http.StatusInternalServerError},
		{"main", "r1", "/parties/main/r1", http.StatusUpgradeRequired},
	} {
		t.Run(tc.path, func(t *testing.T) {
			overHTTP, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			httpBody, _ := io.ReadAll(overHTTP.Body)
			overHTTP.Body.Close()
			fetched, err := h.Fetch(tc.party, tc.room, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			fetchBody, _ := io.ReadAll(fetched.Body)
			if overHTTP.StatusCode != tc.wantStatus || fetched.StatusCode != tc.wantStatus {
				t.Errorf("status over HTTP %d, by Fetch %d; want %d", overHTTP.StatusCode, fetched.StatusCode, tc.wantStatus)
			}
			if string(fetchBody) != string(httpBody) {
				t.Errorf("body by Fetch %q, over HTTP %q", fetchBody, httpBody)
			}
			for _, k := range []string{"Content-Type", "Upgrade", "X-Room"} {
				if a, b := fetched.Header.Get(k), overHTTP.Header.Get(k); a != b {
					t.Errorf("header %s by Fetch %q, over HTTP %q", k, a, b)
				}
			}
		})
	}
}
