package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party/yjs"
)

// The page, its script bundle, styles and the bundle's licenses are served
// from the binary. The browser test (interop/browser/editor.test.mjs) drives
// the page itself.
func TestPage(t *testing.T) {
	h, err := newHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newMux(h))
	defer srv.Close()
	defer h.Shutdown(context.Background())

	for _, c := range []struct{ path, contentType, want string }{
		{"/?room=notes&name=ann", "text/html", `<script src="static/editor.js"`},
		{"/static/editor.js", "javascript", "/parties/"},
		{"/static/editor.css", "text/css", "#editor"},
		{"/static/editor.licenses.txt", "text/plain", "yjs 13.6.33"},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), c.contentType) ||
			!bytes.Contains(body, []byte(c.want)) {
			t.Errorf("GET %s: %d %q, %d bytes, want %s with %q", c.path, resp.StatusCode,
				resp.Header.Get("Content-Type"), len(body), c.contentType, c.want)
		}
	}
	resp, err := http.Get(srv.URL + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /nothing: %s, want 404", resp.Status)
	}
}

// A Yjs client speaking the y-websocket protocol over a real socket gets the
// Server's sync step 1, its update reaches a second client, and the document
// survives a restart of the server with the same -data directory.
func TestDocumentSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hello := typed(t, 7, "hello, editor")

	url, stop := serve(t, dir)
	ann := dial(ctx, t, url, "ann")
	if sv := expectSync(ctx, t, ann, 0); !bytes.Equal(sv, []byte{0}) {
		t.Fatalf("ann's step 1: state vector %x, want the empty one (00)", sv)
	}
	bob := dial(ctx, t, url, "bob")
	expectSync(ctx, t, bob, 0)
	send(ctx, t, ann, syncMessage(2, hello))
	if got := expectSync(ctx, t, bob, 2); !bytes.Equal(got, hello) {
		t.Fatalf("bob got update %x, want ann's %x", got, hello)
	}
	ann.Close(websocket.StatusNormalClosure, "")
	bob.Close(websocket.StatusNormalClosure, "")
	stop()

	url, stop = serve(t, dir)
	defer stop()
	cy := dial(ctx, t, url, "cy")
	sv := expectSync(ctx, t, cy, 0)
	want, _ := yjs.EncodeStateVectorFromUpdate(hello)
	if !bytes.Equal(sv, want) {
		t.Fatalf("after the restart, step 1: state vector %x, want %x", sv, want)
	}
	send(ctx, t, cy, syncMessage(0, []byte{0})) // "I have nothing"
	doc := expectSync(ctx, t, cy, 1)
	if text := textOf(t, doc); text != "hello, editor" {
		t.Fatalf("after the restart, step 2 holds %q, want %q", text, "hello, editor")
	}
	cy.Close(websocket.StatusNormalClosure, "")
}

// serve starts the editor's Host and mux on dir; stop shuts both down, as
// the command does on SIGTERM.
func serve(t *testing.T, dir string) (wsURL string, stop func()) {
	t.Helper()
	h, err := newHost(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newMux(h))
	return "ws" + strings.TrimPrefix(srv.URL, "http"), func() {
		srv.Close()
		h.Shutdown(context.Background())
	}
}

func dial(ctx context.Context, t *testing.T, url, id string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url+"/parties/main/notes?_pk="+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func send(ctx context.Context, t *testing.T, c *websocket.Conn, msg []byte) {
	t.Helper()
	if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
}

// expectSync reads the next message, which must be a sync message of type
// sub (0 step 1, 1 step 2, 2 update), and returns its payload.
func expectSync(ctx context.Context, t *testing.T, c *websocket.Conn, sub uint64) []byte {
	t.Helper()
	typ, b, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageBinary {
		t.Fatalf("read: %v %v, want a binary sync message", typ, err)
	}
	d := yjs.NewDecoder(b)
	kind, err1 := d.ReadVarUint()
	got, err2 := d.ReadVarUint()
	payload, err3 := d.ReadVarBytes()
	if err1 != nil || err2 != nil || err3 != nil || kind != 0 || got != sub || d.Remaining() != 0 {
		t.Fatalf("message %x: want sync message %d with one payload", b, sub)
	}
	return payload
}

// syncMessage is y-protocols' sync message of type sub with payload.
func syncMessage(sub uint64, payload []byte) []byte {
	var e yjs.Encoder
	e.WriteVarUint(0)
	e.WriteVarUint(sub)
	e.WriteVarBytes(payload)
	return e.Bytes()
}

// typed is the update a client with id client sends when it types s into
// the empty root text "codemirror" (the page's Y.Text).
func typed(t *testing.T, client uint64, s string) []byte {
	t.Helper()
	u := &yjs.Update{Clients: []yjs.ClientStructs{{Client: client, Structs: []yjs.Struct{
		&yjs.Item{Parent: &yjs.Parent{IsRoot: true, Root: "codemirror"}, Content: &yjs.ContentString{Text: s}},
	}}}}
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	return u.Encode()
}

// textOf returns the strings an update's items hold, in encoded order.
func textOf(t *testing.T, update []byte) string {
	t.Helper()
	u, err := yjs.DecodeUpdate(update)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, run := range u.Clients {
		for _, s := range run.Structs {
			if it, ok := s.(*yjs.Item); ok {
				if c, ok := it.Content.(*yjs.ContentString); ok {
					sb.WriteString(c.Text)
				}
			}
		}
	}
	return sb.String()
}
