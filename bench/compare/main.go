// Command compare runs the same load scenarios against each benchmark server
// in bench/peers, starting every server fresh for every scenario, and prints a
// Markdown table of every figure with the ratios party/peer.
//
// Run it from the bench directory (it builds ./cmd/load and ./peers/...):
//
//	cd bench && go run ./compare                 # full run, several minutes
//	cd bench && go run ./compare -scale 0.02     # smoke run, seconds
//	cd bench && go run ./compare -from results/results.jsonl   # table from saved results
//
// Scenarios (sizes at -scale 1):
//
//	a  fan-out: 1 room x 1,000 clients, 10 senders x 100 messages of 64 B, as
//	   fast as possible (each sender keeps at most -window messages not yet
//	   delivered to the whole room, so no server's send buffer overflows)
//	b  latency: the same room at fixed offered rates, 50 and 200 messages/s in
//	   (50,000 and 200,000 deliveries/s out); on 2 cores shared with the load
//	   generator, 50/s is well below saturation and 200/s is near it
//	c  many rooms: 10,000 clients in 1,000 rooms of 10, every client sending,
//	   2,000 messages/s in over all rooms (18,000 deliveries/s out)
//	d  memory: 19,000 idle connections in rooms of 10, from 2 load processes,
//	   measured 3 s after connecting and again a minute later, once every
//	   server has sent its first keepalive pings
//	e  churn: 10,000 short-lived connections (connect, welcome, close
//	   handshake), 16 at a time, into 10 rooms of 10 residents who count the
//	   join and leave notices
//	f  flood: 1 client sends 1 KiB messages back to back for 5 s into a room
//	   where 5 read as fast as they can, beside a room of 2 that exchange a
//	   message every 20 ms: what the server read of the flood, which readers
//	   it kept and complete, the other room's latency, the server's RSS
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"party/bench/internal/run"
	"party/bench/internal/table"
)

// servers in table order; party first.
var allServers = []string{"party", "gorillahub", "melody", "gws"}

var serverTitle = map[string]string{
	"party":      "party",
	"gorillahub": "gorilla hub",
	"melody":     "melody",
	"gws":        "gws",
}

type scenario struct {
	key   string
	title string
	args  []string
}

func scenarios(scale float64, dur time.Duration, window, hardFiles int, bRates []float64, cRate float64, steady time.Duration) []scenario {
	n := func(v int, min int) int {
		return max(int(float64(v)*scale+0.5), min)
	}
	secs := dur.Seconds()
	aClients := n(1000, 20)
	senders := min(10, aClients)
	cClients := n(10000, 40)
	cRooms := max(cClients/10, 1)
	dClients := n(19000, 100)
	if limit := hardFiles - 500; dClients > limit {
		log.Printf("scenario d: %d connections exceed the open-file limit %d; using %d", dClients, hardFiles, limit)
		dClients = limit
	}
	// Each load process holds at most ~9,500 connections, whatever the
	// file limit, so the server is the process that holds the most.
	dProcs := max((dClients+9499)/9500, 1)
	eChurn := n(10000, 100)
	itoa := strconv.Itoa
	ftoa := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	cRate = max(cRate*scale, 1)
	list := []scenario{
		{"a", fmt.Sprintf("(a) fan-out: 1 room x %d clients, %d senders x 100 msgs of 64 B, max rate", aClients, senders), []string{
			"-clients", itoa(aClients), "-rooms", "1", "-senders", itoa(senders), "-messages", "100", "-size", "64",
			"-window", itoa(window)}},
	}
	for _, bRate := range bRates {
		list = append(list, scenario{"b@" + ftoa(bRate), fmt.Sprintf("(b) latency: 1 room x %d clients, %d senders, %g msgs/s in (%s deliveries/s out), %.0f s",
			aClients, senders, bRate, group(int64(bRate*float64(aClients-1))), secs), []string{
			"-clients", itoa(aClients), "-rooms", "1", "-senders", itoa(senders), "-size", "64",
			"-rate", ftoa(bRate), "-messages", itoa(max(int(bRate*secs)/senders, 1))}})
	}
	return append(list,
		scenario{"c", fmt.Sprintf("(c) many rooms: %d clients in %d rooms of 10, all sending, %g msgs/s in, %.0f s", cClients, cRooms, cRate, secs), []string{
			"-clients", itoa(cClients), "-rooms", itoa(cRooms), "-senders", itoa(cClients), "-size", "64",
			"-rate", ftoa(cRate), "-messages", itoa(max(int(cRate*secs/float64(cClients)+0.5), 1))}},
		scenario{"d", fmt.Sprintf("(d) memory: %d idle connections in rooms of 10, from %d load process(es); measured 3 s and %.0f s after connecting", dClients, dProcs, 3+steady.Seconds()), []string{
			"-clients", itoa(dClients), "-rooms", itoa(max(dClients/10, 1)), "-senders", "0", "-messages", "0",
			"-procs", itoa(dProcs), "-settle", "3s", "-steady", steady.String(), "-gc"}},
		scenario{"e", fmt.Sprintf("(e) churn: %d connections (connect, welcome, close), 16 at a time, 10 rooms x 10 residents", eChurn), []string{
			"-clients", "100", "-rooms", "10", "-senders", "0", "-messages", "0",
			"-churn", itoa(eChurn), "-churn-workers", "16"}},
		floodScenario(),
	)
}

// result is the part of cmd/load's JSON line that the table uses.
type result struct {
	Label          string  `json:"label"`
	Server         string  `json:"server"`
	Scenario       string  `json:"scenario"`
	Round          int     `json:"round"`
	Connected      int     `json:"connected"`
	ConnectFailed  int     `json:"connect_failed"`
	ConnectSeconds float64 `json:"connect_seconds"`
	Sent           int64   `json:"sent"`
	Expected       int64   `json:"expected"`
	Delivered      int64   `json:"delivered"`
	Lost           int64   `json:"lost"`
	Duplicated     int64   `json:"duplicated"`
	Unexpected     int64   `json:"unexpected"`
	DroppedClients int64   `json:"dropped_clients"`
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	SentPerS       float64 `json:"sent_per_s"`
	LatencyMs      struct {
		P50, P99, P999, Max float64
	} `json:"latency_ms"`
	Churn *struct {
		Connections   int64   `json:"connections"`
		Failed        int64   `json:"failed"`
		PerS          float64 `json:"per_s"`
		NoticesMissed int64   `json:"notices_missed"`
		ConnectMs     struct {
			P50, P99, P999, Max float64
		} `json:"connect_ms"`
	} `json:"churn"`
	RSSIdleKiB          int64        `json:"rss_idle_kib"`
	RSSConnectedKiB     int64        `json:"rss_connected_kib"`
	RSSAfterKiB         int64        `json:"rss_after_kib"`
	RSSPerConnKiB       float64      `json:"rss_per_conn_kib"`
	RSSPerConnGCKiB     float64      `json:"rss_per_conn_gc_kib"`
	RSSPerConnSteadyKiB float64      `json:"rss_per_conn_steady_kib"`
	HeapSteadyKiB       float64      `json:"heap_inuse_per_conn_steady_kib"`
	StackSteadyKiB      float64      `json:"stack_per_conn_steady_kib"`
	GoroutinesPerConn   float64      `json:"goroutines_per_conn"`
	HeapInuseKiBPerConn float64      `json:"heap_inuse_per_conn_kib"`
	StackKiBPerConn     float64      `json:"stack_per_conn_kib"`
	ServerCPUSeconds    float64      `json:"server_cpu_s"`
	ServerCPUUsPerDeliv float64      `json:"server_cpu_us_per_delivery"`
	LoadCPUSeconds      float64      `json:"load_cpu_s"`
	Flood               *floodResult `json:"flood"`
	Errors              []string     `json:"errors"`
}

func main() {
	serversFlag := flag.String("servers", strings.Join(allServers, ","), "servers to run, comma-separated")
	only := flag.String("scenarios", "a,b,c,d,e,f", "scenarios to run, comma-separated")
	scale := flag.Float64("scale", 1, "multiply client, message and churn counts (e.g. 0.02 for a smoke run)")
	dur := flag.Duration("duration", 10*time.Second, "length of the fixed-rate scenarios b and c")
	window := flag.Int("window", 20, "scenario a: messages per sender not yet delivered to the whole room")
	bRatesFlag := flag.String("b-rates", "50,200", "scenario b: offered rates in messages/s in (x room size - 1 deliveries/s out), comma-separated")
	cRate := flag.Float64("c-rate", 2000, "scenario c: messages/s in over all rooms, at -scale 1")
	steady := flag.Duration("steady", time.Minute, "scenario d: measure again this long after connecting, past every server's keepalive ping (party 30 s, gorilla hub, melody and gws 54 s)")
	rounds := flag.Int("rounds", 1, "run everything this many times; the table shows medians")
	addr := flag.String("addr", "127.0.0.1:18080", "address the servers listen on")
	outDir := flag.String("out", "results", "directory for results.jsonl, table.md and the servers' logs")
	from := flag.String("from", "", "skip running: print the table from this results.jsonl")
	strict := flag.Bool("strict", false, "exit 1 if a run fails or party loses, duplicates or misroutes a delivery, drops a client or fails a connection (for a CI smoke run)")
	bin := flag.String("bin", "", "directory with prebuilt load, party, gorillahub, melody and gws binaries, and any party-REV (party built at REV, run with -servers party-REV) (default: build them)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	log.SetPrefix("compare: ")

	if *from != "" {
		rs, err := readResults(*from)
		if err != nil {
			log.Fatal(err)
		}
		printTable(os.Stdout, rs, machineHeader(commandLine(), ""))
		return
	}

	hard := run.RaiseFileLimit()
	// Stopped by a signal, exit through os.Exit so that the servers and
	// load generators started get their parent-death SIGKILL.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		log.Printf("stopped by %v", s)
		os.Exit(1)
	}()
	servers := strings.Split(*serversFlag, ",")
	var bRates []float64
	for _, f := range strings.Split(*bRatesFlag, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			log.Fatalf("-b-rates: bad rate %q", f)
		}
		bRates = append(bRates, v)
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		want[strings.TrimSpace(s)] = true
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		log.Fatal(err)
	}
	if *bin == "" {
		dir, err := os.MkdirTemp("", "party-bench-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		log.Printf("building into %s", dir)
		cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/load", "./peers/party", "./peers/gorillahub", "./peers/melody", "./peers/gws")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			log.Fatalf("build (run compare from the bench directory): %v", err)
		}
		*bin = dir
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
		for _, sc := range scenarios(*scale, *dur, *window, hard, bRates, *cRate, *steady) {
			if !want[strings.Split(sc.key, "@")[0]] {
				continue
			}
			for _, srv := range servers {
				log.Printf("round %d %s on %s", round, sc.key, srv)
				r, raw, err := runOne(*bin, srv, sc, *addr, *outDir)
				if err != nil {
					log.Printf("  %s %s: %v", sc.key, srv, err)
					failures++
					continue
				}
				if srv == "party" && !clean(r) {
					failures++
				}
				r.Server, r.Scenario, r.Round, r.Label = srv, sc.key, round, sc.title
				results = append(results, r)
				var m map[string]any
				json.Unmarshal(raw, &m)
				m["server"], m["scenario"], m["round"], m["label"] = srv, sc.key, round, sc.title
				line, _ := json.Marshal(m)
				fmt.Fprintf(jsonl, "%s\n", line)
				log.Printf("  %s", summary(r))
			}
		}
	}
	header := machineHeader(commandLine(), fmt.Sprintf("load average before the run: %s; the run took %s",
		loadAvg, time.Since(started).Round(time.Second)))
	f, err := os.Create(filepath.Join(*outDir, "table.md"))
	if err != nil {
		log.Fatal(err)
	}
	printTable(io.MultiWriter(os.Stdout, f), results, header)
	f.Close()
	log.Printf("wrote %s and %s", filepath.Join(*outDir, "results.jsonl"), filepath.Join(*outDir, "table.md"))
	if *strict && failures > 0 {
		log.Fatalf("-strict: %d run(s) failed or party was not clean", failures)
	}
}

// clean reports whether a run lost, duplicated or misrouted nothing, kept
// every client and had every connection succeed.
func clean(r result) bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Unexpected == 0 && r.DroppedClients == 0 && r.ConnectFailed == 0 &&
		(r.Churn == nil || (r.Churn.Failed == 0 && r.Churn.NoticesMissed == 0))
}

// commandLine is how this run was started, as typed in bench/.
func commandLine() string {
	return strings.TrimSpace("go run ./compare " + strings.Join(os.Args[1:], " "))
}

func summary(r result) string {
	s := fmt.Sprintf("delivered %d/%d (%.0f/s) p50 %.2f ms p99 %.2f ms lost %d dup %d dropped %d, %.1f KiB RSS/conn",
		r.Delivered, r.Expected, r.DeliveriesPerS, r.LatencyMs.P50, r.LatencyMs.P99, r.Lost, r.Duplicated, r.DroppedClients, r.RSSPerConnKiB)
	if r.Churn != nil {
		s += fmt.Sprintf(", churn %d at %.0f/s, %d notices missed", r.Churn.Connections, r.Churn.PerS, r.Churn.NoticesMissed)
	}
	if f := r.Flood; f != nil {
		s += fmt.Sprintf(", flood %.0f msgs/s read, readers kept %d, complete %d, RSS +%.1f MiB", f.AcceptedPerS, f.ReadersKept, f.ReadersComplete, float64(f.RSSGrowthKiB)/1024)
	}
	if len(r.Errors) > 0 {
		s += fmt.Sprintf("; errors: %q", r.Errors)
	}
	return s
}

// runOne starts srv fresh, runs the load for sc against it, and stops it.
func runOne(bin, srv string, sc scenario, addr, outDir string) (result, []byte, error) {
	var r result
	logf, err := os.Create(filepath.Join(outDir, fmt.Sprintf("%s-%s.log", srv, sc.key)))
	if err != nil {
		return r, nil, err
	}
	defer logf.Close()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		return r, nil, fmt.Errorf("something already listens on %s", addr)
	}
	server := exec.Command(filepath.Join(bin, srv), "-addr", addr)
	server.Stdout, server.Stderr = logf, logf
	server.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive compare
	if err := server.Start(); err != nil {
		return r, nil, err
	}
	defer stop(server)
	if err := run.WaitListening(addr, 10*time.Second); err != nil {
		return r, nil, err
	}
	args := append([]string{"-url", "ws://" + addr + "/parties/main/", "-pid", strconv.Itoa(server.Process.Pid)}, sc.args...)
	load := exec.Command(filepath.Join(bin, "load"), args...)
	load.Stderr = logf
	load.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := load.Output()
	if err != nil {
		return r, nil, fmt.Errorf("load %s: %v (see %s)", strings.Join(args, " "), err, logf.Name())
	}
	line := lastLine(out)
	if err := json.Unmarshal(line, &r); err != nil {
		return r, nil, fmt.Errorf("load output %q: %v", line, err)
	}
	return r, line, nil
}

func lastLine(b []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return []byte(lines[len(lines)-1])
}

func stop(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func machineHeader(command, extra string) string {
	var b strings.Builder
	b.WriteString(table.Machine())
	fmt.Fprintf(&b, "Command: `cd bench && %s`.\n", command)
	if extra != "" {
		fmt.Fprintf(&b, "%s.\n", strings.ToUpper(extra[:1])+extra[1:])
	}
	return b.String()
}

func readResults(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []result
	dec := json.NewDecoder(f)
	for {
		var r result
		if err := dec.Decode(&r); err == io.EOF {
			return rs, nil
		} else if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
}
