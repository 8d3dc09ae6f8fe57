// Package graceful runs the repository's test servers (interop/server,
// yjs/internal/cmd/yjsserver) as docs/deployment.md recommends: serve until
// SIGINT or SIGTERM, then stop the http.Server and shut each Host down, so
// that every WebSocket gets 1012 and its client reconnects to the next run.
// The examples spell the same steps out in their own main, for readers to
// copy; this package is for programs nobody copies.
package graceful

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"party"
)

// ShutdownTimeout bounds the shutdown once a signal came.
const ShutdownTimeout = 5 * time.Second

// Serve listens on addr, prints "listening on http://ADDR" (the interop
// harness waits for that line), serves handler until SIGINT or SIGTERM,
// then shuts the http.Server down (it stops accepting; hijacked WebSockets
// are the Hosts') and then each of hosts, within ShutdownTimeout. It returns
// an error if it cannot listen or the server fails.
func Serve(addr string, handler http.Handler, hosts ...*party.Host) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	failed := make(chan error, 1)
	go func() { failed <- srv.Serve(ln) }()
	fmt.Printf("listening on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	select {
	case err := <-failed:
		return err
	case <-ctx.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	srv.Shutdown(ctx)
	for _, h := range hosts {
		h.Shutdown(ctx) // 1012 to every connection: clients reconnect
	}
	return nil
}
