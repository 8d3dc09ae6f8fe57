package party_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"party"
)

// Each benchmark has a baseline sub-benchmark in the same run: the same work
// done straight on coder/websocket, without rooms, queues or handlers.

// receivers dials n clients that count what they read until closed.
type receivers struct {
	conns []*websocket.Conn
	got   atomic.Int64
	round atomic.Pointer[round] // what waitFor waits for now
	wg    sync.WaitGroup
}

// round is one waitFor: done is closed, once, by the read that reaches
// target. Target and channel change together, so a read that raced the
// previous round cannot close this round's channel early.
type round struct {
	target int64
	done   chan struct{}
	once   sync.Once
}

func dialReceivers(b *testing.B, url string, n int) *receivers {
	rs := &receivers{}
	for i := range n {
		c, _, err := websocket.Dial(context.Background(), fmt.Sprintf("%s?_pk=r%d", url, i), nil)
		if err != nil {
			b.Fatalf("dial %d: %v", i, err)
		}
		rs.conns = append(rs.conns, c)
		rs.wg.Add(1)
		go func() {
			defer rs.wg.Done()
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
				n := rs.got.Add(1)
				if r := rs.round.Load(); r != nil && n >= r.target {
					r.once.Do(func() { close(r.done) })
				}
			}
		}()
	}
	return rs
}

// waitFor blocks until total messages have been read in all.
func (rs *receivers) waitFor(total int64) {
	r := &round{target: total, done: make(chan struct{})}
	rs.round.Store(r)
	if rs.got.Load() >= total {
		return
	}
	<-r.done
}

func (rs *receivers) close() {
	for _, c := range rs.conns {
		c.CloseNow()
	}
	rs.wg.Wait()
}

// rawServer accepts WebSockets straight with coder/websocket, keeps them in
// a slice and reads until they close: the baseline.
type rawServer struct {
	mu    sync.Mutex
	conns []*websocket.Conn
}

func (s *rawServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	for {
		if _, _, err := c.Read(context.Background()); err != nil {
			return
		}
	}
}

func (s *rawServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

var payload64 = []byte(strings.Repeat("x", 64))

// BenchmarkBroadcast1000 delivers one 64-byte message to 1,000 connections
// per op: the op ends when every client has read it.
func BenchmarkBroadcast1000(b *testing.B) {
	const n = 1000
	b.Run("baseline=coder-websocket-loop", func(b *testing.B) {
		raw := &rawServer{}
		srv := httptest.NewServer(raw)
		defer srv.Close()
		rs := dialReceivers(b, "ws"+strings.TrimPrefix(srv.URL, "http")+"/", n)
		defer rs.close()
		eventually(b, "the baseline's connections", func() bool { return raw.count() >= n })
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			for _, c := range raw.conns {
				c.Write(context.Background(), websocket.MessageText, payload64)
			}
			rs.waitFor(int64(i+1) * n)
		}
	})
	b.Run("party", func(b *testing.B) {
		h := party.Handler(func(*party.Room) party.Server { return struct{}{} })
		srv := httptest.NewServer(h)
		defer srv.Close()
		defer h.Shutdown(context.Background())
		rs := dialReceivers(b, "ws"+strings.TrimPrefix(srv.URL, "http")+"/party/bench", n)
		defer rs.close()
		eventually(b, "every receiver in the room", func() bool {
			return h.Room("main", "bench") != nil && h.Room("main", "bench").ConnectionCount() >= n
		})
		room := h.Room("main", "bench")
		msg := party.Binary(payload64)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			room.Broadcast(msg)
			rs.waitFor(int64(i+1) * n)
		}
	})
}

// BenchmarkSend sends one 64-byte message to one connection per op, 100 ops
// in flight.
func BenchmarkSend(b *testing.B) {
	const window = 100
	run := func(b *testing.B, send func(), rs *receivers) {
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			send()
			if i >= window {
				rs.waitFor(int64(i - window))
			}
		}
		rs.waitFor(int64(b.N))
	}
	b.Run("baseline=coder-websocket", func(b *testing.B) {
		raw := &rawServer{}
		srv := httptest.NewServer(raw)
		defer srv.Close()
		rs := dialReceivers(b, "ws"+strings.TrimPrefix(srv.URL, "http")+"/", 1)
		defer rs.close()
		eventually(b, "the baseline's connection", func() bool { return raw.count() >= 1 })
		c := raw.conns[0]
		run(b, func() { c.Write(context.Background(), websocket.MessageBinary, payload64) }, rs)
	})
	b.Run("party", func(b *testing.B) {
		h := party.Handler(func(*party.Room) party.Server { return struct{}{} })
		h.SendQueueMessages = 1 << 20
		srv := httptest.NewServer(h)
		defer srv.Close()
		defer h.Shutdown(context.Background())
		rs := dialReceivers(b, "ws"+strings.TrimPrefix(srv.URL, "http")+"/party/send", 1)
		defer rs.close()
		eventually(b, "the receiver in the room", func() bool {
			return h.Room("main", "send") != nil && h.Room("main", "send").GetConnection("r0") != nil
		})
		c := h.Room("main", "send").GetConnection("r0")
		msg := party.Binary(payload64)
		run(b, func() { c.Send(msg) }, rs)
	})
}

// BenchmarkUpgrade opens, greets and closes one connection per op.
func BenchmarkUpgrade(b *testing.B) {
	bench := func(b *testing.B, url string) {
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			c, _, err := websocket.Dial(context.Background(), fmt.Sprintf("%s?_pk=u%d", url, i), nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.Read(context.Background()); err != nil {
				b.Fatal(err)
			}
			c.Close(websocket.StatusNormalClosure, "")
		}
	}
	b.Run("baseline=coder-websocket", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			c.Write(context.Background(), websocket.MessageText, []byte("Welcome"))
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}))
		defer srv.Close()
		bench(b, "ws"+strings.TrimPrefix(srv.URL, "http")+"/")
	})
	b.Run("party", func(b *testing.B) {
		h := party.Handler(func(*party.Room) party.Server {
			return &probe{connect: func(c *party.Connection, _ *http.Request) { c.Send(party.Text("Welcome")) }}
		})
		srv := httptest.NewServer(h)
		defer srv.Close()
		defer h.Shutdown(context.Background())
		bench(b, "ws"+strings.TrimPrefix(srv.URL, "http")+"/party/up")
	})
}
