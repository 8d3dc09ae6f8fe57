// Command natsd is a NATS server with JetStream for the cluster benchmark
// (bench/clusterbench): nats-server embedded in a process of its own, so
// that its CPU time is measured apart from the nodes'. It stores JetStream
// in a fresh temporary directory, removed when it stops on SIGINT or
// SIGTERM.
//
//	natsd -port 4222   # nats://127.0.0.1:4222
//
// It prints one line, "natsd listening on nats://HOST:PORT pid PID", once
// the server takes connections. Every other setting is nats-server's
// default, as "nats-server -js" runs it (max_payload 1 MiB).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 4222, "port to listen on (-1: a free one)")
	logs := flag.Bool("log", false, "print the server's own log to stderr")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("natsd: ")

	dir, err := os.MkdirTemp("", "party-natsd-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{
		Host: *host, Port: *port, JetStream: true, StoreDir: dir,
		NoSigs: true, NoLog: !*logs,
	})
	if err != nil {
		log.Fatal(err)
	}
	if *logs {
		ns.ConfigureLogger()
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		log.Fatalf("not ready after 10s (port %d taken?)", *port)
	}
	fmt.Printf("natsd listening on %s pid %d\n", ns.ClientURL(), os.Getpid())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	ns.Shutdown()
	ns.WaitForShutdown()
}
