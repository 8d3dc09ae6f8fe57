package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
)

// The lobby's live counts follow people into and out of chat rooms.
func TestLobbyCounts(t *testing.T) {
	h := party.Handler(func(r *party.Room) party.Server { return &Chat{room: r} })
	h.Party("lobby", func(r *party.Room) party.Server { return &Lobby{room: r} })
	h.IdleTimeout = -1 // rooms, the lobby too, are dropped as soon as nobody uses them
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	dial := func(path string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, ws+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	lobby := dial("/parties/lobby/main")
	defer lobby.CloseNow()
	expect := func(want string) {
		t.Helper()
		_, b, err := lobby.Read(ctx)
		if err != nil || string(b) != want {
			t.Fatalf("lobby shows %q (%v), want %q", b, err, want)
		}
	}
	expect(`{}`)
	a := dial("/parties/main/kitchen?_pk=a")
	expect(`{"kitchen":1}`)
	b := dial("/parties/main/kitchen?_pk=b")
	expect(`{"kitchen":2}`)
	c := dial("/parties/main/garden?_pk=c")
	expect(`{"garden":1,"kitchen":2}`)
	a.Close(websocket.StatusNormalClosure, "")
	expect(`{"garden":1,"kitchen":1}`)
	b.Close(websocket.StatusNormalClosure, "")
	expect(`{"garden":1}`)
	c.Close(websocket.StatusNormalClosure, "")
	expect(`{}`)

	// The lobby room itself is dropped when idle; its counts are not.
	lobby.Close(websocket.StatusNormalClosure, "")
	d := dial("/parties/main/porch?_pk=d")
	defer d.CloseNow()
	eventually(t, "the lobby to count d in the porch", func() bool {
		reported := false
		err := h.Call(ctx, "lobby", "main", func(s party.Server) error {
			reported = s.(*Lobby).counts["porch"] == 1
			return nil
		})
		if err != nil {
			t.Fatalf("Call the lobby: %v", err)
		}
		return reported
	})
	eventually(t, "the idle lobby room to be dropped", func() bool { return h.Room("lobby", "main") == nil })
	lobby = dial("/parties/lobby/main") // a new Lobby, built from its Storage
	defer lobby.CloseNow()
	expect(`{"porch":1}`)

	resp, err := http.Get(srv.URL + "/parties/lobby/main")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET lobby: %v %v", resp, err)
	}
	resp.Body.Close()
}

// eventually polls cond until it holds, failing after 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
