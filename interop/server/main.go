// Command server is the Go server the interop suite drives with the real
// partysocket client: one process serving party/interop/server/app (the
// guide's chat and the suite's test parties; its documentation lists the
// URLs). The cluster module's interopcluster command serves the same app on
// several nodes of a cluster.
//
// -ping sets every Host's PingInterval and -ping-timeout its PingTimeout (so
// a client that never answers a ping is dropped within 2×ping+ping-timeout).
// The server prints "listening on http://{addr}" once it accepts
// connections. On SIGTERM or SIGINT it shuts down gracefully (open
// connections get 1012) and exits, so a test can start it again on the same
// port with -addr.
package main

import (
	"flag"
	"log"

	"party/internal/graceful"
	"party/interop/server/app"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	ping := flag.Duration("ping", 0, "Host.PingInterval of every Host (0: the default)")
	pingTimeout := flag.Duration("ping-timeout", 0, "Host.PingTimeout of every Host (0: the default)")
	flag.Parse()

	a := app.New(app.Options{PingInterval: *ping, PingTimeout: *pingTimeout})
	if err := graceful.Serve(*addr, a.Handler, a.PartyHosts()...); err != nil {
		log.Fatal(err)
	}
}
