package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"party"
)

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"exact below 256 ns", []time.Duration{100, 200, 255}, 0.5, 200},
		{"median of a ramp", ramp(1000, time.Microsecond), 0.5, 500 * time.Microsecond},
		{"p99 of a ramp", ramp(1000, time.Microsecond), 0.99, 990 * time.Microsecond},
		{"max is exact", []time.Duration{time.Millisecond, 3*time.Second + 7}, 1, 3*time.Second + 7},
		{"one value", []time.Duration{42 * time.Millisecond}, 0.999, 42 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			for _, v := range tt.values {
				h.record(v)
			}
			var m merged
			m.add(h.sparse(), h.max.Load())
			got := time.Duration(m.quantile(tt.q))
			if d := math.Abs(float64(got-tt.want)) / float64(tt.want); d > 0.01 {
				t.Errorf("quantile(%v) = %v, want %v within 1%%", tt.q, got, tt.want)
			}
		})
	}
}

func ramp(n int, step time.Duration) []time.Duration {
	v := make([]time.Duration, n)
	for i := range v {
		v[i] = time.Duration(i+1) * step
	}
	return v
}

func TestHeaderRoundTrip(t *testing.T) {
	b := make([]byte, 64)
	putHeader(b, 1234, 99, 1_700_000_000_123_456_789)
	sender, seq, at, ok := parseHeader(b)
	if !ok || sender != 1234 || seq != 99 || at != 1_700_000_000_123_456_789 {
		t.Fatalf("parseHeader = %d %d %d %v, want 1234 99 1700000000123456789 true", sender, seq, at, ok)
	}
	if _, _, _, ok := parseHeader([]byte("#zzzzzzzz" + strings.Repeat("0", 24))); ok {
		t.Error("parseHeader accepted non-hex digits")
	}
}

// chat is the guide's broadcast server; mangle, when set, decides what
// becomes of each relayed bench message: how many times to broadcast it.
type chat struct {
	room   *party.Room
	mangle func(sender, seq int) int
}

func (s *chat) OnConnect(c *party.Connection, r *http.Request) {
	c.Send(party.Text("Welcome, " + c.ID()))
	s.room.Broadcast(party.Text("Heads up! "+c.ID()+" joined the party!"), c.ID())
}

func (s *chat) OnMessage(msg party.Message, sender *party.Connection) {
	times := 1
	if b := msg.Bytes(); s.mangle != nil && len(b) >= headerLen {
		from, seq, _, _ := parseHeader(b)
		times = s.mangle(from, seq)
	}
	for range times {
		s.room.Broadcast(msg, sender.ID())
	}
}

func (s *chat) OnClose(c *party.Connection) {
	s.room.Broadcast(party.Text("So sad! " + c.ID() + " left the party!"))
}

// serveChat serves the guide's chat on a real socket and returns the room
// URL prefix the load generator takes.
func serveChat(t *testing.T, mangle func(sender, seq int) int) string {
	t.Helper()
	return serve(t, func(r *party.Room) party.Server { return &chat{room: r, mangle: mangle} })
}

// serve serves the rooms of factory on a real socket and returns the room
// URL prefix the load generator takes.
func serve(t *testing.T, factory func(r *party.Room) party.Server) string {
	t.Helper()
	h := party.Handler(factory)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.Shutdown(context.Background())
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/parties/main/"
}

func smallConfig(url string) config {
	return config{
		URL: url, Clients: 30, Rooms: 3, Senders: 6, Messages: 20, Size: 64, Window: 5,
		Src: 2, DialConcurrency: 8, Drain: 2 * time.Second, ChurnWorkers: 4, Parts: 1,
	}
}

func TestLoadCountsEveryDelivery(t *testing.T) {
	cfg := smallConfig(serveChat(t, nil))
	cfg.Churn = 12
	rep, done, err := measure(cfg, options{settle: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done()
	// 3 rooms of 10 clients with 2 senders each: every message reaches the
	// 9 others in its room.
	const want = 6 * 20 * 9
	if rep.Expected != want || rep.Delivered != want {
		t.Errorf("expected %d, delivered %d, want both %d", rep.Expected, rep.Delivered, want)
	}
	if rep.Lost != 0 || rep.Duplicated != 0 || rep.Unexpected != 0 || rep.DroppedClients != 0 {
		t.Errorf("lost %d, duplicated %d, misrouted %d, dropped %d, want all 0 (errors: %q)",
			rep.Lost, rep.Duplicated, rep.Unexpected, rep.DroppedClients, rep.Errors)
	}
	if rep.Connected != 30 || rep.Welcomes != 30 {
		t.Errorf("connected %d, welcomed %d, want 30 and 30", rep.Connected, rep.Welcomes)
	}
	if rep.LatencyMs.P50 <= 0 || rep.LatencyMs.Max < rep.LatencyMs.P99 || rep.DeliveriesPerS <= 0 {
		t.Errorf("latency %+v, deliveries/s %v: want positive, ordered figures", rep.LatencyMs, rep.DeliveriesPerS)
	}
	c := rep.Churn
	if c == nil || c.Connections != 12 || c.Failed != 0 || c.NoticesExp != 12*10*2 || c.NoticesMissed != 0 {
		t.Errorf("churn %+v, want 12 connections, none failed, 240 notices, none missed", c)
	}
}

func TestLoadReportsLossAndDuplicates(t *testing.T) {
	// Drop sender 0's message 3, relay sender 1's message 5 twice, and send
	// sender 2's message 7 three times.
	url := serveChat(t, func(sender, seq int) int {
		switch {
		case sender == 0 && seq == 3:
			return 0
		case sender == 1 && seq == 5:
			return 2
		case sender == 2 && seq == 7:
			return 3
		}
		return 1
	})
	cfg := smallConfig(url)
	cfg.Window = 0 // the window would wait for the dropped message
	cfg.Drain = 300 * time.Millisecond
	rep, done, err := measure(cfg, options{settle: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done()
	if rep.Lost != 9 {
		t.Errorf("lost %d, want 9 (one message to 9 receivers)", rep.Lost)
	}
	if rep.Duplicated != 9+2*9 {
		t.Errorf("duplicated %d, want %d", rep.Duplicated, 9+2*9)
	}
	if rep.Delivered != rep.Expected-9 {
		t.Errorf("delivered %d of %d, want all but 9", rep.Delivered, rep.Expected)
	}
	if len(rep.Errors) == 0 || !strings.Contains(fmt.Sprint(rep.Errors), "gave up waiting") {
		t.Errorf("errors %q, want the drain timeout reported", rep.Errors)
	}
}

// TestLoadSpreadsClientsOverURLs serves one Host on three listeners, as
// three nodes that share rooms, and checks that client i dials the (i mod
// 3)th, that each room's first client dials before the others, and that
// every delivery is still counted.
func TestLoadSpreadsClientsOverURLs(t *testing.T) {
	h := party.Handler(func(r *party.Room) party.Server { return &chat{room: r} })
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	var mu sync.Mutex
	dialed := map[string]int{} // client id -> listener
	var order []string
	var urls []string
	for i := range 3 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			id := r.URL.Query().Get("_pk")
			dialed[id] = i
			order = append(order, id)
			mu.Unlock()
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, "ws"+strings.TrimPrefix(srv.URL, "http")+"/parties/main/")
	}
	cfg := smallConfig(urls[0])
	cfg.URLs = urls
	rep, done, err := measure(cfg, options{settle: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done()
	if rep.Expected != 6*20*9 || rep.Delivered != rep.Expected || rep.Lost != 0 || rep.Duplicated != 0 || rep.Unexpected != 0 {
		t.Errorf("expected %d, delivered %d, lost %d, duplicated %d, misrouted %d; want 1080 delivered, none lost (errors: %q)",
			rep.Expected, rep.Delivered, rep.Lost, rep.Duplicated, rep.Unexpected, rep.Errors)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range cfg.Clients {
		if got, ok := dialed[fmt.Sprintf("c%d", i)]; !ok || got != i%3 {
			t.Errorf("c%d dialed listener %d (dialed: %v), want %d", i, got, ok, i%3)
		}
	}
	first := map[string]bool{}
	for _, id := range order[:cfg.Rooms] {
		first[id] = true
	}
	if !first["c0"] || !first["c1"] || !first["c2"] {
		t.Errorf("first dials %q, want the rooms' first clients c0, c1 and c2", order[:cfg.Rooms])
	}
}
