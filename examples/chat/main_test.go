package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
	"party/examples/guide"
)

// The page and its script are served, and the page's URL form (/party/{room})
// and partysocket's (/parties/main/{room}) reach the same chat room. The
// browser test in interop/browser drives the page itself.
func TestChat(t *testing.T) {
	h := party.Handler(guide.New)
	srv := httptest.NewServer(newMux(h))
	defer srv.Close()
	defer h.Shutdown(context.Background())

	for path, want := range map[string]string{"/?room=lobby": `id="messages"`, "/chat.js": "/party/"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %d, body without %q:\n%s", path, resp.StatusCode, want, body)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	dial := func(path string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, ws+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	expect := func(c *websocket.Conn, want string) {
		t.Helper()
		_, b, err := c.Read(ctx)
		if err != nil || string(b) != want {
			t.Fatalf("read %q (%v), want %q", b, err, want)
		}
	}
	ann := dial("/party/lobby?_pk=ann")
	defer ann.CloseNow()
	expect(ann, "Welcome, ann")
	bob := dial("/parties/main/lobby?_pk=bob")
	defer bob.CloseNow()
	expect(bob, "Welcome, bob")
	expect(ann, "Heads up! bob joined the party!")
	ann.Write(ctx, websocket.MessageText, []byte("ann: hi"))
	expect(bob, "ann: hi")
	bob.Close(websocket.StatusNormalClosure, "")
	expect(ann, "So sad! bob left the party!")
}
