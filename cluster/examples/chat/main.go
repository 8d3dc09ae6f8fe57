// Command chat is the PartyKit guide's chat (party/examples/guide) on a
// cluster of party nodes over NATS, serving the page of party's
// examples/chat (party/examples/chat/web).
//
//	go run ./examples/chat
//
// starts an embedded NATS server (JetStream on, stored in a temporary
// directory removed at exit, on 127.0.0.1 at a free port or -nats-port) and
// three nodes in this one process, at http://127.0.0.1:1999, :2000 and
// :2001 (-ports changes them; 0 picks a free one). Each node is a party.Host
// of its own, with its own NATS connection and HTTP server, so
// http://127.0.0.1:1999/?room=lobby in one tab and
// http://127.0.0.1:2001/?room=lobby in another chat in one room, which one
// of the nodes owns. The embedded server's URL is printed: other processes
// can join it with -nats.
//
//	go run ./examples/chat -nats nats://127.0.0.1:4222 -addr 127.0.0.1:1999
//
// runs one node against a NATS server of your own (nats-server -js); three
// such processes on different addresses form a cluster. -node names the
// node ("" is a fresh random name; in the embedded mode, node1, node2 and
// node3, or NAME1, NAME2 and NAME3 with -node NAME).
//
// On Ctrl-C (SIGINT) or SIGTERM, each node hands its rooms over
// (cluster.Node.Shutdown: its clients are closed with 1012 and reconnect,
// to another node behind a load balancer), then the HTTP servers close,
// then the embedded NATS server stops, all within 10 seconds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"party"
	"party/cluster"
	"party/examples/chat/web"
	"party/examples/guide"
)

// startTimeout bounds the start: connecting and joining every node.
const startTimeout = 30 * time.Second

// shutdownTimeout bounds the whole shutdown: every node's handover, then the
// HTTP servers.
const shutdownTimeout = 10 * time.Second

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(2) // the flag package said why
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	a, err := start(ctx, o, os.Stdout)
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	waitForSignal()
	ctx, cancel = context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := a.shutdown(ctx); err != nil {
		log.Fatal(err)
	}
}

// waitForSignal returns on the first SIGINT or SIGTERM.
func waitForSignal() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}

// options are the command line's.
type options struct {
	nats     string // an external NATS server's URL; "" starts an embedded one
	natsPort int    // the embedded server's port; 0 means a free one
	addr     string // with nats: the one node's address
	ports    []int  // without nats: one node per port, on 127.0.0.1
	node     string // the node's name with nats, the names' stem without
}

// parseFlags reads args; on an error, the flag set has printed it and the
// usage to errOut.
func parseFlags(args []string, errOut io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&o.nats, "nats", "", "URL of an external NATS server with JetStream (nats://HOST:PORT): run one node on it at -addr; empty runs an embedded server and three nodes")
	fs.IntVar(&o.natsPort, "nats-port", 0, "port of the embedded NATS server on 127.0.0.1 (0: a free one)")
	fs.StringVar(&o.addr, "addr", "", "address of the one node run with -nats (default 127.0.0.1:1999)")
	ports := fs.String("ports", "1999,2000,2001", "ports of the nodes run on 127.0.0.1 with the embedded NATS server (0: a free one)")
	fs.StringVar(&o.node, "node", "", "the node's name with -nats (empty: a random one); without, the stem of the nodes' names (default node)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	switch {
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments: %q", fs.Args())
	case o.nats != "" && o.addr == "":
		o.addr = "127.0.0.1:1999"
	case o.nats == "" && o.addr != "":
		err = errors.New("-addr is the address of the one node run with -nats; the embedded mode's nodes listen on -ports")
	}
	if err == nil && o.nats == "" {
		o.ports, err = parsePorts(*ports)
	}
	if err != nil {
		fmt.Fprintln(errOut, err)
		fs.Usage()
	}
	return o, err
}

// parsePorts reads a comma-separated list of ports.
func parsePorts(s string) ([]int, error) {
	var ports []int
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("-ports: %q is not a port", f)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// app is what the command runs: the embedded NATS server, if any, and the
// nodes.
type app struct {
	nats  *embeddedNATS // nil with -nats
	nodes []*chatNode
}

// start runs what o says and prints one line per node with its URL to out.
// ctx bounds the start (it needs a deadline: cluster.Join's NATS calls
// require one). On an error, what had started is stopped.
func start(ctx context.Context, o options, out io.Writer) (*app, error) {
	a := &app{}
	url, addrs, names := o.nats, []string{o.addr}, []string{o.node}
	if url == "" {
		var err error
		if a.nats, err = startNATS(o.natsPort); err != nil {
			return nil, err
		}
		url = a.nats.ns.ClientURL()
		fmt.Fprintf(out, "nats: %s (embedded; a node in another process joins with -nats %s -addr 127.0.0.1:PORT)\n", url, url)
		addrs, names = embeddedNodes(o)
	}
	for i, addr := range addrs {
		n, err := startNode(ctx, url, addr, names[i])
		if err != nil {
			a.shutdown(ctx)
			return nil, fmt.Errorf("node at %s: %w", addr, err)
		}
		a.nodes = append(a.nodes, n)
		fmt.Fprintf(out, "%s: %s/?room=lobby\n", n.node.Name(), n.url)
	}
	return a, nil
}

// embeddedNodes returns the addresses and names of the embedded mode's
// nodes.
func embeddedNodes(o options) (addrs, names []string) {
	stem := o.node
	if stem == "" {
		stem = "node"
	}
	for i, p := range o.ports {
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		names = append(names, stem+strconv.Itoa(i+1))
	}
	return addrs, names
}

// shutdown hands every node's rooms over (Node.Shutdown, all nodes at
// once: each has until ctx ends), then closes the HTTP servers and NATS
// connections, then stops the embedded NATS server and removes its
// directory. It returns the errors, joined.
func (a *app) shutdown(ctx context.Context) error {
	errs := make([]error, len(a.nodes))
	var wg sync.WaitGroup
	for i, n := range a.nodes {
		wg.Go(func() {
			if err := n.node.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", n.node.Name(), err)
			}
		})
	}
	wg.Wait()
	for _, n := range a.nodes {
		if err := n.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: http: %w", n.node.Name(), err))
		}
		n.nc.Close()
	}
	if a.nats != nil {
		errs = append(errs, a.nats.stop())
	}
	return errors.Join(errs...)
}

// chatNode is one node: a Host of the guide's chat, joined to the cluster
// over a NATS connection of its own, served by an HTTP server of its own.
type chatNode struct {
	node *cluster.Node
	nc   *nats.Conn
	srv  *http.Server
	url  string // http://HOST:PORT
}

// startNode listens on addr, connects to NATS at natsURL, joins the
// cluster as name ("" for a random one) and serves.
func startNode(ctx context.Context, natsURL, addr, name string) (*chatNode, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	url := "http://" + ln.Addr().String()
	nc, err := nats.Connect(natsURL, nats.Name("party chat "+url))
	if err != nil {
		ln.Close()
		return nil, err
	}
	h := party.Handler(guide.New)
	node, err := cluster.Join(ctx, h, nc, cluster.Config{
		Node:   name,
		Logger: slog.Default().With("http", url),
	})
	if err != nil {
		nc.Close()
		ln.Close()
		return nil, err
	}
	srv := &http.Server{Handler: newMux(h)}
	go srv.Serve(ln)
	return &chatNode{node: node, nc: nc, srv: srv, url: url}, nil
}

// newMux serves the chat page and mounts h on both URL forms.
func newMux(h *party.Host) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/party/", h)       // the guide's URLs: /party/{room} (the page uses these)
	mux.Handle("/parties/", h)     // partysocket's URLs: /parties/main/{room}
	mux.Handle("/", web.Handler()) // the page: index.html and chat.js
	return mux
}

// embeddedNATS is a NATS server with JetStream, run in this process.
type embeddedNATS struct {
	ns  *server.Server
	dir string // JetStream's store, removed by stop
}

// startNATS starts a NATS server with JetStream on 127.0.0.1:port (0: a
// free port), storing in a fresh temporary directory.
func startNATS(port int) (*embeddedNATS, error) {
	if port == 0 {
		port = server.RANDOM_PORT
	}
	dir, err := os.MkdirTemp("", "party-chat-nats-")
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go ns.Start()
	e := &embeddedNATS{ns: ns, dir: dir}
	if !ns.ReadyForConnections(10 * time.Second) {
		e.stop()
		return nil, fmt.Errorf("the embedded NATS server is not ready after 10s (port %d taken?)", port)
	}
	return e, nil
}

// stop shuts the server down and removes its directory.
func (e *embeddedNATS) stop() error {
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	return os.RemoveAll(e.dir)
}
