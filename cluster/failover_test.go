package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"party"
	"party/storage"
)

// The failover test runs each node in a process of its own (the test
// binary, re-executed to run TestHelperNode), so that the owner of a room
// can be killed with SIGKILL: no Shutdown, no release, no last word on NATS.

const (
	failoverTTL = 2 * time.Second
	// helperNodeEnv names the node that TestHelperNode runs; unset, the
	// test is skipped. helperNATSEnv is the NATS server's URL.
	helperNodeEnv = "PARTY_CLUSTER_TEST_NODE"
	helperNATSEnv = "PARTY_CLUSTER_TEST_NATS"
)

// failoverServer is the room of the failover test. "inc" adds one to the
// counter "count" in the room's storage and answers the sender "ack <n>"
// once Put has returned nil (so an ack means durably stored); "get" answers
// "count <n>"; anything else goes to everyone else, after the sender's id.
type failoverServer struct{ room *party.Room }

func (s *failoverServer) OnMessage(msg party.Message, sender *party.Connection) {
	switch text := msg.String(); text {
	case "inc":
		n, err := s.count()
		if err == nil {
			err = s.room.Storage().Put("count", []byte(strconv.Itoa(n+1)))
		}
		if err != nil {
			sender.Send(party.Text("error " + err.Error()))
			return
		}
		sender.Send(party.Text("ack " + strconv.Itoa(n+1)))
	case "get":
		n, err := s.count()
		if err != nil {
			sender.Send(party.Text("error " + err.Error()))
			return
		}
		sender.Send(party.Text("count " + strconv.Itoa(n)))
	default:
		s.room.Broadcast(party.Text(sender.ID()+" "+text), sender.ID())
	}
}

func (s *failoverServer) count() (int, error) {
	v, err := s.room.Storage().Get("count")
	if errors.Is(err, storage.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(v))
}

// TestHelperNode is one node process of TestFailoverSIGKILL, which starts
// it with helperNodeEnv set; otherwise it is skipped. It serves until it is
// killed, or its standard input ends (the test process is gone).
func TestHelperNode(t *testing.T) {
	name := os.Getenv(helperNodeEnv)
	if name == "" {
		t.Skip("a node process of TestFailoverSIGKILL, which starts it")
	}
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "helper node %s: %v\n", name, err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	nc, err := nats.Connect(os.Getenv(helperNATSEnv), nats.Name(name))
	if err != nil {
		fail(err)
	}
	h := party.Handler(func(r *party.Room) party.Server { return &failoverServer{room: r} })
	h.Logger = log
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Join(ctx, h, nc, Config{
		Node: name, TTL: failoverTTL, Logger: log,
		Owners: OwnersConfig{Bucket: "owners"},
		Store:  StoreConfig{Stream: "STORE", Subject: "store", AlarmBucket: "alarms"},
	}); err != nil {
		fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	fmt.Printf("listening %s\n", ln.Addr())
	fail(http.Serve(ln, h))
}

// TestFailoverSIGKILL: three node processes, four rooms each with one client
// per node, increments acknowledged by the rooms' storage; the owner of a
// room is killed with SIGKILL. The clients that survivors hold in its rooms
// are closed with 1012 and reconnect; each sees the room answer again
// within TTL + 1 s of the kill. Then every message sent reaches every other
// client of its room exactly once and in order, and each room's counter
// holds every increment acknowledged (an unacknowledged one may or may not
// have landed).
func TestFailoverSIGKILL(t *testing.T) {
	ns := startServerForProcesses(t)
	nc, js := connect(t, ns)
	owners := newOwners(t, js, "test", failoverTTL) // only to read the bucket

	procs := make([]*nodeProc, 3)
	for i := range procs {
		procs[i] = startNodeProc(t, "n"+strconv.Itoa(i+1), ns.ClientURL())
	}
	for _, p := range procs {
		p.waitAddr(t, 30*time.Second)
	}
	waitNodeBeats(t, nc, procs)

	dialer := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(dialer.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		running.Wait()
	})

	// Room i is first joined (and so claimed) on node i mod 3, then by one
	// client on each other node.
	const rooms = 4
	clients := make([][]*fclient, rooms) // [room][node]
	start := func(room, node int) *fclient {
		c := &fclient{
			id: fmt.Sprintf("r%dn%d", room, node+1), room: "r" + strconv.Itoa(room), home: node,
			procs: procs, http: dialer, events: make(chan fevent, 1024),
		}
		running.Add(1)
		go func() {
			defer running.Done()
			c.run(ctx)
		}()
		clients[room][node] = c
		return c
	}
	for room := range rooms {
		clients[room] = make([]*fclient, len(procs))
		first := start(room, room%len(procs))
		if _, err := first.roundTrip(10 * time.Second); err != nil {
			t.Fatalf("%s: %v", first.id, err)
		}
	}
	var all []*fclient
	for room := range rooms {
		for node := range procs {
			if clients[room][node] == nil {
				start(room, node)
			}
			all = append(all, clients[room][node])
		}
	}
	forEachClient(t, all, func(c *fclient) error {
		_, err := c.roundTrip(10 * time.Second)
		return err
	})

	// Who owns what; the victim is the owner of r0.
	ownerOf := make([]string, rooms)
	for room := range rooms {
		own, err := owners.Owner(testCtx(t, 5*time.Second), "main", "r"+strconv.Itoa(room))
		if err != nil {
			t.Fatalf("owner of r%d: %v", room, err)
		}
		ownerOf[room] = own.Node
	}
	victim := slices.IndexFunc(procs, func(p *nodeProc) bool { return p.name == ownerOf[0] })
	if victim < 0 {
		t.Fatalf("r0 is owned by %q, not a node of the test", ownerOf[0])
	}
	t.Logf("owners: %v; killing %s", ownerOf, procs[victim].name)

	// Increments from every client, up to 8 unacknowledged each, for 500 ms
	// and until the owner next renews r0's lease, then SIGKILL with
	// increments in flight.
	stopInc := make(chan struct{})
	var incs sync.WaitGroup
	for _, c := range all {
		incs.Add(1)
		go func() {
			defer incs.Done()
			c.increment(stopInc)
		}()
	}
	time.Sleep(500 * time.Millisecond)
	// Kill just after the owner renewed r0's lease: the worst case for the
	// bound, as the lease then lives a whole TTL after the kill.
	renewed, since := ownerOf0(t, owners), time.Now()
	for own := renewed; own.Revision == renewed.Revision; own = ownerOf0(t, owners) {
		if time.Since(since) > failoverTTL {
			t.Fatalf("%s did not renew its lease of r0 within the TTL", procs[victim].name)
		}
		time.Sleep(2 * time.Millisecond)
	}
	killed := time.Now()
	procs[victim].kill()
	// When the dead owner's lease is gone from the bucket (expired, and
	// perhaps claimed already by a survivor).
	expired := make(chan time.Duration, 1)
	go func() {
		for time.Since(killed) < failoverTTL+5*time.Second {
			own, err := owners.Owner(context.Background(), "main", "r0")
			if errors.Is(err, ErrNoOwner) || (err == nil && own.Node != procs[victim].name) {
				expired <- time.Since(killed)
				return
			}
			if err != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		expired <- -1
	}()
	close(stopInc)
	incs.Wait()

	// Recovery: each client sends "get" (again on each new connection)
	// until a "count" answers it.
	recovered := make(map[*fclient]time.Duration)
	var recMu sync.Mutex
	forEachClient(t, all, func(c *fclient) error {
		at, err := c.roundTrip(failoverTTL + 5*time.Second)
		if err != nil {
			return err
		}
		recMu.Lock()
		recovered[c] = at.Sub(killed)
		recMu.Unlock()
		return nil
	})
	// The bound: the time from just before the kill to the client's read of
	// the answer. It includes the rest of the dead owner's lease (at most
	// TTL: the last renewal was sent before the kill), the NATS server's
	// lateness in removing the expired key (its expiry timer runs at most
	// every 250 ms), the survivors' detection (3 beats of 200 ms), the
	// client's reconnect delay (50-100 ms) and any dial refused meanwhile,
	// Place's polling (50 ms), the claim, the storage's replay and fence,
	// the join and one round trip. No other slack.
	bound := failoverTTL + time.Second
	if d := <-expired; d >= 0 {
		t.Logf("the killed owner's lease of r0 was gone from the bucket %v after the kill", d.Round(time.Millisecond))
	}
	for room := range rooms {
		moved := ownerOf[room] == procs[victim].name
		var times []string
		for node, c := range clients[room] {
			d := recovered[c]
			closes := c.closeList()
			switch {
			case node == victim:
				times = append(times, fmt.Sprintf("%s %v (its node killed)", c.id, d.Round(time.Millisecond)))
				continue
			case moved && (len(closes) == 0 || closes[0].code != websocket.StatusServiceRestart):
				t.Errorf("%s, held by survivor %s in a room of the killed node: closes %v, want 1012 first", c.id, procs[node].name, closes)
			case !moved && len(closes) > 0:
				t.Errorf("%s, held by survivor %s in a room of survivor %s: closed %v", c.id, procs[node].name, ownerOf[room], closes)
			}
			times = append(times, fmt.Sprintf("%s %v", c.id, d.Round(time.Millisecond)))
			if d > bound {
				t.Errorf("%s (held by survivor %s, room of %s) answered %v after the kill, want <= TTL + 1s = %v", c.id, procs[node].name, ownerOf[room], d, bound)
			}
		}
		what := "owned by survivor " + ownerOf[room]
		if moved {
			what = "owned by the killed node"
		}
		t.Logf("r%d (%s): recovered after %s", room, what, strings.Join(times, ", "))
	}
	if t.Failed() {
		t.FailNow()
	}

	// Exactly once, in order: every client sends numbered messages; every
	// other client of its room gets each once, in order.
	const sequence = 20
	gens := make(map[*fclient]int)
	for _, c := range all {
		gens[c] = c.generation()
	}
	forEachClient(t, all, func(c *fclient) error {
		for k := range sequence {
			if _, err := c.send("seq " + strconv.Itoa(k)); err != nil {
				return fmt.Errorf("sending seq %d: %w", k, err)
			}
		}
		return nil
	})
	forEachClient(t, all, func(c *fclient) error {
		next := make(map[string]int)
		var others []string
		for _, o := range clients[roomIndex(c.room)] {
			if o != c {
				others = append(others, o.id)
				next[o.id] = 0
			}
		}
		deadline := time.After(10 * time.Second)
		for !allReached(next, sequence) {
			select {
			case ev := <-c.events:
				if ev.closed {
					return fmt.Errorf("closed while receiving the sequences: %v", c.closeList())
				}
				from, rest, _ := strings.Cut(ev.text, " ")
				want, ok := next[from]
				if !ok || rest != "seq "+strconv.Itoa(want) {
					return fmt.Errorf("got %q; next expected: %v (from %v)", ev.text, next, others)
				}
				next[from]++
			case <-deadline:
				return fmt.Errorf("after 10s: received %v of %d each", next, sequence)
			}
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // for late duplicates
	for _, c := range all {
		select {
		case ev := <-c.events:
			t.Errorf("%s: after every sequence, also got %+v", c.id, ev)
		default:
		}
		if g := c.generation(); g != gens[c] {
			t.Errorf("%s reconnected during the sequences (connection %d, then %d): %v", c.id, gens[c], g, c.closeList())
		}
	}

	// The counters: every acknowledged increment is in, none counted twice.
	for room := range rooms {
		var acks []fack
		sent := 0
		counts := make([]int, 0, len(procs))
		for _, c := range clients[room] {
			n, err := c.get()
			if err != nil {
				t.Fatalf("%s: %v", c.id, err)
			}
			counts = append(counts, n)
			c.mu.Lock()
			acks = append(acks, c.acks...)
			sent += c.sentIncs
			c.mu.Unlock()
		}
		count := counts[0]
		if slices.Max(counts) != slices.Min(counts) {
			t.Errorf("r%d: the room's clients read different counts %v", room, counts)
		}
		values := make(map[int]bool)
		var twice, lost []int
		before := 0
		for _, a := range acks {
			if values[a.value] {
				twice = append(twice, a.value)
			}
			values[a.value] = true
			if a.value > count {
				lost = append(lost, a.value)
			}
			if a.at.Before(killed) {
				before++
			}
		}
		if len(twice) > 0 {
			slices.Sort(twice)
			t.Errorf("r%d: %d values acknowledged twice (an increment lost each), the first %v", room, len(twice), twice[:min(len(twice), 5)])
		}
		if len(lost) > 0 {
			slices.Sort(lost)
			t.Errorf("r%d: count %d, but %d increments acknowledged above it (lost), the first %v", room, count, len(lost), lost[:min(len(lost), 5)])
		}
		if count < len(acks) || count > sent {
			t.Errorf("r%d: count %d, want between %d acknowledged and %d sent", room, count, len(acks), sent)
		}
		t.Logf("r%d: count %d: %d increments sent, %d acknowledged (%d before the kill), %d unacknowledged landed",
			room, count, sent, len(acks), before, count-len(acks))
	}
}

// ownerOf0 returns the owner of room r0.
func ownerOf0(t *testing.T, owners *Owners) Owner {
	t.Helper()
	own, err := owners.Owner(testCtx(t, 5*time.Second), "main", "r0")
	if err != nil {
		t.Fatalf("owner of r0: %v", err)
	}
	return own
}

// roomIndex is the number of room "r<i>".
func roomIndex(room string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(room, "r"))
	return i
}

func allReached(next map[string]int, n int) bool {
	for _, k := range next {
		if k < n {
			return false
		}
	}
	return true
}

// forEachClient runs f for every client at once, and fails the test with the
// errors.
func forEachClient(t *testing.T, clients []*fclient, f func(*fclient) error) {
	t.Helper()
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() { errs[i] = f(c) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", clients[i].id, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// startServerForProcesses runs an embedded JetStream server that other
// processes can reach, on a free port of 127.0.0.1.
func startServerForProcesses(t *testing.T) *server.Server {
	t.Helper()
	return startListeningServer(t, t.TempDir(), server.RANDOM_PORT)
}

// waitNodeBeats waits until every node has heard every other: two beats
// of each after all have subscribed (they print their address after).
func waitNodeBeats(t *testing.T, nc *nats.Conn, procs []*nodeProc) {
	t.Helper()
	beats := make(chan string, 64)
	sub, err := nc.Subscribe(DefaultPrefix+".alive", func(m *nats.Msg) {
		select {
		case beats <- string(m.Data):
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	heard := make(map[string]int)
	deadline := time.After(10 * time.Second)
	for {
		done := true
		for _, p := range procs {
			done = done && heard[p.name] >= 2
		}
		if done {
			return
		}
		select {
		case name := <-beats:
			heard[name]++
		case <-deadline:
			t.Fatalf("heartbeats heard in 10s: %v", heard)
		}
	}
}

// nodeProc is a node running in a process of its own.
type nodeProc struct {
	name string
	cmd  *exec.Cmd
	out  *addrWriter
	logs *nodeLog
	dead atomic.Bool
	addr string
}

// startNodeProc starts node name on the NATS server at url; the process is
// killed at the end of the test, and its log shown if the test failed (or
// if it found a data race).
func startNodeProc(t *testing.T, name, url string) *nodeProc {
	t.Helper()
	p := &nodeProc{name: name, out: &addrWriter{addr: make(chan string, 1)}, logs: &nodeLog{}}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperNode$", "-test.count=1")
	p.cmd.Env = append(os.Environ(), helperNodeEnv+"="+name, helperNATSEnv+"="+url)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.logs
	if _, err := p.cmd.StdinPipe(); err != nil { // the node exits when it ends
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.kill()
		logs := p.logs.String()
		if strings.Contains(logs, "DATA RACE") || strings.Contains(logs, "panic:") {
			t.Errorf("node %s:\n%s", name, logs)
		} else if t.Failed() {
			t.Logf("node %s's log:\n%s", name, logs)
		}
	})
	return p
}

func (p *nodeProc) waitAddr(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case p.addr = <-p.out.addr:
	case <-time.After(within):
		t.Fatalf("node %s did not listen within %v; its log:\n%s", p.name, within, p.logs.String())
	}
}

// kill kills the process with SIGKILL (once) and waits for it.
func (p *nodeProc) kill() {
	if p.dead.CompareAndSwap(false, true) {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// addrWriter is a node's standard output: it passes on the address of its
// first "listening <addr>" line.
type addrWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
	sent bool
}

func (w *addrWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		for line := range strings.Lines(w.buf.String()) {
			if addr, ok := strings.CutPrefix(line, "listening "); ok && strings.HasSuffix(addr, "\n") {
				w.addr <- strings.TrimSpace(addr)
				w.sent = true
				break
			}
		}
	}
	return len(p), nil
}

type nodeLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *nodeLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *nodeLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fclient is a client of the failover test: it connects to its home node
// and, whenever its socket closes, reconnects with the same id after 50-100
// ms to a surviving node, trying them in turn. What it reads goes to
// events, but acks, which it keeps.
type fclient struct {
	id, room string
	home     int
	procs    []*nodeProc
	http     *http.Client
	events   chan fevent

	mu       sync.Mutex
	conn     *websocket.Conn // nil while (re)connecting
	gen      int             // connections made
	closes   []fclose
	acks     []fack
	sentIncs int
	inflight int // increments not yet acknowledged on this connection
}

// fevent is a message read by a client on its connection gen, or the end
// of that connection.
type fevent struct {
	gen    int
	text   string
	closed bool
	at     time.Time
}

type fclose struct {
	gen    int
	node   string
	code   websocket.StatusCode
	reason string
}

func (c fclose) String() string {
	return fmt.Sprintf("#%d on %s: %d %q", c.gen, c.node, c.code, c.reason)
}

type fack struct {
	value int
	at    time.Time
}

var errClientNotConnected = errors.New("not connected")

func (c *fclient) run(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(50+rand.IntN(51)) * time.Millisecond):
			}
		}
		node := c.pick(attempt)
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		u := "ws://" + node.addr + "/parties/main/" + c.room + "?_pk=" + c.id
		conn, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPClient: c.http})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			continue // refused while the room moves, or a dead node
		}
		c.mu.Lock()
		c.gen++
		gen := c.gen
		c.conn, c.inflight = conn, 0
		c.mu.Unlock()
		c.read(ctx, conn, gen, node.name)
		if ctx.Err() != nil {
			return
		}
	}
}

// pick returns the node for the attempt-th connection: home first, then
// the surviving nodes in turn.
func (c *fclient) pick(attempt int) *nodeProc {
	for i := range c.procs {
		p := c.procs[(c.home+attempt+i)%len(c.procs)]
		if !p.dead.Load() {
			return p
		}
	}
	return c.procs[c.home]
}

// read reads connection gen until it ends.
func (c *fclient) read(ctx context.Context, conn *websocket.Conn, gen int, node string) {
	defer conn.CloseNow()
	for {
		_, data, err := conn.Read(ctx)
		at := time.Now()
		if err != nil {
			var ce websocket.CloseError
			cl := fclose{gen: gen, node: node, code: -1, reason: err.Error()}
			if errors.As(err, &ce) {
				cl.code, cl.reason = ce.Code, ce.Reason
			}
			c.mu.Lock()
			c.conn = nil
			c.closes = append(c.closes, cl)
			c.mu.Unlock()
			c.emit(ctx, fevent{gen: gen, closed: true, at: at})
			return
		}
		text := string(data)
		if v, ok := strings.CutPrefix(text, "ack "); ok {
			n, _ := strconv.Atoi(v)
			c.mu.Lock()
			c.acks = append(c.acks, fack{n, at})
			if c.gen == gen {
				c.inflight--
			}
			c.mu.Unlock()
			continue
		}
		c.emit(ctx, fevent{gen: gen, text: text, at: at})
	}
}

func (c *fclient) emit(ctx context.Context, ev fevent) {
	select {
	case c.events <- ev:
	case <-ctx.Done():
	}
}

// send writes text on the current connection, and returns its number.
func (c *fclient) send(text string) (int, error) {
	c.mu.Lock()
	conn, gen := c.conn, c.gen
	c.mu.Unlock()
	if conn == nil {
		return gen, errClientNotConnected
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return gen, conn.Write(ctx, websocket.MessageText, []byte(text))
}

func (c *fclient) generation() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *fclient) closeList() []fclose {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.closes)
}

// increment sends "inc" every 2 ms while fewer than 8 are unacknowledged,
// until stop.
func (c *fclient) increment(stop <-chan struct{}) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		c.mu.Lock()
		conn := c.conn
		ok := conn != nil && c.inflight < 8
		if ok {
			c.inflight++
			c.sentIncs++
		}
		c.mu.Unlock()
		if ok {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Write(ctx, websocket.MessageText, []byte("inc")) // a failed write may have landed: counted as sent
			cancel()
		}
	}
}

// roundTrip sends "get", again on each new connection, until a "count"
// answers it; it returns when that answer was read.
func (c *fclient) roundTrip(within time.Duration) (time.Time, error) {
	deadline := time.After(within)
	for {
		gen, err := c.send("get")
		if err == nil {
			for answered := false; !answered; {
				select {
				case ev := <-c.events:
					switch {
					case ev.gen < gen:
					case ev.closed:
						answered = true // the connection closed: send again on the next
					case strings.HasPrefix(ev.text, "count "):
						return ev.at, nil
					default:
						return time.Time{}, fmt.Errorf("got %q, want a count", ev.text)
					}
				case <-deadline:
					return time.Time{}, fmt.Errorf("no answer to get within %v; closes: %v", within, c.closeList())
				}
			}
			continue
		}
		select { // not connected: wait for the next connection
		case <-c.events:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			return time.Time{}, fmt.Errorf("not connected within %v; closes: %v", within, c.closeList())
		}
	}
}

// get returns the room's count, read on the current connection.
func (c *fclient) get() (int, error) {
	gen, err := c.send("get")
	if err != nil {
		return 0, err
	}
	select {
	case ev := <-c.events:
		v, ok := strings.CutPrefix(ev.text, "count ")
		if ev.gen != gen || !ok {
			return 0, fmt.Errorf("got %+v, want the answer to get", ev)
		}
		return strconv.Atoi(v)
	case <-time.After(5 * time.Second):
		return 0, errors.New("no answer to get within 5s")
	}
}
