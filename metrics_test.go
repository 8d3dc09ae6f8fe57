package party_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
)

// statsServer is the Server of the stats workloads. It greets each connection
// with "hi" and broadcasts each message to its whole room, sender included,
// except these: "panic" panics; "bye" closes the sender with 4000; "big"
// sends the sender 32 MiB, more than loopback sockets buffer, so a client
// that does not read holds the write; "flood" is "big" and one more
// message, which overflows the queue of a client that does not read. A
// connection whose id is "boom" panics OnConnect.
type statsServer struct{ room *party.Room }

func (s *statsServer) OnConnect(c *party.Connection, r *http.Request) {
	if c.ID() == "boom" {
		panic("on purpose")
	}
	c.Send(party.Text("hi"))
}

func (s *statsServer) OnMessage(m party.Message, c *party.Connection) {
	switch m.String() {
	case "panic":
		panic("on purpose")
	case "bye":
		c.Close(4000, "bye")
	case "big", "flood":
		c.Send(party.Binary(make([]byte, 32<<20)))
		if m.String() == "flood" {
			c.Send(party.Text("overflow"))
		}
	default:
		s.room.Broadcast(m)
	}
}

func (s *statsServer) OnClose(*party.Connection) {}

func newStatsHost(logs *logBuffer) *party.Host {
	h := party.Handler(func(r *party.Room) party.Server { return &statsServer{room: r} })
	h.Party("other", func(r *party.Room) party.Server { return &statsServer{room: r} })
	h.Logger = logs.logger()
	h.IdleTimeout = time.Minute
	return h
}

// partyCounts is a PartyStats with each handler's durations reduced to
// their count: the figures a workload fixes exactly.
type partyCounts struct {
	party.PartyStats
	Calls map[string]uint64
}

// counts reduces s, checking on the way that every histogram is
// consistent: cumulative buckets at fixed bounds, under Count, with a sum.
func counts(t *testing.T, s party.Stats) map[string]partyCounts {
	t.Helper()
	out := map[string]partyCounts{}
	for name, ps := range s.Parties {
		pc := partyCounts{PartyStats: ps, Calls: map[string]uint64{}}
		for handler, hist := range ps.HandlerDurations {
			pc.Calls[handler] = hist.Count
			bound, last := 10*time.Microsecond, uint64(0)
			for _, b := range hist.Buckets {
				if b.UpperBound != bound || b.Count < last || b.Count > hist.Count {
					t.Errorf("%s %s: bucket %+v after %d, want bound %v and a count in [%d, %d]", name, handler, b, last, bound, last, hist.Count)
				}
				bound, last = bound*10, b.Count
			}
			if len(hist.Buckets) != 7 || hist.Sum <= 0 {
				t.Errorf("%s %s: %d buckets and sum %v, want 7 and more than 0", name, handler, len(hist.Buckets), hist.Sum)
			}
		}
		pc.HandlerDurations = nil
		out[name] = pc
	}
	return out
}

// closedCounts returns every close reason with a zero count but those given.
func closedCounts(nonzero map[party.CloseReason]uint64) map[party.CloseReason]uint64 {
	m := map[party.CloseReason]uint64{}
	for r := party.ClosedByClient; r <= party.ClosedMoved; r++ {
		m[r] = nonzero[r]
	}
	return m
}

// panicCounts returns every handler name with a zero count but those given.
func panicCounts(nonzero map[string]uint64) map[string]uint64 {
	m := map[string]uint64{}
	for _, h := range []string{"OnStart", "OnConnect", "OnMessage", "OnClose", "OnError", "OnRequest", "OnAlarm", "ConnectionTags", "Call"} {
		m[h] = nonzero[h]
	}
	return m
}

// expectStats waits (up to 5 s) until h's stats are want's, and reports
// every party that differs otherwise.
func expectStats(t *testing.T, h *party.Host, want map[string]partyCounts, wantUnrouted map[int]uint64) {
	t.Helper()
	var got map[string]partyCounts
	var unrouted map[int]uint64
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := h.Stats()
		got, unrouted = counts(t, s), s.UpgradesRefused
		if reflect.DeepEqual(got, want) && reflect.DeepEqual(unrouted, wantUnrouted) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for name := range want {
		g, w := reflect.ValueOf(got[name].PartyStats), reflect.ValueOf(want[name].PartyStats)
		for i := range g.NumField() {
			if gf, wf := g.Field(i).Interface(), w.Field(i).Interface(); !reflect.DeepEqual(gf, wf) {
				t.Errorf("party %q: %s is %v, want %v", name, g.Type().Field(i).Name, gf, wf)
			}
		}
		if gc, wc := got[name].Calls, want[name].Calls; !reflect.DeepEqual(gc, wc) {
			t.Errorf("party %q: handler calls timed %v, want %v", name, gc, wc)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got parties %v, want %v", got, want)
	}
	if !reflect.DeepEqual(unrouted, wantUnrouted) {
		t.Errorf("upgrades refused for no party: got %v, want %v", unrouted, wantUnrouted)
	}
}

// The stats after a known workload, through real sockets: every counter
// has its exact value.
func TestStatsCountAKnownWorkload(t *testing.T) {
	const n = 5 // messages per client, 5 bytes each
	logs := &logBuffer{}
	h := newStatsHost(logs)
	h.ReadLimit = 1024
	ws, srv := serve(t, h)

	a := dial(t, ws+"/parties/main/r1?_pk=a")
	a.expect("hi")
	b := dial(t, ws+"/parties/main/r1?_pk=b")
	b.expect("hi")
	c := dial(t, ws+"/parties/main/r2?_pk=c")
	c.expect("hi")
	d := dial(t, ws+"/parties/other/r1?_pk=d")
	d.expect("hi")
	for i := range n {
		msg := fmt.Sprintf("msg-%d", i)
		a.send(msg)
		a.expect(msg)
		b.expect(msg)
		b.send(msg)
		a.expect(msg)
		b.expect(msg)
		c.send(msg)
		c.expect(msg)
		d.send(msg)
		d.expect(msg)
	}

	a.send("panic") // counted, and a stays open
	// Handled before a is replaced below: a replaced connection's unread
	// messages are dropped (a loaded machine was slow enough to drop it).
	eventually(t, "a's panic to be counted", func() bool {
		return h.Stats().Parties["main"].HandlerPanics["OnMessage"] == 1
	})
	b.conn.Write(context.Background(), websocket.MessageBinary, make([]byte, 2048))
	if ce := b.closed(); ce.Code != websocket.StatusMessageTooBig {
		t.Fatalf("oversize message: closed with %v, want 1009", ce)
	}
	c.conn.Write(context.Background(), websocket.MessageText, []byte{0xff})
	if ce := c.closed(); ce.Code != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("invalid UTF-8: closed with %v, want 1007", ce)
	}

	_, err := dialErr(ws+"/parties/main/r1", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://evil.example"}}})
	if de, ok := err.(*dialError); !ok || de.status != http.StatusForbidden {
		t.Fatalf("foreign origin: got %v, want 403", err)
	}
	if _, err := dialErr(ws+"/parties/nope/r1", nil); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown party: got %v, want 404", err)
	}
	if _, status := get(t, srv.URL+"/parties/nope/r1"); status != http.StatusNotFound {
		t.Fatalf("plain request to an unknown party: got %d, want 404 (and no upgrade counted)", status)
	}

	a2 := dial(t, ws+"/parties/main/r1?_pk=a")
	a2.expect("hi")
	if ce := a.closed(); ce.Code != websocket.StatusCode(party.StatusReplaced) {
		t.Fatalf("replaced: closed with %v, want %d", ce, party.StatusReplaced)
	}
	a2.close()

	d.send("bye")
	if ce := d.closed(); ce.Code != 4000 {
		t.Fatalf("bye: closed with %v, want 4000", ce)
	}

	s := dial(t, ws+"/parties/other/r1?_pk=s")
	s.expect("hi")
	s.send("flood") // and s reads no more
	eventually(t, "the client that stopped reading to be dropped", func() bool {
		return h.Stats().Parties["other"].ConnectionsClosed[party.ClosedSlow] == 1
	})
	s.conn.CloseNow() // the server has dropped it: end its wait for a close frame
	// "overflow" is refused. So is the 32 MiB, when the server has not yet
	// counted "hi" as written though s has read it (its writer is between
	// the write and the count): seen once on a loaded machine.
	refused := h.Stats().Parties["other"].SendsRefused
	if refused != 1 && refused != 2 {
		t.Fatalf("%d sends refused to the client that stopped reading, want 1 (or 2)", refused)
	}

	raw, err := rawDial(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.upgrade("/parties/other/r1?_pk=r"); err != nil {
		t.Fatal(err)
	}
	if _, _, hi, err := raw.readFrame(); err != nil || string(hi) != "hi" {
		t.Fatalf("raw client's welcome: %q, %v", hi, err)
	}
	raw.reset() // no close frame: a broken socket

	e := dial(t, ws+"/parties/other/r2?_pk=e")
	e.expect("hi")

	main := partyCounts{
		PartyStats: party.PartyStats{
			Rooms:             2,
			ConnectionsOpened: 4, // a, b, c, a2
			ConnectionsClosed: closedCounts(map[party.CloseReason]uint64{
				party.ClosedReplaced: 1, party.ClosedTooBig: 1, party.ClosedInvalidUTF8: 1, party.ClosedByClient: 1,
			}),
			MessagesReceived: 3*n + 2,       // a's, b's, c's, "panic", 0xff
			BytesReceived:    3*n*5 + 5 + 1, // the oversize message is not read
			MessagesSent:     4 + 5*n,       // 4 welcomes; a's and b's to 2, c's to 1
			BytesSent:        4*2 + 5*n*5,
			UpgradesRefused:  map[int]uint64{http.StatusForbidden: 1},
			HandlerPanics:    panicCounts(map[string]uint64{"OnMessage": 1}),
		},
		Calls: map[string]uint64{"OnConnect": 4, "OnMessage": 3*n + 1, "OnClose": 4},
	}
	other := partyCounts{
		PartyStats: party.PartyStats{
			Rooms:             2,
			Connections:       1, // e
			ConnectionsOpened: 4, // d, s, r, e
			ConnectionsClosed: closedCounts(map[party.CloseReason]uint64{
				party.ClosedByServer: 1, party.ClosedSlow: 1, party.ClosedBroken: 1,
			}),
			MessagesReceived: n + 2, // d's, "bye", "flood"
			BytesReceived:    n*5 + 3 + 5,
			MessagesSent:     4 + n, // 4 welcomes, d's back to d; neither the 32 MiB nor "overflow"
			BytesSent:        4*2 + n*5,
			SendsRefused:     refused, // "overflow", maybe the 32 MiB
			UpgradesRefused:  map[int]uint64{},
			HandlerPanics:    panicCounts(nil),
		},
		Calls: map[string]uint64{"OnConnect": 4, "OnMessage": n + 2, "OnClose": 3},
	}
	unrouted := map[int]uint64{http.StatusNotFound: 1}
	expectStats(t, h, map[string]partyCounts{"main": main, "other": other}, unrouted)

	e.conn.CloseRead(context.Background()) // answers the server's close frame
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	main.Rooms, other.Rooms, other.Connections = 0, 0, 0
	other.ConnectionsClosed[party.ClosedShutdown] = 1
	other.Calls["OnClose"]++
	expectStats(t, h, map[string]partyCounts{"main": main, "other": other}, unrouted)
}

// The reasons the first workload cannot reach without its clients being
// dropped: a missed keepalive, a write timeout, and a panic in OnConnect.
func TestStatsCountKeepaliveWriteTimeoutAndConnectPanics(t *testing.T) {
	logs := &logBuffer{}
	h := newStatsHost(logs)
	h.PingInterval, h.PingTimeout, h.WriteTimeout = 300*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
	ws, srv := serve(t, h)

	silent, err := rawDial(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.reset()
	if err := silent.upgrade("/parties/main/r1?_pk=silent"); err != nil {
		t.Fatal(err)
	}
	if _, _, hi, err := silent.readFrame(); err != nil || string(hi) != "hi" {
		t.Fatalf("welcome: %q, %v", hi, err)
	}
	// From now on it neither reads nor answers pings.

	stuck := dial(t, ws+"/parties/main/r1?_pk=stuck")
	defer stuck.conn.CloseNow()
	stuck.expect("hi")
	stuck.send("big") // and stuck reads no more

	boom := dial(t, ws+"/parties/main/r1?_pk=boom")
	if ce := boom.closed(); ce.Code != websocket.StatusInternalError {
		t.Fatalf("OnConnect panic: closed with %v, want 1011", ce)
	}

	main := partyCounts{
		PartyStats: party.PartyStats{
			Rooms:             1,
			ConnectionsOpened: 3,
			ConnectionsClosed: closedCounts(map[party.CloseReason]uint64{
				party.ClosedKeepalive: 1, party.ClosedWriteTimeout: 1, party.ClosedInternalError: 1,
			}),
			MessagesReceived: 1, // "big"
			BytesReceived:    3,
			MessagesSent:     2, // the welcomes; the 32 MiB never finished
			BytesSent:        4,
			UpgradesRefused:  map[int]uint64{},
			HandlerPanics:    panicCounts(map[string]uint64{"OnConnect": 1}),
		},
		Calls: map[string]uint64{"OnConnect": 3, "OnMessage": 1, "OnClose": 3},
	}
	other := partyCounts{
		PartyStats: party.PartyStats{
			ConnectionsClosed: closedCounts(nil),
			UpgradesRefused:   map[int]uint64{},
			HandlerPanics:     panicCounts(nil),
		},
		Calls: map[string]uint64{},
	}
	expectStats(t, h, map[string]partyCounts{"main": main, "other": other}, map[int]uint64{})
}
