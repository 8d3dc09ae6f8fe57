package cluster

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"party"
	"party/storage"
)

// handlerLog records every handler run of every node, to check that no two
// nodes ever run a room's handlers at once.
type handlerLog struct {
	mu   sync.Mutex
	runs []handlerRun
	busy sync.Map // room -> *atomic.Int32: handlers running now, all nodes
	over atomic.Int32
}

type handlerRun struct {
	node       string
	start, end time.Time
}

func (l *handlerLog) run(room *party.Room, node string, f func()) {
	v, _ := l.busy.LoadOrStore(room.ID(), new(atomic.Int32))
	busy := v.(*atomic.Int32)
	if busy.Add(1) > 1 {
		l.over.Add(1)
	}
	start := time.Now()
	f()
	end := time.Now()
	busy.Add(-1)
	l.mu.Lock()
	l.runs = append(l.runs, handlerRun{node, start, end})
	l.mu.Unlock()
}

// overlaps returns the pairs of runs by different nodes that overlap.
func (l *handlerLog) overlaps() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for i, a := range l.runs {
		for _, b := range l.runs[i+1:] {
			if a.node != b.node && a.start.Before(b.end) && b.start.Before(a.end) {
				out = append(out, fmt.Sprintf("%s %v-%v and %s %v-%v", a.node, a.start, a.end, b.node, b.start, b.end))
			}
		}
	}
	return out
}

// counterServer counts "inc" messages in the room's storage, answering the
// sender "ack <n>" once the count is stored, or "refused <err>".
type counterServer struct {
	room *party.Room
	node string
	log  *handlerLog
	hold chan chan error // a test's way to hold a "hold" message in the turn
	held chan struct{}   // signalled once a "hold" message holds the turn
}

func (s *counterServer) OnMessage(msg party.Message, c *party.Connection) {
	if msg.String() == "hold" && s.hold != nil {
		// Not logged: this run is the one in progress when its node loses
		// the room, which nothing can stop; fencing refuses its write.
		s.held <- struct{}{}
		done := <-s.hold
		done <- s.increment()
		return
	}
	s.log.run(s.room, s.node, func() {
		switch msg.String() {
		case "inc":
			if err := s.increment(); err != nil {
				c.Send(party.Text("refused " + err.Error()))
				return
			}
			v, _ := s.room.Storage().Get("n")
			c.Send(party.Text("ack " + string(v)))
		}
	})
}

func (s *counterServer) increment() error {
	st := s.room.Storage()
	v, err := st.Get("n")
	if err != nil && !errors.Is(err, storage.ErrKeyNotFound) {
		return err
	}
	n, _ := strconv.Atoi(string(v))
	return st.Put("n", []byte(strconv.Itoa(n+1)))
}

// TestOwnerCutOffStops: an owner whose renewals are blocked stops handling
// the room before its lease can expire, its late storage write is refused,
// another node takes the room over with everything acknowledged, and no two
// nodes ever run the room's handlers at once.
func TestOwnerCutOffStops(t *testing.T) {
	ns := startServer(t, "")
	log := &handlerLog{}
	hold, held := make(chan chan error), make(chan struct{}, 1)
	nodes := startNodesWith(t, ns, 3, 2*time.Second, func(node string) func(*party.Room) party.Server {
		return func(r *party.Room) party.Server {
			s := &counterServer{room: r, node: node, log: log}
			if node == "n1" {
				s.hold, s.held = hold, held
			}
			return s
		}
	})
	a := dial(t, nodes[0], "x", "a") // n1 claims the room
	b := dial(t, nodes[1], "x", "b")
	c := dial(t, nodes[2], "x", "c")
	for i, cl := range []*client{a, b, c, a, b, c} {
		cl.send("inc")
		cl.expect("ack " + strconv.Itoa(i+1))
	}

	// n1's handler holds the turn; its renewals stop.
	a.send("hold")
	<-held
	nodes[0].node.owners.dropRenewals.Store(true)

	// The clients on n2 and n3 are closed with 1012 when n1 drops the room
	// (its lease lost); they reconnect and the room runs elsewhere.
	for _, cl := range []*client{b, c} {
		cl.expectClose(party.StatusServiceRestart)
	}
	b = dial(t, nodes[1], "x", "b")
	b.send("inc")
	b.expect("ack 7")
	if owner := ownerOf(t, nodes[1], "x"); owner == "n1" {
		t.Fatalf("the room is still owned by n1")
	}

	// n1's held handler now writes: refused, and the count is unchanged.
	done := make(chan error, 1)
	hold <- done
	if err := <-done; err == nil {
		t.Fatal("the cut-off owner's late write succeeded")
	} else {
		t.Logf("late write refused: %v", err)
	}
	c = dial(t, nodes[2], "x", "c")
	c.send("inc")
	c.expect("ack 8")
	if n := log.over.Load(); n != 0 {
		t.Fatalf("%d handler runs overlapped another", n)
	}
	if o := log.overlaps(); len(o) > 0 {
		t.Fatalf("runs of different nodes overlap: %v", o)
	}
}
