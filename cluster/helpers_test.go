package cluster

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestMain fails the run if goroutines started by the tests outlive them.
func TestMain(m *testing.M) {
	base := countGoroutines()
	code := m.Run()
	if code == 0 {
		if err := settleGoroutines(base, 10*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// settleGoroutines waits until at most base goroutines run, or fails with a
// dump of them.
func settleGoroutines(base int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		n := countGoroutines()
		if n <= base {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("goroutine leak: %d running, %d before the tests:\n%s", n, base, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countGoroutines counts the running goroutines but os/signal's, which the
// fuzzing engine starts for good.
func countGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "os/signal.loop") {
			count++
		}
	}
	return count
}

// startServer runs an embedded JetStream server for the test, storing in
// dir (a fresh temporary one if empty), reached in process only.
func startServer(t testing.TB, dir string) *server.Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	return runServer(t, &server.Options{JetStream: true, StoreDir: dir, DontListen: true})
}

// startListeningServer runs a JetStream server listening on 127.0.0.1:port
// (server.RANDOM_PORT: a free one), storing in dir, for clients outside the
// process or over TCP.
func startListeningServer(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	return runServer(t, &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir})
}

// runServer runs a server with opts until the end of the test.
func runServer(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	opts.NoLog, opts.NoSigs = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatal("nats-server not ready in 10s")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// connect opens a connection of its own to ns (one "node"), closed at the
// end of the test.
func connect(t testing.TB, ns *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// testCtx is a context that ends with the test, or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newOwners opens the owners of node on js with a short TTL, closed at the
// end of the test.
func newOwners(t testing.TB, js jetstream.JetStream, node string, ttl time.Duration) *Owners {
	t.Helper()
	o, err := NewOwners(testCtx(t, 5*time.Second), js, OwnersConfig{Node: node, TTL: ttl, Bucket: "owners"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := o.Close(ctx); err != nil && !strings.Contains(err.Error(), "connection closed") {
			t.Errorf("Close of %s: %v", node, err)
		}
	})
	return o
}

// waitFor polls cond every 5 ms until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
