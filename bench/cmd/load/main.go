// Command load is a WebSocket load generator for servers that implement the
// guide's broadcast chat at {url}{room}?_pk={id}: a welcome to the joiner
// ("Welcome, id"), a join notice to the others ("Heads up! id joined..."),
// every message relayed to everyone in the room but its sender, and a leave
// notice ("So sad! id left...").
//
// N clients c0..c{N-1} join R rooms r0..r{R-1} (client i in room i mod R);
// clients c0..c{S-1} are the senders, each sending M text messages of B bytes
// that carry the sender, a sequence number and the send time, either back to
// back (-rate 0) or together at a fixed offered rate of -rate messages per
// second. Every receiver checks each delivery off, so lost, duplicated and
// misrouted deliveries are counted exactly. With -churn T, workers also
// connect T short-lived clients x0..x{T-1} (each waits for its welcome and
// closes with a close handshake) while the residents count the join and leave
// notices they cause. With -flood D, the run is the flood scenario instead
// (flood.go): one client sends back to back for D into a room of readers
// that check every message off, beside a room of two talking every
// -pair-every.
//
// The result is one JSON line on stdout: deliveries per second, latency from
// send to receive (p50, p99, p99.9, max), lost and duplicated deliveries, the
// server's RSS idle, connected and after (from /proc/PID/status with -pid),
// RSS per connection, server CPU time, and the server's goroutines when it
// serves GET /debug/stats.
//
// Clients dial from -src loopback source addresses (127.0.0.2, 127.0.0.3, ...)
// so that tens of thousands of connections do not run out of ephemeral ports,
// and -procs splits the clients over several processes so that no process
// needs more than its open-file limit.
//
// Several servers that share rooms (nodes of a cluster) take a
// comma-separated -url list: client i dials URL i mod the list's length, and
// the first client of each room connects before the others, so that a room
// is placed on the node its first client reaches. -pid then takes every
// server process (the NATS server's too): RSS and CPU are their sums, and
// the report also gives each one's CPU.
//
//	load -url ws://127.0.0.1:8080/parties/main/ -clients 1000 -rooms 1 -senders 10 -messages 100 -size 64 -pid $PID
//	load -url ws://127.0.0.1:8081/parties/main/,ws://127.0.0.1:8082/parties/main/ -pid $NODE1,$NODE2,$NATS
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// config is the whole run's description; every part gets a copy with its
// own Part number.
type config struct {
	URL             string   // the room URL prefix, ending in "/"
	URLs            []string // several, for servers sharing rooms: client i dials URLs[i % len(URLs)]
	Clients         int
	Rooms           int
	Senders         int
	Messages        int
	Size            int
	Rate            float64
	Window          int
	Src             int
	DialConcurrency int
	Drain           time.Duration
	Churn           int
	ChurnWorkers    int
	Flood           time.Duration
	FloodReaders    int
	PairEvery       time.Duration
	Part            int
	Parts           int
}

// report is the JSON line the command prints.
type report struct {
	Label       string  `json:"label,omitempty"`
	Clients     int     `json:"clients"`
	Rooms       int     `json:"rooms"`
	Senders     int     `json:"senders"`
	Messages    int     `json:"messages"`
	Size        int     `json:"size"`
	RateOffered float64 `json:"rate_offered"`
	Window      int     `json:"window,omitempty"`
	Procs       int     `json:"procs"`

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
	Seconds        float64 `json:"seconds"`
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	SentPerS       float64 `json:"sent_per_s"`
	LatencyMs      latency `json:"latency_ms"`

	Welcomes int64 `json:"welcomes"`
	Joins    int64 `json:"joins"`
	Leaves   int64 `json:"leaves"`
	Other    int64 `json:"other"`

	Churn *churnReport `json:"churn,omitempty"`
	Flood *floodReport `json:"flood,omitempty"`

	RSSIdleKiB                int64   `json:"rss_idle_kib"`
	RSSConnectedKiB           int64   `json:"rss_connected_kib"`
	RSSAfterKiB               int64   `json:"rss_after_kib"`
	RSSPerConnKiB             float64 `json:"rss_per_conn_kib"`
	RSSSteadyKiB              int64   `json:"rss_steady_kib,omitempty"`
	RSSPerConnSteadyKiB       float64 `json:"rss_per_conn_steady_kib,omitempty"`
	HeapInuseKiBPerConnSteady float64 `json:"heap_inuse_per_conn_steady_kib,omitempty"`
	StackKiBPerConnSteady     float64 `json:"stack_per_conn_steady_kib,omitempty"`
	GoroutinesPerConnSteady   float64 `json:"goroutines_per_conn_steady,omitempty"`
	RSSConnectedGCKiB         int64   `json:"rss_connected_gc_kib,omitempty"`
	RSSPerConnGCKiB           float64 `json:"rss_per_conn_gc_kib,omitempty"`

	GoroutinesIdle      int     `json:"goroutines_idle"`
	GoroutinesConnected int     `json:"goroutines_connected"`
	GoroutinesPerConn   float64 `json:"goroutines_per_conn"`
	HeapInuseKiBPerConn float64 `json:"heap_inuse_per_conn_kib"`
	StackKiBPerConn     float64 `json:"stack_per_conn_kib"`

	ServerCPUSeconds     float64   `json:"server_cpu_s"`
	ServerCPUByPID       []float64 `json:"server_cpu_s_by_pid,omitempty"` // with several -pid: each one's share, in -pid order
	ServerWriteCalls     int64     `json:"server_write_calls,omitempty"`  // write(2)-like calls of the server processes while sending (syscw)
	ServerWritesByPID    []int64   `json:"server_write_calls_by_pid,omitempty"`
	ServerCPUUsPerDeliv  float64   `json:"server_cpu_us_per_delivery,omitempty"`
	LoadCPUSeconds       float64   `json:"load_cpu_s"`
	ServerConnectCPUSecs float64   `json:"server_connect_cpu_s"`

	Errors []string `json:"errors,omitempty"`
}

type latency struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

type churnReport struct {
	Connections   int64   `json:"connections"`
	Failed        int64   `json:"failed"`
	PerS          float64 `json:"per_s"`
	ConnectMs     latency `json:"connect_ms"`
	CloseMs       latency `json:"close_ms"`
	NoticesExp    int64   `json:"notices_expected"`
	JoinsSeen     int64   `json:"joins_seen"`
	LeavesSeen    int64   `json:"leaves_seen"`
	NoticesMissed int64   `json:"notices_missed"`
}

func main() {
	var cfg config
	flag.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/parties/main/", "room URL prefix; the room id and ?_pk=id are appended. Several, comma-separated (servers sharing rooms): client i dials the (i mod count)th")
	flag.IntVar(&cfg.Clients, "clients", 1000, "resident clients")
	flag.IntVar(&cfg.Rooms, "rooms", 1, "rooms; client i joins room i mod rooms")
	flag.IntVar(&cfg.Senders, "senders", 10, "senders: clients 0..senders-1")
	flag.IntVar(&cfg.Messages, "messages", 100, "messages per sender")
	flag.IntVar(&cfg.Size, "size", 64, "message size in bytes (at least 33, the header)")
	flag.Float64Var(&cfg.Rate, "rate", 0, "offered rate in messages/s over all senders; 0 sends back to back")
	flag.IntVar(&cfg.Window, "window", 0, "with -rate 0: at most this many messages per sender not yet delivered to all of its room's receivers in the same process; 0 sends without waiting")
	flag.IntVar(&cfg.Src, "src", 16, "loopback source addresses 127.0.0.2... to dial from; 0 lets the kernel choose")
	flag.IntVar(&cfg.DialConcurrency, "dial-concurrency", 64, "dials in flight per process")
	flag.DurationVar(&cfg.Drain, "drain", 10*time.Second, "give up on missing deliveries after this long without any")
	flag.IntVar(&cfg.Churn, "churn", 0, "short-lived clients to connect and close during the run")
	flag.IntVar(&cfg.ChurnWorkers, "churn-workers", 16, "churn clients in flight")
	procs := flag.Int("procs", 1, "processes to split the clients over")
	pidFlag := flag.String("pid", "", "server process id, for RSS and CPU from /proc; several, comma-separated, are summed (the nodes of a cluster and their NATS server)")
	debugURL := flag.String("debug", "auto", "server stats URL (GET; POST to its /debug/gc sibling for -gc); auto derives it from -url, empty disables")
	settle := flag.Duration("settle", time.Second, "pause after connecting, before measuring and sending")
	steady := flag.Duration("steady", 0, "after measuring connected RSS, wait this long and measure again (past the servers' keepalive interval, to see idle connections in steady state)")
	gc := flag.Bool("gc", false, "after measuring connected RSS, also force a GC in the server (POST /debug/gc) and measure again")
	label := flag.String("label", "", "label copied into the report")
	hold := flag.Duration("hold", 0, "keep the connections open this long after the report (to profile the server)")
	child := flag.Bool("child", false, "internal: run as a part, config on stdin")
	floodFlags(&cfg)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("load: ")

	if *child {
		in := bufio.NewReader(os.Stdin)
		line, err := in.ReadBytes('\n')
		if err != nil {
			log.Fatal(err)
		}
		var c config
		if err := json.Unmarshal(line, &c); err != nil {
			log.Fatal(err)
		}
		if err := runPart(c, in, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}

	if cfg.Clients < 1 || cfg.Rooms < 1 || cfg.Rooms > cfg.Clients || cfg.Senders < 0 || cfg.Senders > cfg.Clients || cfg.Messages < 0 {
		log.Fatal("need 1 <= rooms <= clients and 0 <= senders <= clients")
	}
	for _, u := range strings.Split(cfg.URL, ",") {
		if u = strings.TrimSpace(u); !strings.HasSuffix(u, "/") {
			u += "/"
		}
		cfg.URLs = append(cfg.URLs, u)
	}
	cfg.URL = cfg.URLs[0]
	if len(cfg.URLs) == 1 {
		cfg.URLs = nil
	}
	pids, err := parsePIDs(*pidFlag)
	if err != nil {
		log.Fatal(err)
	}
	if *debugURL == "auto" {
		*debugURL = deriveDebugURL(cfg.URL)
	}
	cfg.Parts = max(*procs, 1)
	raiseFileLimit()

	o := options{pids: pids, debugURL: *debugURL, settle: *settle, steady: *steady, gc: *gc, label: *label}
	run := measure
	if cfg.Flood > 0 {
		run = measureFlood
	}
	rep, done, err := run(cfg, o)
	if err != nil {
		log.Fatal(err)
	}
	out, _ := json.Marshal(rep)
	fmt.Println(string(out))
	time.Sleep(*hold)
	done()
}

// options are the parent's measuring settings.
type options struct {
	pids     []int  // server processes, for /proc figures (summed); none for none
	debugURL string // the server's /debug/stats, or ""
	settle   time.Duration
	steady   time.Duration
	gc       bool
	label    string
}

// measure connects every part, measures, runs the load and returns the
// report. done closes the clients and waits for the parts.
func measure(cfg config, o options) (rep *report, done func(), err error) {
	rep = &report{
		Label: o.label, Clients: cfg.Clients, Rooms: cfg.Rooms, Senders: cfg.Senders,
		Messages: cfg.Messages, Size: max(cfg.Size, headerLen), RateOffered: cfg.Rate, Window: cfg.Window, Procs: cfg.Parts,
	}
	rep.RSSIdleKiB = rssKiB(o.pids...)
	idle := fetchStats("GET", o.debugURL)
	if idle != nil {
		rep.GoroutinesIdle = idle.Goroutines
	}
	cpuStart := cpuSeconds(o.pids...)

	parts, err := startParts(cfg)
	if err != nil {
		return nil, nil, err
	}
	done = func() {
		for _, pt := range parts {
			pt.in.Close()
		}
		for _, pt := range parts {
			pt.wait()
		}
	}
	fail := func(err error) (*report, func(), error) {
		done()
		return nil, nil, err
	}
	var maxConnect float64
	for _, pt := range parts {
		var env envelope
		if err := pt.dec.Decode(&env); err != nil || env.Ready == nil {
			return fail(fmt.Errorf("part %d did not get ready: %v", pt.n, err))
		}
		rep.Connected += env.Ready.Connected
		rep.ConnectFailed += env.Ready.Failed
		maxConnect = max(maxConnect, env.Ready.ConnectSeconds)
		rep.Errors = append(rep.Errors, env.Ready.Errors...)
	}
	rep.ConnectSeconds = maxConnect
	time.Sleep(o.settle)
	rep.RSSConnectedKiB = rssKiB(o.pids...)
	cpuConnected := cpuSeconds(o.pids...)
	rep.ServerConnectCPUSecs = cpuConnected - cpuStart
	if rep.Connected > 0 && len(o.pids) > 0 {
		rep.RSSPerConnKiB = float64(rep.RSSConnectedKiB-rep.RSSIdleKiB) / float64(rep.Connected)
	}
	if s := fetchStats("GET", o.debugURL); s != nil && rep.Connected > 0 {
		rep.GoroutinesConnected = s.Goroutines
		rep.GoroutinesPerConn = float64(s.Goroutines-rep.GoroutinesIdle) / float64(rep.Connected)
		if idle != nil {
			rep.HeapInuseKiBPerConn = (float64(s.HeapInuse) - float64(idle.HeapInuse)) / 1024 / float64(rep.Connected)
			rep.StackKiBPerConn = (float64(s.StackInuse) - float64(idle.StackInuse)) / 1024 / float64(rep.Connected)
		}
	}
	if o.steady > 0 {
		time.Sleep(o.steady)
		rep.RSSSteadyKiB = rssKiB(o.pids...)
		if rep.Connected > 0 && len(o.pids) > 0 {
			rep.RSSPerConnSteadyKiB = float64(rep.RSSSteadyKiB-rep.RSSIdleKiB) / float64(rep.Connected)
		}
		if s := fetchStats("GET", o.debugURL); s != nil && rep.Connected > 0 && idle != nil {
			rep.HeapInuseKiBPerConnSteady = (float64(s.HeapInuse) - float64(idle.HeapInuse)) / 1024 / float64(rep.Connected)
			rep.StackKiBPerConnSteady = (float64(s.StackInuse) - float64(idle.StackInuse)) / 1024 / float64(rep.Connected)
			rep.GoroutinesPerConnSteady = float64(s.Goroutines-rep.GoroutinesIdle) / float64(rep.Connected)
		}
	}
	if o.gc && o.debugURL != "" {
		fetchStats("POST", strings.TrimSuffix(o.debugURL, "/stats")+"/gc")
		time.Sleep(200 * time.Millisecond)
		rep.RSSConnectedGCKiB = rssKiB(o.pids...)
		if rep.Connected > 0 && len(o.pids) > 0 {
			rep.RSSPerConnGCKiB = float64(rep.RSSConnectedGCKiB-rep.RSSIdleKiB) / float64(rep.Connected)
		}
	}

	cpuRun := cpuSeconds(o.pids...)
	writes := writeCalls(o.pids...)
	cpuRunEach := make([]float64, len(o.pids))
	writesEach := make([]int64, len(o.pids))
	for i, pid := range o.pids {
		cpuRunEach[i], writesEach[i] = cpuSeconds(pid), writeCalls(pid)
	}
	for _, pt := range parts {
		fmt.Fprintln(pt.in, "go")
	}
	var lat, churnLat, closeLat merged
	var firstSend, lastRecv, lastSend, churnStart, churnEnd int64
	var churn churnReport
	for _, pt := range parts {
		var env envelope
		if err := pt.dec.Decode(&env); err != nil || env.Result == nil {
			return fail(fmt.Errorf("part %d did not report: %v", pt.n, err))
		}
		r := env.Result
		rep.Sent += r.Sent
		rep.Expected += r.Expected
		rep.Delivered += r.Delivered
		rep.Duplicated += r.Dups
		rep.Unexpected += r.Unexpected
		rep.DroppedClients += r.Dropped
		rep.Welcomes += r.Welcomes
		rep.Joins += r.Joins
		rep.Leaves += r.Leaves
		rep.Other += r.Other
		rep.LoadCPUSeconds += r.CPUSeconds
		rep.Errors = append(rep.Errors, r.Errors...)
		lat.add(r.Hist, r.HistMax)
		churnLat.add(r.ChurnHist, r.ChurnMax)
		closeLat.add(r.CloseHist, r.CloseMax)
		if r.FirstSend != 0 && (firstSend == 0 || r.FirstSend < firstSend) {
			firstSend = r.FirstSend
		}
		lastRecv = max(lastRecv, r.LastRecv)
		lastSend = max(lastSend, r.LastSend)
		if r.ChurnStart != 0 && (churnStart == 0 || r.ChurnStart < churnStart) {
			churnStart = r.ChurnStart
		}
		churnEnd = max(churnEnd, r.ChurnEnd)
		churn.Connections += r.ChurnDone
		churn.Failed += r.ChurnFailed
		churn.NoticesExp += r.ChurnExp
		churn.JoinsSeen += r.ChurnJoins
		churn.LeavesSeen += r.ChurnLeaves
	}
	rep.ServerCPUSeconds = cpuSeconds(o.pids...) - cpuRun
	rep.ServerWriteCalls = writeCalls(o.pids...) - writes
	if len(o.pids) > 1 {
		for i, pid := range o.pids {
			rep.ServerCPUByPID = append(rep.ServerCPUByPID, cpuSeconds(pid)-cpuRunEach[i])
			rep.ServerWritesByPID = append(rep.ServerWritesByPID, writeCalls(pid)-writesEach[i])
		}
	}
	rep.RSSAfterKiB = rssKiB(o.pids...)
	rep.Lost = rep.Expected - rep.Delivered
	if firstSend != 0 {
		end := max(lastRecv, lastSend)
		rep.Seconds = float64(end-firstSend) / 1e9
		if rep.Seconds > 0 {
			rep.DeliveriesPerS = float64(rep.Delivered) / rep.Seconds
		}
		if d := float64(lastSend-firstSend) / 1e9; d > 0 {
			rep.SentPerS = float64(rep.Sent) / d
		}
	}
	rep.LatencyMs = latencyOf(&lat)
	if rep.Delivered > 0 && len(o.pids) > 0 {
		rep.ServerCPUUsPerDeliv = rep.ServerCPUSeconds * 1e6 / float64(rep.Delivered)
	}
	if cfg.Churn > 0 {
		if d := float64(churnEnd-churnStart) / 1e9; d > 0 {
			churn.PerS = float64(churn.Connections) / d
		}
		churn.ConnectMs = latencyOf(&churnLat)
		churn.CloseMs = latencyOf(&closeLat)
		churn.NoticesMissed = churn.NoticesExp - churn.JoinsSeen - churn.LeavesSeen
		rep.Churn = &churn
	}
	return rep, done, nil
}

func latencyOf(m *merged) latency {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return latency{P50: ms(m.quantile(0.50)), P99: ms(m.quantile(0.99)), P999: ms(m.quantile(0.999)), Max: ms(m.max)}
}

func deriveDebugURL(wsURL string) string {
	u, err := url.Parse(wsURL)
	if err != nil {
		return ""
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	return scheme + "://" + u.Host + "/debug/stats"
}

// raiseFileLimit lifts the soft open-file limit to the hard one; children
// inherit it.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

// partHandle is the parent's end of a part, in this process or a child.
type partHandle struct {
	n    int
	in   io.WriteCloser
	dec  *json.Decoder
	wait func()
}

func startParts(cfg config) ([]*partHandle, error) {
	var parts []*partHandle
	if cfg.Parts == 1 {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runPart(cfg, inR, outW); err != nil {
				log.Print(err)
			}
			outW.Close()
		}()
		wait := func() {
			// The decoder may leave the part's last newline unread.
			go io.Copy(io.Discard, outR)
			wg.Wait()
		}
		return []*partHandle{{n: 0, in: inW, dec: json.NewDecoder(outR), wait: wait}}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	for i := 0; i < cfg.Parts; i++ {
		c := cfg
		c.Part = i
		cmd := exec.Command(exe, "-child")
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the parent
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		line, _ := json.Marshal(c)
		fmt.Fprintf(in, "%s\n", line)
		parts = append(parts, &partHandle{n: i, in: in, dec: json.NewDecoder(out), wait: func() { cmd.Wait() }})
	}
	return parts, nil
}
