package party_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
	"party/partysocket"
	"party/protocol"
)

// floodReader reads a connection as fast as it can and checks that the
// flooder's messages (binary, a big-endian sequence number first) arrive
// complete and in order.
type floodReader struct {
	got    atomic.Int64 // flooder messages received, in order
	err    atomic.Value // the first error: a gap, or the connection ending
	pace   time.Duration
	closed chan struct{}
}

func startFloodReader(t *testing.T, url string, pace time.Duration) *floodReader {
	t.Helper()
	conn, err := dialErr(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(-1)
	r := &floodReader{pace: pace, closed: make(chan struct{})}
	go func() {
		defer close(r.closed)
		for {
			typ, b, err := conn.Read(context.Background())
			if err != nil {
				r.err.CompareAndSwap(nil, err)
				return
			}
			if typ != websocket.MessageBinary {
				continue // the welcome and the join and leave notices
			}
			if seq := int64(binary.BigEndian.Uint64(b)); seq != r.got.Load() {
				r.err.CompareAndSwap(nil, fmt.Errorf("message %d arrived where %d was due", seq, r.got.Load()))
			}
			r.got.Add(1)
			if r.pace > 0 {
				time.Sleep(r.pace)
			}
		}
	}()
	t.Cleanup(func() { conn.CloseNow(); <-r.closed })
	return r
}

// flood sends 1 KiB binary messages numbered from 0 as fast as the server
// reads them, for d, and returns how many it sent, once h has read them all
// (its party's only sender): closing the socket with its welcome unread
// would reset it, and the kernel would drop what the server had not read.
func flood(t *testing.T, h *party.Host, partyName, url string, d time.Duration) int64 {
	t.Helper()
	conn, err := dialErr(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	msg := make([]byte, 1024)
	var n int64
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		binary.BigEndian.PutUint64(msg, uint64(n))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := conn.Write(ctx, websocket.MessageBinary, msg)
		cancel()
		if err != nil {
			t.Fatalf("flooder: write %d: %v", n, err)
		}
	}
	eventually(t, "the server to read every message of the flood", func() bool {
		return int64(h.Stats().Parties[partyName].MessagesReceived) >= n
	})
	return n
}

// A flooder sending 1 KiB messages as fast as it can for 5 s into the
// guide's chat, where 5 clients read continuously: no reader is closed,
// every reader gets every message in order, what the server holds for them
// stays under 5 × (the high-water mark + 2) messages, the live heap stays
// within 8 MiB of its start, and a pair of clients in another party's room
// exchanging a message every 20 ms meanwhile loses none.
func TestFloodIsSlowedNotSpread(t *testing.T) {
	h := party.Handler(newChat)
	h.Party("other", newChat)
	ws, _ := serve(t, h)
	const readers, highWater = 5, party.DefaultSendQueueMessages / 4

	var rs []*floodReader
	for i := range readers {
		rs = append(rs, startFloodReader(t, fmt.Sprintf("%s/parties/main/flood?_pk=reader%d", ws, i), 0))
	}
	a, b := dial(t, ws+"/parties/other/calm?_pk=a"), dial(t, ws+"/parties/other/calm?_pk=b")
	a.expect("Welcome, a")
	b.expect("Welcome, b")
	a.expect("Heads up! b joined the party!")

	heap0 := heapLive()
	var peakHeap, peakQueued atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // samples what the server holds for the readers
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			st := h.Stats().Parties["main"]
			// Each flooder message goes to the 5 readers; 15 notices and 5
			// welcomes went out before the flood.
			queued := readers*int64(st.MessagesReceived) + 20 - int64(st.MessagesSent)
			peakQueued.Store(max(peakQueued.Load(), queued))
			peakHeap.Store(max(peakHeap.Load(), int64(heapLive())-int64(heap0)))
		}
	}()
	var calmSent int
	go func() { // the other room: a message every 20 ms
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			a.send(fmt.Sprintf("calm %d", calmSent))
			calmSent++
		}
	}()
	sent := flood(t, h, "main", ws+"/parties/main/flood?_pk=flooder", 5*time.Second)
	close(stop)
	wg.Wait()

	for i, r := range rs {
		eventually(t, fmt.Sprintf("reader %d to get all %d messages", i, sent), func() bool {
			return r.got.Load() == sent || r.err.Load() != nil
		})
		if err := r.err.Load(); err != nil {
			t.Errorf("reader %d: %v (after %d of %d messages)", i, err, r.got.Load(), sent)
		}
	}
	for i := range calmSent {
		b.expect(fmt.Sprintf("calm %d", i))
	}
	t.Logf("flooder: %d messages in 5 s (%.0f/s), each delivered to %d readers; the server held at most %d messages for them (bound %d); live heap at most %s above its start",
		sent, float64(sent)/5, readers, peakQueued.Load(), readers*(highWater+2), mib(uint64(max(peakHeap.Load(), 0))))
	if q := peakQueued.Load(); q > readers*(highWater+2) {
		t.Errorf("the server held %d messages for the readers, over %d: the flood was not slowed to their pace", q, readers*(highWater+2))
	}
	if p := peakHeap.Load(); p > 8<<20 {
		t.Errorf("the live heap grew by %s during the flood, over 8 MiB", mib(uint64(p)))
	}
	if st := h.Stats().Parties["main"]; st.ConnectionsClosed[party.ClosedSlow] != 0 {
		t.Errorf("%d readers were closed as slow", st.ConnectionsClosed[party.ClosedSlow])
	}
}

// heapLive returns the bytes of the heap found live by a full collection it
// forces (runtime/metrics' /gc/heap/live:bytes): unlike MemStats.HeapAlloc,
// it counts nothing allocated after the collection, which a flood allocates
// fast enough to blur.
func heapLive() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// closeRecorder is a chat room that records the close status of each
// connection.
type closeRecorder struct {
	room   *party.Room
	mu     sync.Mutex
	closes map[string]string
}

func (s *closeRecorder) OnMessage(m party.Message, c *party.Connection) { s.room.Broadcast(m, c.ID()) }

func (s *closeRecorder) OnClose(c *party.Connection) {
	code, reason := c.CloseStatus()
	s.mu.Lock()
	s.closes[c.ID()] = fmt.Sprintf("%d %s", code, reason)
	s.mu.Unlock()
}

func (s *closeRecorder) closed(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closes[id]
}

// A reader that stops reading, or reads at a fraction of the others' pace,
// is closed with 1008 "slow consumer" once it has stayed over its
// high-water mark for SlowClientTimeout; the readers that keep up get every
// message and stay.
func TestSlowClientIsJudgedOnItsOwn(t *testing.T) {
	for _, tc := range []struct {
		name string
		pace time.Duration // per message; -1: never reads
	}{
		{"stops reading", -1},
		{"reads slowly", 2 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &closeRecorder{closes: map[string]string{}}
			h := party.Handler(func(r *party.Room) party.Server { rec.room = r; return rec })
			h.SlowClientTimeout = 300 * time.Millisecond
			ws, _ := serve(t, h)
			url := ws + "/parties/main/r?_pk="
			var fast []*floodReader
			for i := range 3 {
				fast = append(fast, startFloodReader(t, fmt.Sprintf("%sfast%d", url, i), 0))
			}
			if tc.pace < 0 {
				stalled, err := dialErr(url+"slow", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer stalled.CloseNow()
			} else {
				startFloodReader(t, url+"slow", tc.pace)
			}
			eventually(t, "the room to have its 4 readers", func() bool {
				r := h.Room("main", "r")
				return r != nil && r.ConnectionCount() == 4
			})
			sent := flood(t, h, "main", url+"flooder", 3*time.Second)
			eventually(t, "the slow reader to be closed", func() bool { return rec.closed("slow") != "" })
			if got, want := rec.closed("slow"), "1008 slow consumer"; got != want {
				t.Errorf("the slow reader closed with %q, want %q", got, want)
			}
			for i, r := range fast {
				eventually(t, fmt.Sprintf("fast reader %d to get all %d messages", i, sent), func() bool {
					return r.got.Load() == sent || r.err.Load() != nil
				})
				if err := r.err.Load(); err != nil {
					t.Errorf("fast reader %d: %v", i, err)
				}
				if got := rec.closed(fmt.Sprintf("fast%d", i)); got != "" {
					t.Errorf("fast reader %d was closed: %s", i, got)
				}
			}
		})
	}
}

// Host.RateLimit slows a sender over it without closing it: the Go client's
// messages all arrive, in order, no faster than the limit allows after the
// burst.
func TestRateLimitSlowsTheSender(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit party.RateLimit
		n     int
		size  int
		least time.Duration // the limit's floor for the span from first to last arrival
	}{
		// A burst of 5 messages: the first 6 arrive at once (the 6th puts
		// the sender in debt), then one every 20 ms.
		{"messages", party.RateLimit{MessagesPerSecond: 50, Burst: 100 * time.Millisecond}, 40, 10, (40 - 6) * time.Second / 50},
		// A burst of 2 KiB: the first 3 messages of 1 KiB at once, then one
		// every 50 ms.
		{"bytes", party.RateLimit{BytesPerSecond: 20 << 10, Burst: 100 * time.Millisecond}, 20, 1 << 10, (20 - 3) * time.Second / 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var arrivals []time.Time
			var seqs []string
			p := &probe{message: func(m party.Message, c *party.Connection) {
				mu.Lock()
				arrivals = append(arrivals, time.Now())
				seqs = append(seqs, m.String()[:4])
				mu.Unlock()
			}}
			var closes atomic.Int32
			p.close = func(*party.Connection) { closes.Add(1) }
			h := party.Handler(func(r *party.Room) party.Server { p.room = r; return p })
			h.RateLimit = tc.limit
			ws, srv := serve(t, h)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := partysocket.Dial(ctx, partysocket.Options{Host: srv.Listener.Addr().String(), Room: "limited"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_ = ws
			pad := make([]byte, tc.size)
			for i := range pad {
				pad[i] = 'x'
			}
			for i := range tc.n {
				copy(pad, fmt.Sprintf("%04d", i))
				if err := s.Send(protocol.Text(string(pad))); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "every message to arrive", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(arrivals) == tc.n
			})
			mu.Lock()
			defer mu.Unlock()
			for i, s := range seqs {
				if s != fmt.Sprintf("%04d", i) {
					t.Fatalf("message %d arrived as %q: out of order", i, s)
				}
			}
			span := arrivals[len(arrivals)-1].Sub(arrivals[0])
			t.Logf("%d messages of %d B arrived over %v (the limit's floor: %v)", tc.n, tc.size, span, tc.least)
			if span < tc.least*9/10 {
				t.Errorf("%d messages arrived over %v, faster than the limit allows (%v)", tc.n, span, tc.least)
			}
			if n := closes.Load(); n != 0 {
				t.Errorf("the limited connection was closed")
			}
		})
	}
}

// Two senders flooding one room take turns: while both have messages
// waiting, the turn goes from one to the other (a room's turn is handed to
// the connection that has waited longest). The room's first handler call
// waits until both senders have written all their messages, so that from
// then on both have one waiting; each message takes the handler 200 µs,
// longer than reading the next one. A reader the scheduler keeps off the
// CPU for a while is not waiting, and the other may take several turns
// meanwhile: the test asks that most turns alternate, not all.
func TestFairTurns(t *testing.T) {
	var mu sync.Mutex
	var order []byte
	gate := make(chan struct{})
	p := &probe{message: func(m party.Message, c *party.Connection) {
		<-gate
		for start := time.Now(); time.Since(start) < 200*time.Microsecond; {
		}
		mu.Lock()
		order = append(order, c.ID()[0])
		mu.Unlock()
	}}
	h := party.Handler(func(r *party.Room) party.Server { p.room = r; return p })
	ws, _ := serve(t, h)
	const each = 1000
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, id := range []string{"a", "b"} {
		conn, err := dialErr(ws+"/parties/main/turns?_pk="+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				if err := conn.Write(context.Background(), websocket.MessageText, []byte(fmt.Sprint(i))); err != nil {
					t.Errorf("%s: %v", id, err)
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait() // every message is in the server's socket buffers
	close(gate)
	eventually(t, "every message to be handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 2*each
	})
	mu.Lock()
	defer mu.Unlock()
	// The window where both had messages left: from the first message of
	// the later starter to the last of the earlier finisher.
	first := map[byte]int{}
	last := map[byte]int{}
	for i, who := range order {
		if _, ok := first[who]; !ok {
			first[who] = i
		}
		last[who] = i
	}
	from, to := max(first['a'], first['b']), min(last['a'], last['b'])
	longest, run, switches := 0, 0, 0
	for i := from; i <= to; i++ {
		if i > from && order[i] == order[i-1] {
			run++
		} else {
			run = 1
			switches++
		}
		longest = max(longest, run)
	}
	turns := to - from + 1
	t.Logf("both senders had messages waiting for %d turns: the turn changed hands %d times, the longest run of one sender was %d", turns, switches, longest)
	if turns < each/2 {
		t.Fatalf("the senders overlapped for only %d turns: the test did not make them wait", turns)
	}
	// Each message takes the turn anew, and a waiting read loop gets it next
	// (the turn hands over in order), so the turn alternates, but for the
	// moments when the other loop is not yet waiting: on a loaded 2-core
	// machine (CI beside other work) a third of the turns or fewer changed
	// hands once. A turn held for a whole buffered batch would change hands
	// once per batch: a handful of times.
	if switches < turns/8 {
		t.Errorf("the turn changed hands %d times in %d turns (longest run %d): one sender held the room while the other waited", switches, turns, longest)
	}
}

var _ http.Handler = (*party.Host)(nil)
