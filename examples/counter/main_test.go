package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The count survives the whole server stopping and starting again.
func TestCountSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	run := func(clicks int, want ...string) {
		t.Helper()
		h, err := newHost(dir)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		defer h.Shutdown(ctx)
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/parties/main/r", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		for i := range clicks + 1 {
			_, b, err := c.Read(ctx)
			if err != nil || string(b) != want[i] {
				t.Fatalf("count %q (%v), want %q", b, err, want[i])
			}
			if i < clicks {
				c.Write(ctx, websocket.MessageText, []byte("+1"))
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
	run(3, "0", "1", "2", "3")
	run(1, "3", "4") // a new Host and FileStore on the same directory: a restart
}
