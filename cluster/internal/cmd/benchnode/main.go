// Command benchnode is one node of the cluster benchmark
// (bench/clusterbench): the server bench/peers/party serves, the guide's
// broadcast chat (party/examples/guide) at /parties/main/{room}?_pk=id, on a
// party.Host joined to a cluster over an external NATS server with
// cluster.Join.
//
//	natsd -port 4222 &
//	benchnode -addr 127.0.0.1:18081 -nats nats://127.0.0.1:4222 -node n1 &
//	benchnode -addr 127.0.0.1:18082 -nats nats://127.0.0.1:4222 -node n2 &
//
// It prints one line, "benchnode NODE listening on ADDR pid PID", once it
// serves. -pprof also serves net/http/pprof at /debug/pprof/ on -addr. On
// SIGINT or SIGTERM the node hands its rooms over (cluster.Node.Shutdown)
// and exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"party"
	"party/cluster"
	"party/examples/guide"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address")
	natsURL := flag.String("nats", "nats://127.0.0.1:4222", "URL of the NATS server with JetStream to join")
	name := flag.String("node", "", "the node's name (empty: a random one)")
	withPprof := flag.Bool("pprof", false, "serve net/http/pprof at /debug/pprof/")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("benchnode: ")

	host := party.Handler(guide.New)
	nc, err := nats.Connect(*natsURL, nats.Name("benchnode "+*addr))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	node, err := cluster.Join(ctx, host, nc, cluster.Config{Node: *name})
	cancel()
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/parties/", host)
	if *withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	fmt.Printf("benchnode %s listening on %s pid %d\n", node.Name(), ln.Addr(), os.Getpid())

	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-sig.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := node.Shutdown(sctx); err != nil {
		log.Print(err)
	}
	nc.Close()
	srv.Shutdown(sctx)
}
