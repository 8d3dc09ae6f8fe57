// Command clusterbench runs scenario (a), the fan-out, with the room's
// clients spread over the nodes of a party/cluster: one room of 1,000
// clients, 10 senders x 100 messages of 64 B as fast as the servers deliver
// them (each sender keeps at most -window messages not yet delivered to the
// whole room), on 1, 2 and 3 nodes, each node a process of its own
// (party/cluster/internal/cmd/benchnode: the guide's chat on a Host joined
// with cluster.Join), all on one NATS server, a process of its own too
// (party/cluster/internal/cmd/natsd). Beside them it runs the plain party
// peer (bench/peers/party: the same chat, no cluster, no NATS), so that
// the cost of the cluster layer itself shows.
//
// Run it from the bench directory (it builds ./cmd/load, ./peers/party and
// the two cluster commands):
//
//	cd bench && go run ./clusterbench -rounds 5                 # about 5 minutes
//	cd bench && go run ./clusterbench -clients 40 -messages 10 -rounds 1 -strict   # a smoke run, seconds
//
// Client i dials node i mod N (cmd/load -url with N URLs); client c0 dials
// first, so node n1 owns the room and the others relay to it. Every run
// starts every process fresh (a new NATS server with an empty JetStream
// store): natsd, then the nodes, then, once every node has heard the
// others, the load. The load measures the CPU time (user + system, from
// /proc/PID/stat) of every node and of natsd over the sending phase only
// (from the first send to the last delivery, not the connecting), and
// clusterbench reports it per delivery, in total and split into the owner,
// the other nodes and NATS. Within each round the configurations run one
// after another, in an order that alternates from round to round, and the
// ratio to one node is taken within the round, so that a drift of the
// shared machine falls on every configuration alike.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"party/bench/internal/run"
	"party/bench/internal/table"
)

// result is the part of cmd/load's JSON line used here, and the run's
// configuration.
type result struct {
	Nodes int `json:"nodes"` // 0: the plain party peer
	Round int `json:"round"`

	Connected      int     `json:"connected"`
	ConnectFailed  int     `json:"connect_failed"`
	Expected       int64   `json:"expected"`
	Delivered      int64   `json:"delivered"`
	Lost           int64   `json:"lost"`
	Duplicated     int64   `json:"duplicated"`
	Unexpected     int64   `json:"unexpected"`
	DroppedClients int64   `json:"dropped_clients"`
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	LatencyMs      struct {
		P50, P99, P999, Max float64
	} `json:"latency_ms"`
	ServerCPUSeconds float64   `json:"server_cpu_s"`
	ServerCPUByPID   []float64 `json:"server_cpu_s_by_pid"` // the nodes n1..nN, then natsd
	ServerWriteCalls int64     `json:"server_write_calls"`
	LoadCPUSeconds   float64   `json:"load_cpu_s"`
	Errors           []string  `json:"errors"`
}

// cpuPerDelivery returns the µs of CPU per delivery of the whole server side,
// of the owner node (n1), of the other nodes together and of NATS.
func (r result) cpuPerDelivery() (total, owner, others, nats float64) {
	if r.Delivered == 0 {
		return 0, 0, 0, 0
	}
	us := func(s float64) float64 { return s * 1e6 / float64(r.Delivered) }
	total = us(r.ServerCPUSeconds)
	if r.Nodes == 0 || len(r.ServerCPUByPID) != r.Nodes+1 {
		return total, total, 0, 0
	}
	owner = us(r.ServerCPUByPID[0])
	for _, s := range r.ServerCPUByPID[1:r.Nodes] {
		others += us(s)
	}
	nats = us(r.ServerCPUByPID[r.Nodes])
	return total, owner, others, nats
}

func (r result) clean() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Unexpected == 0 && r.DroppedClients == 0 && r.ConnectFailed == 0
}

// options are the command line's.
type options struct {
	bin      string // the binaries: load, party, benchnode, natsd
	logs     string // the processes' logs
	port     int    // the plain peer listens on it, node k on port+k
	natsPort int
	load     []string // the load's scenario flags
	pprof    bool
	procs    int // GOMAXPROCS of the party processes (the peer, the nodes); 0 leaves Go's default
}

func main() {
	nodesFlag := flag.String("nodes", "0,1,2,3", "configurations to run, comma-separated: a number of nodes, or 0 for the plain party peer (no cluster, no NATS)")
	rounds := flag.Int("rounds", 5, "run every configuration this many times; the table shows medians")
	clients := flag.Int("clients", 1000, "clients in the room")
	senders := flag.Int("senders", 10, "senders among them")
	messages := flag.Int("messages", 100, "messages per sender")
	size := flag.Int("size", 64, "message size in bytes")
	window := flag.Int("window", 20, "messages per sender not yet delivered to the whole room")
	port := flag.Int("port", 18180, "the plain peer listens on 127.0.0.1:PORT, node k on PORT+k")
	natsPort := flag.Int("nats-port", 14280, "natsd listens on 127.0.0.1:PORT")
	outDir := flag.String("out", "results-cluster", "directory for results.jsonl, table.md and the processes' logs")
	bin := flag.String("bin", "", "directory with prebuilt load, party, benchnode and natsd binaries (default: build them)")
	strict := flag.Bool("strict", false, "exit 1 if a run fails or loses, duplicates or misroutes a delivery, drops a client or fails a connection (for a CI smoke run)")
	withPprof := flag.Bool("pprof", false, "start the nodes with -pprof (net/http/pprof at http://127.0.0.1:PORT+k/debug/pprof/); with -hold, to profile by hand")
	procs := flag.Int("gomaxprocs", 0, "GOMAXPROCS of the party peer and of every node (0: Go's default, the number of cores); natsd and the load keep the default")
	hold := flag.Duration("hold", 0, "keep the clients connected and the processes running this long after each run's report")
	flag.Parse()
	log.SetFlags(log.Ltime)
	log.SetPrefix("clusterbench: ")

	var configs []int
	for _, f := range strings.Split(*nodesFlag, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 0 || k > 9 {
			log.Fatalf("-nodes: %q is not a number of nodes from 0 to 9", f)
		}
		configs = append(configs, k)
	}
	run.RaiseFileLimit()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// Exit through os.Exit so that what was started gets its
		// parent-death SIGKILL.
		log.Printf("stopped by %v", <-sigs)
		os.Exit(1)
	}()
	if err := os.MkdirAll(filepath.Join(*outDir, "logs"), 0o755); err != nil {
		log.Fatal(err)
	}
	if *bin == "" {
		dir, err := os.MkdirTemp("", "party-clusterbench-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		log.Printf("building into %s", dir)
		for _, args := range [][]string{
			{"build", "-o", dir + "/", "./cmd/load", "./peers/party"},
			{"build", "-C", "../cluster", "-o", dir + "/", "./internal/cmd/benchnode", "./internal/cmd/natsd"},
		} {
			cmd := exec.Command("go", args...)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				log.Fatalf("go %s (run clusterbench from the bench directory): %v", strings.Join(args, " "), err)
			}
		}
		*bin = dir
	}
	o := options{
		bin: *bin, logs: filepath.Join(*outDir, "logs"), port: *port, natsPort: *natsPort, pprof: *withPprof, procs: *procs,
		load: []string{"-clients", strconv.Itoa(*clients), "-rooms", "1", "-senders", strconv.Itoa(*senders),
			"-messages", strconv.Itoa(*messages), "-size", strconv.Itoa(*size), "-window", strconv.Itoa(*window)},
	}
	if *hold > 0 {
		o.load = append(o.load, "-hold", hold.String())
	}
	loadAvg := run.LoadAvg()
	started := time.Now()
	jsonl, err := os.Create(filepath.Join(*outDir, "results.jsonl"))
	if err != nil {
		log.Fatal(err)
	}
	defer jsonl.Close()

	var results []result
	failures := 0
	for round := 1; round <= *rounds; round++ {
		order := slices.Clone(configs)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, k := range order {
			log.Printf("round %d: %s", round, configName(k))
			r, raw, err := runOne(o, k)
			if err != nil {
				log.Printf("  %s: %v", configName(k), err)
				failures++
				continue
			}
			if !r.clean() {
				failures++
			}
			r.Nodes, r.Round = k, round
			results = append(results, r)
			var m map[string]any
			json.Unmarshal(raw, &m)
			m["nodes"], m["round"] = k, round
			line, _ := json.Marshal(m)
			fmt.Fprintf(jsonl, "%s\n", line)
			total, owner, others, nats := r.cpuPerDelivery()
			log.Printf("  delivered %d/%d (%.0f/s) p50 %.2f ms p99 %.2f ms lost %d dup %d dropped %d; CPU %.3f µs/delivery (owner %.3f, other nodes %.3f, NATS %.3f)%s",
				r.Delivered, r.Expected, r.DeliveriesPerS, r.LatencyMs.P50, r.LatencyMs.P99, r.Lost, r.Duplicated, r.DroppedClients,
				total, owner, others, nats, errorsText(r.Errors))
		}
	}
	header := fmt.Sprintf("%sCommand: `cd bench && %s`.\nLoad average before the run: %s; the run took %s.\n",
		table.Machine(), commandLine(), loadAvg, time.Since(started).Round(time.Second))
	f, err := os.Create(filepath.Join(*outDir, "table.md"))
	if err != nil {
		log.Fatal(err)
	}
	printTable(io.MultiWriter(os.Stdout, f), results, configs, header, *clients, *senders, *messages, *size, *window)
	f.Close()
	log.Printf("wrote %s and %s", jsonl.Name(), f.Name())
	if *strict && failures > 0 {
		log.Fatalf("-strict: %d run(s) failed or were not clean", failures)
	}
}

func configName(k int) string {
	switch k {
	case 0:
		return "party alone"
	case 1:
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", k)
}

func errorsText(errs []string) string {
	if len(errs) == 0 {
		return ""
	}
	return fmt.Sprintf("; errors: %q", errs)
}

// runOne starts configuration k (0: the plain peer; else natsd and k
// nodes), runs the load against it and stops it.
func runOne(o options, k int) (result, []byte, error) {
	var r result
	name := strings.ReplaceAll(configName(k), " ", "-")
	var procs []*proc
	defer func() {
		// The nodes first (their Shutdown talks to NATS), natsd last.
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
	}()
	// serve starts binary with args, to listen on addr, logging to
	// name-what.log.
	serve := func(what, addr, binary string, args ...string) (*proc, error) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("something already listens on %s", addr)
		}
		var env []string
		if o.procs > 0 && binary != "natsd" {
			env = append(env, fmt.Sprintf("GOMAXPROCS=%d", o.procs))
		}
		p, err := startProc(filepath.Join(o.logs, name+"-"+what+".log"), env, filepath.Join(o.bin, binary), args...)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		return p, nil
	}
	var urls, pids, addrs []string
	if k == 0 {
		addr := fmt.Sprintf("127.0.0.1:%d", o.port)
		p, err := serve("party", addr, "party", "-addr", addr)
		if err != nil {
			return r, nil, err
		}
		addrs, pids = append(addrs, addr), append(pids, p.pid())
	} else {
		natsAddr := fmt.Sprintf("127.0.0.1:%d", o.natsPort)
		natsd, err := serve("natsd", natsAddr, "natsd", "-port", strconv.Itoa(o.natsPort))
		if err != nil {
			return r, nil, err
		}
		if err := run.WaitListening(natsAddr, 10*time.Second); err != nil {
			return r, nil, err
		}
		for i := 1; i <= k; i++ {
			addr := fmt.Sprintf("127.0.0.1:%d", o.port+i)
			args := []string{"-addr", addr, "-nats", "nats://" + natsAddr, "-node", fmt.Sprintf("n%d", i)}
			if o.pprof {
				args = append(args, "-pprof")
			}
			p, err := serve(fmt.Sprintf("n%d", i), addr, "benchnode", args...)
			if err != nil {
				return r, nil, err
			}
			addrs, pids = append(addrs, addr), append(pids, p.pid())
		}
		pids = append(pids, natsd.pid())
	}
	for _, addr := range addrs {
		if err := run.WaitListening(addr, 15*time.Second); err != nil {
			return r, nil, err
		}
		urls = append(urls, "ws://"+addr+"/parties/main/")
	}
	if k > 1 {
		// A node relays to the room's owner once it has heard the owner's
		// heartbeat (one a second): until then its clients' joins wait.
		time.Sleep(1500 * time.Millisecond)
	}
	args := append([]string{"-url", strings.Join(urls, ","), "-pid", strings.Join(pids, ",")}, o.load...)
	logf, err := os.Create(filepath.Join(o.logs, name+"-load.log"))
	if err != nil {
		return r, nil, err
	}
	defer logf.Close()
	load := exec.Command(filepath.Join(o.bin, "load"), args...)
	load.Stderr = logf
	load.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := load.Output()
	if err != nil {
		return r, nil, fmt.Errorf("load %s: %v (see %s)", strings.Join(args, " "), err, logf.Name())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	line := []byte(lines[len(lines)-1])
	if err := json.Unmarshal(line, &r); err != nil {
		return r, nil, fmt.Errorf("load output %q: %v", line, err)
	}
	r.Nodes = k
	return r, line, nil
}

// proc is a server process of a run.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
}

// startProc starts path with args and env added to the environment, its
// output to logPath; it gets SIGKILL if clusterbench dies.
func startProc(logPath string, env []string, path string, args ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() string { return strconv.Itoa(p.cmd.Process.Pid) }

// stop ends the process with SIGTERM, or SIGKILL after 10 s.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func commandLine() string {
	return strings.TrimSpace("go run ./clusterbench " + strings.Join(os.Args[1:], " "))
}
