package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party/examples/guide"
)

// TestFloodAcrossNodes: a client held by one node floods the guide's chat,
// whose room and readers are on another. The owner pushes back across
// nodes (its room holds its readers back while one is over its high-water
// mark; its credit then stops, and the flooder's node stops reading the
// flooder): every reader stays connected and gets every message, in order,
// and the flooder's messages in flight to the owner stay within the relay's
// window.
func TestFloodAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("floods for 2 s")
	}
	ns := startServer(t, "")
	nodes := startNodes(t, ns, 2, 2*time.Second, guide.New)
	const readers = 3
	rs := make([]*client, readers)
	for i := range rs {
		rs[i] = dial(t, nodes[0], "flood", fmt.Sprintf("r%d", i)) // n1 runs the room
		rs[i].read()                                              // the welcome
		for j := range i {
			rs[j].read() // the join notice
		}
	}
	f := dial(t, nodes[1], "flood", "flooder")
	for _, r := range rs {
		r.expect("Heads up! flooder joined the party!")
	}

	payload := make([]byte, 1024)
	var sent int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); sent++ {
			copy(payload, fmt.Sprintf("%09d", sent))
			if err := f.conn.Write(context.Background(), websocket.MessageBinary, payload); err != nil {
				t.Errorf("flooder: %v", err)
				return
			}
		}
		if err := f.conn.Write(context.Background(), websocket.MessageText, []byte("end")); err != nil {
			t.Errorf("flooder: %v", err)
		}
	}()
	var wg sync.WaitGroup
	got := make([]int, readers)
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, data, err := r.conn.Read(ctx)
				cancel()
				if err != nil {
					t.Errorf("reader %d after %d messages: %v", i, got[i], err)
					return
				}
				if string(data) == "end" {
					return
				}
				if want := fmt.Sprintf("%09d", got[i]); len(data) < 9 || string(data[:9]) != want {
					t.Errorf("reader %d: message %q, want %s", i, data[:min(9, len(data))], want)
					return
				}
				got[i]++
			}
		}()
	}
	wg.Wait()
	<-done
	nodes[1].node.mu.Lock()
	r := nodes[1].node.relays[roomRef{"main", "flood"}]
	nodes[1].node.mu.Unlock()
	if r == nil {
		t.Fatal("n2 relays no room flood")
	}
	r.mu.Lock()
	most := r.maxInflight
	r.mu.Unlock()
	if most > relayWindow+1 {
		t.Errorf("up to %d of the flooder's messages were in flight to the owner, over the window of %d", most, relayWindow)
	}
	t.Logf("at most %d of the flooder's messages in flight to the owner (window %d)", most, relayWindow)
	for i, n := range got {
		if n != sent {
			t.Errorf("reader %d got %d messages, the flooder sent %d", i, n, sent)
		}
	}
	t.Logf("the flooder sent %d messages of 1 KiB in 2 s; each reader got %v", sent, got)
}

// TestSlowReaderAcrossNodes: the guide's chat runs on n1; a flooder held by
// n3 floods it for 3 s while a reader held by n2 reads nothing for the first
// 2 s (less than SlowClientTimeout). Back-pressure crosses nodes from the
// reader too: n2 tells n1 its reader is congested, n1's room stops handling
// the flood, its credit stops, and n3 stops reading the flooder. So, as on
// one node, the paused reader is never closed and gets every message, in
// order; without the signal n2 closes it (1008, send queue full) once its
// queue passes 1024 messages. After the flood, n1 holds no member
// congested.
func TestSlowReaderAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("floods for 10 s")
	}
	ns := startServer(t, "")
	nodes := startNodes(t, ns, 3, 2*time.Second, guide.New)
	anchor := dial(t, nodes[0], "slow", "anchor") // n1 runs the room
	anchor.expect("Welcome, anchor")
	slow := dial(t, nodes[1], "slow", "slow")
	slow.read() // the welcome
	anchor.expect("Heads up! slow joined the party!")
	f := dial(t, nodes[2], "slow", "flooder")
	f.read()
	for _, r := range []*client{anchor, slow} {
		r.expect("Heads up! flooder joined the party!")
	}

	// flood sends numbered 1 KiB messages from first on for d, then "end",
	// and returns the number after its last.
	flood := func(first int, d time.Duration) int {
		payload := make([]byte, 1024)
		next := first
		for end := time.Now().Add(d); time.Now().Before(end); next++ {
			copy(payload, fmt.Sprintf("%09d", next))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := f.conn.Write(ctx, websocket.MessageBinary, payload)
			cancel()
			if err != nil {
				t.Errorf("flooder: %v", err)
				return next
			}
		}
		f.send("end")
		return next
	}
	// readAll reads r's numbered messages from first on, after pause, up
	// to "end", and returns the number after the last.
	readAll := func(name string, r *client, first int, pause time.Duration) int {
		time.Sleep(pause)
		next := first
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, data, err := r.conn.Read(ctx)
			cancel()
			if err != nil {
				t.Errorf("%s after %d messages: %v", name, next-first, err)
				return next
			}
			if string(data) == "end" {
				return next
			}
			if want := fmt.Sprintf("%09d", next); len(data) < 9 || string(data[:9]) != want {
				t.Errorf("%s: message %q, want %s", name, data[:min(9, len(data))], want)
				return next
			}
			next++
		}
	}
	type result struct {
		name string
		next int
	}
	got := make(chan result, 2)
	go func() { got <- result{"anchor", readAll("anchor", anchor, 0, 0)} }()
	go func() { got <- result{"slow", readAll("slow", slow, 0, 2*time.Second)} }()
	// Whether n1 ever held the slow reader congested: else the flood fitted
	// in its buffers, and the test showed nothing.
	var held atomic.Bool
	watching := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(watching)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if congestedAt(nodes[0], "slow") > 0 {
					held.Store(true)
				}
			}
		}
	}()
	sent := flood(0, 3*time.Second)
	for range 2 {
		if r := <-got; r.next != sent {
			t.Errorf("%s got messages 0 to %d, the flooder sent 0 to %d", r.name, r.next-1, sent-1)
		}
	}
	close(stop)
	<-watching
	if !held.Load() {
		t.Error("n1 never held the paused reader congested")
	}
	t.Logf("a reader paused for 2 s: the flooder sent %d messages of 1 KiB in 3 s", sent)
	eventually := time.Now().Add(5 * time.Second)
	for congestedAt(nodes[0], "slow") > 0 {
		if time.Now().After(eventually) {
			t.Fatalf("n1 still holds %d members congested after the flood", congestedAt(nodes[0], "slow"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// congestedAt counts the members of room that node n holds congested for
// other nodes.
func congestedAt(n *testNode, room string) int {
	n.node.mu.Lock()
	o := n.node.owned[roomRef{"main", room}]
	n.node.mu.Unlock()
	if o == nil {
		return 0
	}
	o.mu.Lock()
	fanouts := make([]*fanout, 0, len(o.fanouts))
	for _, f := range o.fanouts {
		fanouts = append(fanouts, f)
	}
	o.mu.Unlock()
	count := 0
	for _, f := range fanouts {
		f.congMu.Lock()
		count += len(f.congested)
		f.congMu.Unlock()
	}
	return count
}
