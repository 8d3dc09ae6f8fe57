package cluster

import (
	"context"
	"fmt"
	"sync"
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
