package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The command as run with no flags (on free ports), plus a fourth node as
// run with -nats on the embedded server's URL: clients on three different
// nodes chat in one room with the guide's exact texts, and the command's
// shutdown closes the clients with 1012 and leaves no goroutine behind.
func TestChat(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	o, err := parseFlags([]string{"-ports", "0,0,0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	a := run(ctx, t, o, &out)
	url := a.nats.ns.ClientURL()
	o4, err := parseFlags([]string{"-nats", url, "-addr", "127.0.0.1:0", "-node", "other"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b := run(ctx, t, o4, &out)
	t.Logf("the command printed:\n%s", out.String())
	if got := strings.Count(out.String(), "/?room=lobby\n"); got != 4 {
		t.Errorf("%d lines with a node's URL, want 4 (3 embedded, 1 with -nats)", got)
	}
	if name := b.nodes[0].node.Name(); name != "other" {
		t.Errorf("-node other: the node is named %q", name)
	}

	page(t, a.nodes[1].url)

	n1, n3, n4 := ws(a.nodes[0].url), ws(a.nodes[2].url), ws(b.nodes[0].url)
	ann := dial(ctx, t, n1+"/party/lobby?_pk=ann")
	expect(ctx, t, ann, "Welcome, ann")
	bob := dial(ctx, t, n3+"/parties/main/lobby?_pk=bob")
	expect(ctx, t, bob, "Welcome, bob")
	expect(ctx, t, ann, "Heads up! bob joined the party!")
	carol := dial(ctx, t, n4+"/party/lobby?_pk=carol")
	expect(ctx, t, carol, "Welcome, carol")
	expect(ctx, t, ann, "Heads up! carol joined the party!")
	expect(ctx, t, bob, "Heads up! carol joined the party!")

	// Each message reaches the others; the next message a sender reads is
	// the next one's, not an echo of its own.
	send(ctx, t, ann, "ann: hi")
	expect(ctx, t, bob, "ann: hi")
	expect(ctx, t, carol, "ann: hi")
	send(ctx, t, bob, "bob: hello")
	expect(ctx, t, ann, "bob: hello")
	expect(ctx, t, carol, "bob: hello")
	send(ctx, t, carol, "carol: hey")
	expect(ctx, t, ann, "carol: hey")
	expect(ctx, t, bob, "carol: hey")

	bob.Close(websocket.StatusNormalClosure, "")
	expect(ctx, t, ann, "So sad! bob left the party!")
	expect(ctx, t, carol, "So sad! bob left the party!")

	// The command's shutdown, as on SIGINT: the -nats node first (as if its
	// process were stopped), then the embedded three. The clients read
	// meanwhile, as browsers do, so that they answer the close handshakes.
	carolClosed, annClosed := readToClose(ctx, t, carol, "carol"), readToClose(ctx, t, ann, "ann")
	t0 := time.Now()
	shut(t, b)
	closedWith(t, carolClosed, "carol", websocket.StatusServiceRestart)
	t.Logf("the -nats node's shutdown took %v", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	shut(t, a)
	closedWith(t, annClosed, "ann", websocket.StatusServiceRestart)
	t.Logf("the embedded mode's shutdown took %v", time.Since(t0).Round(time.Millisecond))
	settle(t, before, 10*time.Second)
}

// One process of a cluster stopped as on SIGINT, here the -nats node that
// owns the room: its own client and the client another node holds in its
// room are closed with 1012, its lease is released, and the room starts at
// once on the node the second client reconnects to.
func TestOwnerLeaves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o, err := parseFlags([]string{"-ports", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a := run(ctx, t, o, io.Discard)
	o2, err := parseFlags([]string{"-nats", a.nats.ns.ClientURL(), "-addr", "127.0.0.1:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b := run(ctx, t, o2, io.Discard)

	ann := dial(ctx, t, ws(b.nodes[0].url)+"/party/lobby?_pk=ann") // b runs the room
	expect(ctx, t, ann, "Welcome, ann")
	bob := dial(ctx, t, ws(a.nodes[0].url)+"/party/lobby?_pk=bob") // a relays to b
	expect(ctx, t, bob, "Welcome, bob")
	expect(ctx, t, ann, "Heads up! bob joined the party!")

	annClosed, bobClosed := readToClose(ctx, t, ann, "ann"), readToClose(ctx, t, bob, "bob")
	t0 := time.Now()
	shut(t, b)
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("the owner's shutdown took %v", d)
	}
	closedWith(t, annClosed, "ann", websocket.StatusServiceRestart)
	closedWith(t, bobClosed, "bob", websocket.StatusServiceRestart)

	t0 = time.Now()
	bob = dial(ctx, t, ws(a.nodes[0].url)+"/party/lobby?_pk=bob")
	expect(ctx, t, bob, "Welcome, bob")
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("bob was welcomed back %v after reconnecting: the room waited for its lease to expire", d)
	}
	bobClosed = readToClose(ctx, t, bob, "bob")
	shut(t, a)
	closedWith(t, bobClosed, "bob", websocket.StatusServiceRestart)
}

func TestParseFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // options as %+v, or "error"
	}{
		{nil, "{nats: natsPort:0 addr: ports:[1999 2000 2001] node:}"},
		{[]string{"-ports", "0, 8080", "-nats-port", "4222", "-node", "x"}, "{nats: natsPort:4222 addr: ports:[0 8080] node:x}"},
		{[]string{"-nats", "nats://h:4222"}, "{nats:nats://h:4222 natsPort:0 addr:127.0.0.1:1999 ports:[] node:}"},
		{[]string{"-nats", "nats://h:4222", "-addr", ":3000", "-node", "a"}, "{nats:nats://h:4222 natsPort:0 addr::3000 ports:[] node:a}"},
		{[]string{"-addr", ":3000"}, "error"},
		{[]string{"-ports", "1999,x"}, "error"},
		{[]string{"-ports", "70000"}, "error"},
		{[]string{"extra"}, "error"},
		{[]string{"-unknown"}, "error"},
	} {
		o, err := parseFlags(c.args, io.Discard)
		got := fmt.Sprintf("%+v", o)
		if err != nil {
			got = "error"
		}
		if got != c.want {
			t.Errorf("parseFlags(%q) = %s (%v), want %s", c.args, got, err, c.want)
		}
	}
}

// page checks that the node at url serves the chat page and its script.
func page(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for path, want := range map[string]string{"/?room=lobby": `id="messages"`, "/chat.js": "/party/"} {
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s%s: %d, body without %q:\n%s", url, path, resp.StatusCode, want, body)
		}
	}
}

func ws(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") }

func dial(ctx context.Context, t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func send(ctx context.Context, t *testing.T, c *websocket.Conn, text string) {
	t.Helper()
	if err := c.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		t.Fatalf("send %q: %v", text, err)
	}
}

// expect reads c's next message, within 10 s, and fails unless it is want.
func expect(ctx context.Context, t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(b) != want {
		t.Fatalf("read %v %q (%v), want text %q", typ, b, err, want)
	}
}

// readToClose reads c until it is closed, logging the messages read on
// the way, and then sends the error that ended the reads.
func readToClose(ctx context.Context, t *testing.T, c *websocket.Conn, who string) <-chan error {
	done := make(chan error, 1)
	go func() {
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				done <- err
				return
			}
			t.Logf("%s read %q before the close", who, b)
		}
	}()
	return done
}

// closedWith waits, up to 10 s, for the reads of readToClose to end, and
// fails unless they ended with a close frame with code want.
func closedWith(t *testing.T, closed <-chan error, who string, want websocket.StatusCode) {
	t.Helper()
	select {
	case err := <-closed:
		if got := websocket.CloseStatus(err); got != want {
			t.Fatalf("%s: closed with %v (%v), want %v", who, got, err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not closed 10 s after the shutdown", who)
	}
}

// testApp is an app that the test shuts down once, at the end if it did not.
type testApp struct {
	*app
	stopped bool
}

// run starts o as main does, to be shut down by shut, or at the end of the
// test if it failed first.
func run(ctx context.Context, t *testing.T, o options, out io.Writer) *testApp {
	t.Helper()
	a, err := start(ctx, o, out)
	if err != nil {
		t.Fatal(err)
	}
	ta := &testApp{app: a}
	t.Cleanup(func() {
		if !ta.stopped {
			shut(t, ta)
		}
	})
	return ta
}

// shut runs a's shutdown as main does on a signal.
func shut(t *testing.T, a *testApp) {
	t.Helper()
	a.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := a.shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// settle waits until at most base goroutines run, or fails with a dump of
// them.
func settle(t *testing.T, base int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutine leak: %d running, %d before the test:\n%s", runtime.NumGoroutine(), base, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
