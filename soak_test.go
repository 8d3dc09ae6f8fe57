//go:build soak

package party_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
)

// The soak test: clients join, chat, drop and reconnect across 500 rooms for
// 30 minutes (by default), while goroutines, live heap and RSS are sampled
// every minute. It fails if any of them trends up after the warm-up, if a
// message a client sent does not come back to it, or if anything is left
// running at the end. Not in the default run:
//
//	go test -tags soak -run TestSoak -v -timeout 0 .
//	go test -tags soak -run TestSoak -v -soak.duration 2m -soak.interval 10s .
//
// PARTY_SOAK_DURATION and PARTY_SOAK_INTERVAL set the same as the flags.
var (
	soakDuration = flag.Duration("soak.duration", envDuration("PARTY_SOAK_DURATION", 30*time.Minute), "how long the soak test runs")
	soakInterval = flag.Duration("soak.interval", envDuration("PARTY_SOAK_INTERVAL", time.Minute), "how often it samples goroutines, heap and RSS")
	soakRooms    = flag.Int("soak.rooms", 500, "rooms the clients spread over")
	soakUsers    = flag.Int("soak.users", 1000, "clients connected at any time (each joins, chats, leaves and comes back)")
)

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// soakRoom broadcasts every message to the whole room, its sender included,
// so that each client can check that its own messages come back in order.
type soakRoom struct {
	room *party.Room
	msgs int
}

func (s *soakRoom) OnMessage(m party.Message, c *party.Connection) {
	s.msgs++
	s.room.Broadcast(m)
}

func (s *soakRoom) OnRequest(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%d connections, %d messages", s.room.ConnectionCount(), s.msgs)
}

type soakSample struct {
	at         time.Duration
	goroutines int
	heap, rss  uint64
	conns      int64
	msgs       int64
}

type soakStats struct {
	dials, dialErrors, msgsSent, msgsBack, lost, closes atomic.Int64
	open                                                atomic.Int64
	ends                                                sync.Map // how sessions ended -> *atomic.Int64
}

func (s *soakStats) ended(how string) {
	v, _ := s.ends.LoadOrStore(how, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func TestSoak(t *testing.T) {
	leaks := startLeakCheck(t)
	h := party.Handler(func(r *party.Room) party.Server { return &soakRoom{room: r} })
	h.IdleTimeout = 2 * time.Second
	h.PingInterval, h.PingTimeout = 5*time.Second, 2*time.Second
	h.Logger = (&logBuffer{}).logger()
	ws, srv := serve(t, h)

	var stats soakStats
	ctx, stop := context.WithCancel(context.Background())
	var users sync.WaitGroup
	for u := range *soakUsers {
		users.Add(1)
		go func() {
			defer users.Done()
			soakUser(ctx, t, ws, srv.URL, fmt.Sprint("u", u), &stats)
		}()
	}

	var samples []soakSample
	start := time.Now()
	sample := func() {
		heap := liveHeap()
		s := soakSample{at: time.Since(start), goroutines: runtime.NumGoroutine(), heap: heap, rss: rss(t),
			conns: stats.open.Load(), msgs: stats.msgsBack.Load()}
		samples = append(samples, s)
		t.Logf("%8v  goroutines %6d  heap %9s  RSS %9s  open connections %5d  own messages back %9d  sessions %7d",
			s.at.Round(time.Second), s.goroutines, mib(s.heap), mib(s.rss), s.conns, s.msgs, stats.closes.Load())
	}
	for time.Since(start) < *soakDuration {
		time.Sleep(min(*soakInterval, *soakDuration-time.Since(start)))
		sample()
	}
	stop()
	users.Wait()

	var ends []string
	stats.ends.Range(func(k, v any) bool {
		ends = append(ends, fmt.Sprintf("%s %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	t.Logf("%d sessions (%s), %d dials (%d failed), %d messages sent, %d came back to their sender, %d lost",
		stats.closes.Load(), strings.Join(ends, ", "), stats.dials.Load(), stats.dialErrors.Load(),
		stats.msgsSent.Load(), stats.msgsBack.Load(), stats.lost.Load())
	if n := stats.lost.Load(); n > 0 {
		t.Errorf("%d messages did not come back to their sender", n)
	}
	if d, e := stats.dials.Load(), stats.dialErrors.Load(); e*1000 > d {
		t.Errorf("%d of %d dials failed", e, d)
	}

	// After the warm-up, nothing may trend up.
	warm := len(samples) / 5
	if warm < 1 {
		warm = 1
	}
	steady := samples[warm:]
	if len(steady) < 4 {
		t.Fatalf("only %d samples after the warm-up: run longer or sample more often", len(steady))
	}
	check := func(name string, value func(soakSample) float64, slack float64, format func(float64) string) {
		growth, mean := trend(steady, value)
		allowed := 0.2*mean + slack
		t.Logf("%-10s after warm-up: mean %s, trend %s over %v (allowed %s)", name, format(mean), format(growth),
			(steady[len(steady)-1].at - steady[0].at).Round(time.Second), format(allowed))
		if growth > allowed {
			t.Errorf("%s trends up: %s over the steady phase, more than %s", name, format(growth), format(allowed))
		}
	}
	count := func(v float64) string { return strconv.Itoa(int(v)) }
	bytes := func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }
	check("goroutines", func(s soakSample) float64 { return float64(s.goroutines) }, 100, count)
	check("heap", func(s soakSample) float64 { return float64(s.heap) }, 4<<20, bytes)
	check("RSS", func(s soakSample) float64 { return float64(s.rss) }, 16<<20, bytes)

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Shutdown(shutdownCtx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	srv.Close()
	leaks.check(t)
}

// trend fits a least-squares line to the samples and returns its rise over
// their span, and their mean.
func trend(samples []soakSample, value func(soakSample) float64) (growth, mean float64) {
	var sx, sy, sxx, sxy float64
	n := float64(len(samples))
	for _, s := range samples {
		x, y := s.at.Seconds(), value(s)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	span := samples[len(samples)-1].at.Seconds() - samples[0].at.Seconds()
	return slope * span, sy / n
}

// rss returns the process's resident set size.
func rss(t *testing.T) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status: the soak test needs Linux")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// soakUser is one client, forever joining a random room, chatting, and
// leaving in one of several ways, until ctx ends.
func soakUser(ctx context.Context, t *testing.T, ws, httpURL, id string, stats *soakStats) {
	room, again := 0, false
	for ctx.Err() == nil {
		if !again {
			room = rand.IntN(*soakRooms)
		}
		if rand.IntN(20) == 0 { // now and then, a plain HTTP request to the room
			if resp, err := http.Get(fmt.Sprintf("%s/parties/main/room%d", httpURL, room)); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		path := fmt.Sprintf("/parties/main/room%d?_pk=%s", room, id)
		if !again && rand.IntN(20) == 0 {
			soakSilent(ctx, ws, path, id, stats)
			continue
		}
		again = soakSession(ctx, ws, path, id, stats)
		if !again {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(rand.IntN(1000)) * time.Millisecond):
			}
		}
	}
}

// soakDial opens a connection, counting the dial and, unless the test is
// ending, its failure; it returns nil if the dial failed.
func soakDial(ctx context.Context, url string, stats *soakStats) *websocket.Conn {
	stats.dials.Add(1)
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, _, err := websocket.Dial(dialCtx, url, nil)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			stats.dialErrors.Add(1)
		}
		return nil
	}
	return conn
}

// soakSilent joins, says one thing and then never reads again, as a client
// whose network vanished: the server's keepalive drops it.
func soakSilent(ctx context.Context, ws, path, id string, stats *soakStats) {
	conn := soakDial(ctx, ws+path, stats)
	if conn == nil {
		return
	}
	stats.open.Add(1)
	defer stats.open.Add(-1)
	defer stats.closes.Add(1)
	conn.Write(ctx, websocket.MessageText, []byte(id+" silent"))
	select { // past 2×PingInterval+PingTimeout
	case <-ctx.Done():
	case <-time.After(15 * time.Second):
	}
	conn.CloseNow()
	stats.ended("went silent")
}

// soakSession chats and leaves in a random way; it reports whether the
// client reconnects to the same room at once.
func soakSession(ctx context.Context, ws, path, id string, stats *soakStats) (again bool) {
	conn := soakDial(ctx, ws+path, stats)
	if conn == nil {
		return false
	}
	stats.open.Add(1)
	defer stats.open.Add(-1)
	defer stats.closes.Add(1)

	// The reader checks that this client's own messages come back, in order.
	var mu sync.Mutex
	var pending []string
	back := make(chan struct{}, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			m := string(b)
			if !strings.HasPrefix(m, id+" ") {
				continue
			}
			mu.Lock()
			if len(pending) > 0 && pending[0] == m {
				pending = pending[1:]
				stats.msgsBack.Add(1)
			}
			mu.Unlock()
			select {
			case back <- struct{}{}:
			default:
			}
		}
	}()

	n := 1 + rand.IntN(20)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		m := fmt.Sprintf("%s %d %s", id, i, strings.Repeat("x", rand.IntN(200)))
		mu.Lock()
		pending = append(pending, m)
		mu.Unlock()
		if conn.Write(ctx, websocket.MessageText, []byte(m)) != nil {
			break
		}
		stats.msgsSent.Add(1)
		select {
		case <-ctx.Done():
		case <-readDone:
		case <-time.After(time.Duration(200+rand.IntN(1800)) * time.Millisecond):
		}
	}

	// Everything sent must have come back before the client goes, unless
	// the connection ended under it (it was replaced, or the test ends).
	deadline := time.After(10 * time.Second)
	for waiting := true; waiting; {
		mu.Lock()
		left := len(pending)
		mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-back:
		case <-readDone:
			waiting = false
		case <-deadline:
			stats.lost.Add(int64(left))
			waiting = false
		}
	}

	switch r := rand.IntN(100); {
	case r < 70:
		conn.Close(websocket.StatusNormalClosure, "bye")
		stats.ended("closed")
	case r < 90:
		conn.CloseNow() // the socket closes without a close frame
		stats.ended("dropped")
	default:
		// Reconnects with the same id while still connected: the old
		// connection is replaced (4409), as partysocket does after a blip.
		stats.ended("replaced")
		go func() {
			<-readDone
			conn.CloseNow()
		}()
		return true
	}
	<-readDone
	return false
}
