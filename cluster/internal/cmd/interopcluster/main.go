// Command interopcluster is the interop suites' server on a cluster: an
// embedded NATS server (JetStream, reached in-process, no port) and -nodes
// nodes (3 by default) in this one process, each serving on an address of
// its own what one of the suites' single servers serves, chosen by -app:
//
//   - interop (the default): what interop/server serves
//     (party/interop/server/app: the guide's chat and the partysocket
//     suite's test parties), for PARTY_INTEROP_NODES (interop/README.md);
//   - yjs: what yjs/internal/cmd/yjsserver serves (party/internal/yjsapp:
//     party/yjs rooms for y-websocket and GET /doc/{room}), with its flags
//     -readonly-token, -persist, -max-update, -max-doc, -max-log-updates
//     and -read-limit, for the yjs tests (interop/yjs) on a cluster.
//
// For example:
//
//	interopcluster -nodes 3 -addr 127.0.0.1:0,127.0.0.1:0,127.0.0.1:0
//	interopcluster -app yjs -data DIR -readonly-token T
//
// -addr lists the nodes' addresses, comma-separated, one per node (empty:
// a free port on 127.0.0.1 for each), so that a test can start the cluster
// again on the same ports. Each node has its own NATS connection and its
// own app, each of whose Hosts joins the cluster under the Host's name
// (Prefix party.NAME, buckets and stream of their own; the yjs app's one
// Host is "yjs"): a room of one Host never meets the same-named room of
// another, as in interop/server. -ping and -ping-timeout set every Host's
// PingInterval and PingTimeout.
//
// -data DIR keeps JetStream's store (the rooms' storage, alarms and
// leases) in DIR, which is left in place at exit: a cluster started again
// on it, after a SIGKILL say, serves the rooms as they were stored. Empty
// means a temporary directory, removed at exit. In the cluster a node is
// named nodeI-BOOT, BOOT being random per process, so that a new process
// never takes a lease the one before held for its own: such a room is
// claimed once that lease has expired (within the TTL, 5 s), and a client
// waits in its upgrade until then.
//
// Once every node of every Host has heard every other's heartbeat, it
// prints one line per node, "nodeI listening on http://ADDR", in node
// order. On SIGUSR1, node1 leaves the cluster while the others serve on:
// it stops accepting, hands its rooms over (cluster.Node.Shutdown: its
// WebSockets, and those of its rooms on other nodes, get 1012; the node a
// client reconnects to claims the room at once), closes its NATS
// connection and prints "node1 left" (a later SIGUSR1 is ignored). On
// SIGTERM or SIGINT it stops accepting on every node, then hands each
// node's rooms over, closes the NATS connections, stops the NATS server
// and exits 0.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"party/cluster"
	"party/internal/yjsapp"
	"party/interop/server/app"
)

const (
	startTimeout    = 15 * time.Second // the NATS server, every Join and the heartbeats
	shutdownTimeout = 10 * time.Second // the HTTP servers, then every node's handover
)

func main() {
	nodes := flag.Int("nodes", 3, "number of nodes")
	addrs := flag.String("addr", "", "the nodes' addresses, comma-separated, one per node (empty: 127.0.0.1:0 for each)")
	appName := flag.String("app", "interop", "what every node serves: interop (interop/server's app) or yjs (yjsserver's)")
	data := flag.String("data", "", "JetStream's store directory, kept at exit (empty: a temporary one, removed at exit)")
	ping := flag.Duration("ping", 0, "Host.PingInterval of every Host (0: the default)")
	pingTimeout := flag.Duration("ping-timeout", 0, "Host.PingTimeout of every Host (0: the default)")
	var yo yjsapp.Options
	yo.Flags(flag.CommandLine) // -app yjs only
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("interopcluster: ")

	list, err := parseAddrs(*addrs, *nodes)
	if err != nil {
		log.Fatal(err)
	}
	var serve newApp
	switch *appName {
	case "interop":
		o := app.Options{PingInterval: *ping, PingTimeout: *pingTimeout}
		serve = func() (http.Handler, []app.NamedHost) {
			a := app.New(o)
			return a.Handler, a.Hosts
		}
	case "yjs":
		serve = func() (http.Handler, []app.NamedHost) {
			a := yjsapp.New(yo)
			a.Host.PingInterval, a.Host.PingTimeout = *ping, *pingTimeout
			return a.Handler, []app.NamedHost{{Name: "yjs", Host: a.Host}}
		}
	default:
		log.Fatalf("-app %q: want interop or yjs", *appName)
	}
	// Caught from the start: a signal right after the lines below is a
	// shutdown, not the default exit.
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	leave := make(chan os.Signal, 1)
	signal.Notify(leave, syscall.SIGUSR1)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	c, err := start(ctx, list, *data, serve)
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range c.nodes {
		fmt.Printf("%s listening on http://%s\n", n.name, n.ln.Addr())
	}

	for running := true; running; {
		select {
		case <-leave:
			c.leave()
		case <-sig.Done():
			running = false
		}
	}
	stop()
	ctx, cancel = context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := c.shutdown(ctx); err != nil {
		log.Fatal(err)
	}
}

// parseAddrs reads -addr: n addresses, or none for n free ports.
func parseAddrs(s string, n int) ([]string, error) {
	if n < 1 {
		return nil, fmt.Errorf("-nodes %d: at least one", n)
	}
	if s == "" {
		addrs := make([]string, n)
		for i := range addrs {
			addrs[i] = "127.0.0.1:0"
		}
		return addrs, nil
	}
	addrs := strings.Split(s, ",")
	if len(addrs) != n {
		return nil, fmt.Errorf("-addr lists %d addresses for %d nodes", len(addrs), n)
	}
	return addrs, nil
}

// newApp builds what one node serves: its handler, and its Hosts with
// their names.
type newApp func() (http.Handler, []app.NamedHost)

// clusterProc is what the command runs: the NATS server and the nodes.
type clusterProc struct {
	ns      *server.Server
	dir     string // JetStream's store
	tempDir bool   // dir is removed at exit
	nodes   []*node
}

// node is one node: an app whose Hosts are joined to the cluster, on a
// NATS connection and an HTTP server of its own.
type node struct {
	name    string // nodeI, as printed
	id      string // its name in the cluster: nodeI-BOOT
	nc      *nats.Conn
	hosts   []string        // the app's Hosts' names
	members []*cluster.Node // the Hosts joined to the cluster, in the order of hosts
	ln      net.Listener
	srv     *http.Server
	left    bool // it left the cluster (SIGUSR1): stopped already
}

// start starts the NATS server on the store dir (empty: a temporary
// directory) and a node per address serving what serve builds, and waits
// until every node has heard every other. On an error, what had started is
// stopped.
func start(ctx context.Context, addrs []string, dir string, serve newApp) (*clusterProc, error) {
	tempDir := dir == ""
	if tempDir {
		var err error
		if dir, err = os.MkdirTemp("", "party-interopcluster-"); err != nil {
			return nil, err
		}
	}
	ns, err := server.NewServer(&server.Options{
		JetStream: true, StoreDir: dir, DontListen: true, NoLog: true, NoSigs: true,
		// Over the Hosts' ReadLimit (1 MiB by default) plus what a message
		// between nodes adds, so that Join leaves every ReadLimit as on one
		// server (it lowers a default one to what max_payload carries).
		MaxPayload: 8 << 20,
	})
	if err != nil {
		if tempDir {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	go ns.Start()
	c := &clusterProc{ns: ns, dir: dir, tempDir: tempDir}
	if !ns.ReadyForConnections(10 * time.Second) {
		c.shutdown(ctx)
		return nil, errors.New("the embedded NATS server is not ready after 10s")
	}
	b := make([]byte, 4)
	rand.Read(b)
	boot := hex.EncodeToString(b)
	for i, addr := range addrs {
		n, err := c.startNode(ctx, fmt.Sprintf("node%d", i+1), boot, addr, serve)
		if err != nil {
			c.shutdown(ctx)
			return nil, fmt.Errorf("node%d at %s: %w", i+1, addr, err)
		}
		c.nodes = append(c.nodes, n)
	}
	if err := c.waitForBeats(ctx); err != nil {
		c.shutdown(ctx)
		return nil, err
	}
	return c, nil
}

// startNode listens on addr, connects to the NATS server and joins each
// Host of what serve builds to the cluster as name-boot, under the Host's
// name.
func (c *clusterProc) startNode(ctx context.Context, name, boot, addr string, serve newApp) (*node, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(c.ns.ClientURL(), nats.InProcessServer(c.ns), nats.Name("interopcluster "+name))
	if err != nil {
		ln.Close()
		return nil, err
	}
	n := &node{name: name, id: name + "-" + boot, nc: nc, ln: ln}
	handler, hosts := serve()
	for _, nh := range hosts {
		m, err := cluster.Join(ctx, nh.Host, nc, config(n.id, nh.Name))
		if err != nil {
			n.shutdown(ctx)
			return nil, fmt.Errorf("joining Host %q: %w", nh.Name, err)
		}
		n.hosts = append(n.hosts, nh.Name)
		n.members = append(n.members, m)
	}
	n.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go n.srv.Serve(ln)
	return n, nil
}

// config is the cluster configuration of the Host named host on node: the
// Hosts of one name, one on each node, form a cluster of their own, with
// subjects, buckets and a stream of their own.
func config(node, host string) cluster.Config {
	return cluster.Config{
		Node:   node,
		Logger: slog.Default().With("host", host),
		Prefix: prefix(host),
		Owners: cluster.OwnersConfig{Bucket: cluster.DefaultOwnersBucket + "_" + host},
		Store: cluster.StoreConfig{
			Stream:      cluster.DefaultStoreStream + "_" + strings.ToUpper(host),
			Subject:     cluster.DefaultStoreSubject + "." + host,
			AlarmBucket: cluster.DefaultAlarmBucket + "_" + host,
		},
	}
}

// prefix is Config.Prefix for the Hosts named host.
func prefix(host string) string { return cluster.DefaultPrefix + "." + host }

// waitForBeats returns once every node of every Host's cluster has sent a
// heartbeat that every other received. A node that has not heard a room's
// owner yet does not relay to it: it waits for the owner's lease to expire
// (up to the TTL), so a client that came in the cluster's first second
// would wait that long. Heartbeats are the nodes' names published on
// Prefix.alive (see Node.heard in node.go); one published after this
// subscription was registered reaches every node, whose subscriptions came
// before it.
func (c *clusterProc) waitForBeats(ctx context.Context) error {
	nc, err := nats.Connect(c.ns.ClientURL(), nats.InProcessServer(c.ns), nats.Name("interopcluster heartbeats"))
	if err != nil {
		return err
	}
	defer nc.Close()
	var mu sync.Mutex
	heard := make(map[string]bool) // subject + " " + node
	sub, err := nc.Subscribe(cluster.DefaultPrefix+".*.alive", func(m *nats.Msg) {
		mu.Lock()
		heard[m.Subject+" "+string(m.Data)] = true
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := nc.FlushWithContext(ctx); err != nil {
		return err
	}
	missing := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, a := range c.nodes {
			for _, h := range a.hosts {
				if !heard[prefix(h)+".alive "+a.id] {
					out = append(out, a.name+"/"+h)
				}
			}
		}
		return out
	}
	for {
		m := missing()
		if len(m) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no heartbeat from %s: %w", strings.Join(m, ", "), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// leave makes node1 leave the cluster while the others serve on (SIGUSR1):
// it stops accepting, hands its rooms over and closes its NATS connection,
// then prints "node1 left".
func (c *clusterProc) leave() {
	n := c.nodes[0]
	if n.left {
		log.Printf("SIGUSR1: %s has left already", n.name)
		return
	}
	n.left = true
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := n.srv.Shutdown(ctx); err != nil {
		log.Printf("%s: http: %v", n.name, err)
	}
	if err := n.shutdown(ctx); err != nil {
		log.Print(err)
	}
	fmt.Printf("%s left\n", n.name)
}

// shutdown stops accepting on every node, so that no client moves to
// another node meanwhile, then hands every node's rooms over, then closes
// the NATS connections, stops the NATS server and removes its directory
// if it is a temporary one. It returns the errors, joined. Nodes that left
// are stopped already.
func (c *clusterProc) shutdown(ctx context.Context) error {
	var errs []error
	for _, n := range c.nodes {
		if n.srv != nil && !n.left {
			if err := n.srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: http: %w", n.name, err))
			}
		}
	}
	for _, n := range c.nodes {
		if n.left {
			continue
		}
		if err := n.shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	c.ns.Shutdown()
	c.ns.WaitForShutdown()
	if c.tempDir {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// shutdown hands the node's rooms over (Node.Shutdown of each Host: its
// WebSockets get 1012), closes its listener and its NATS connection.
func (n *node) shutdown(ctx context.Context) error {
	var errs []error
	for i, m := range n.members {
		if err := m.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: Host %q: %w", n.name, n.hosts[i], err))
		}
	}
	n.ln.Close() // already closed by srv.Shutdown, if it served
	n.nc.Close()
	return errors.Join(errs...)
}
