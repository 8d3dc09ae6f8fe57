package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The flood scenario (-flood D). Room r0 holds a flooder, c0, and
// -flood-readers readers, c1..cR: c0 sends -size byte messages, numbered,
// back to back for D, each as soon as the server has read enough of the
// previous ones for TCP to take it; the readers read as fast as they can and
// check each message off, so every reader's losses, duplicates and
// reorderings are exact counts. Room r1 holds two clients, c(R+1) and
// c(R+2), each sending the other a 64-byte message every -pair-every during
// the flood: the latency and losses of a room beside the flood.
//
// What the server read of the flood comes from the bytes it read meanwhile
// (rchar in /proc/PID/io, less the pair's messages) when -pid is given;
// without it, from what the flooder wrote (counted on its socket) minus what
// was still in the kernel's buffers when the flood ended, the flooder's send
// queue plus the server's receive queue from /proc/net/tcp, which counts
// bytes received but not yet acknowledged twice. The server's RSS is sampled every 10 ms from the flood's
// start until the readers have everything.

// floodReport is the flood scenario's part of the JSON line.
type floodReport struct {
	Seconds          float64       `json:"seconds"`            // the flood, from its first message to its end
	Sent             int64         `json:"sent"`               // complete messages the flooder wrote
	Accepted         int64         `json:"accepted"`           // of those, read by the server by the flood's end
	AcceptedFrom     string        `json:"accepted_from"`      // rchar: the server's bytes read; tcp queues: written - queued
	AcceptedByQueues int64         `json:"accepted_by_queues"` // written - queued, an estimate that counts bytes in flight twice
	AcceptedPerS     float64       `json:"accepted_per_s"`     // Accepted / Seconds
	QueuedKiB        float64       `json:"queued_kib"`         // between flooder and server at the end, in the kernel
	QueueKnown       bool          `json:"queue_known"`        // false: both sockets were not found in /proc/net/tcp
	FlooderClosed    int           `json:"flooder_closed"`     // the server closed the flooder with this code; 0 if not
	Readers          []floodReader `json:"readers"`            // c1..cR
	ReadersKept      int           `json:"readers_kept"`       // readers the server did not close
	ReadersComplete  int           `json:"readers_complete"`   // kept, with every message once and in order
	Lost             int64         `json:"lost"`               // over all readers
	Skipped          int64         `json:"skipped"`            // over all readers
	OutOfOrder       int64         `json:"out_of_order"`       // over all readers
	Duplicated       int64         `json:"duplicated"`         // over all readers
	DrainSeconds     float64       `json:"drain_s"`            // from the flood's end to the readers' last flood message
	Other            pairReport    `json:"other"`
	RSSBeforeKiB     int64         `json:"rss_before_kib"`
	RSSPeakKiB       int64         `json:"rss_peak_kib"`
	RSSGrowthKiB     int64         `json:"rss_growth_kib"` // peak - before
}

// floodReader is one reader's account.
type floodReader struct {
	ID         string  `json:"id"`
	Received   int64   `json:"received"`        // distinct flood messages
	AtEnd      int64   `json:"received_at_end"` // of those, received by the flood's end
	Lost       int64   `json:"lost"`            // sent - received
	Skipped    int64   `json:"skipped"`         // missing below the last one received: dropped while connected
	OutOfOrder int64   `json:"out_of_order"`    // received after a later one
	Duplicated int64   `json:"duplicated"`
	ClosedCode int     `json:"closed_code,omitempty"` // the server closed it: its close code, 1006 without one
	ClosedAtS  float64 `json:"closed_at_s,omitempty"` // seconds after the flood started
	Complete   bool    `json:"complete"`
}

// pairReport is the other room's account.
type pairReport struct {
	Sent       int64   `json:"sent"`
	Delivered  int64   `json:"delivered"`
	Lost       int64   `json:"lost"`
	Duplicated int64   `json:"duplicated"`
	LatencyMs  latency `json:"latency_ms"`
}

// floodFlags registers the flood scenario's flags.
func floodFlags(cfg *config) {
	flag.DurationVar(&cfg.Flood, "flood", 0, "run the flood scenario for this long instead of the senders (ignores -clients, -rooms, -senders, -messages, -rate, -procs)")
	flag.IntVar(&cfg.FloodReaders, "flood-readers", 5, "flood: readers in the flooded room")
	flag.DurationVar(&cfg.PairEvery, "pair-every", 20*time.Millisecond, "flood: each client of the other room sends the other a message this often")
}

// role is what a flood client does.
type role int

const (
	flooder role = iota
	reader
	pairer
)

type floodClient struct {
	id      string
	idx     int
	role    role
	conn    *websocket.Conn
	counted *countingConn
	peer    *floodClient // pairer: the other one

	sent     atomic.Int64  // pairer: messages sent
	received atomic.Int64  // distinct bench messages received
	done     chan struct{} // closed when its reader returns

	// Owned by the reader goroutine until done is closed.
	seen       []uint64
	last       int
	outOfOrder int64
	dups       int64
	unexpected int64
	closedCode int
	closedAt   int64
}

func (c *floodClient) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// check takes message seq off c's set; false if it was a duplicate.
func (c *floodClient) check(seq int) bool {
	w, bit := seq/64, uint64(1)<<(seq%64)
	for len(c.seen) <= w {
		c.seen = append(c.seen, 0)
	}
	if c.seen[w]&bit != 0 {
		c.dups++
		return false
	}
	c.seen[w] |= bit
	if seq < c.last {
		c.outOfOrder++
	} else {
		c.last = seq
	}
	c.received.Add(1)
	return true
}

// skipped counts the messages missing below the last one c received.
func (c *floodClient) skipped() int64 {
	var n int64
	for q := 0; q < c.last; q++ {
		if c.seen[q/64]&(1<<(q%64)) == 0 {
			n++
		}
	}
	return n
}

// countingConn counts the bytes written to a connection.
type countingConn struct {
	net.Conn
	written atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

// errorList keeps the first maxErrors errors.
type errorList struct {
	mu   sync.Mutex
	list []string
}

func (e *errorList) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.list) < maxErrors {
		e.list = append(e.list, fmt.Sprintf(format, args...))
	}
}

type floodRun struct {
	cfg        config
	pid        int // the server's, or 0
	start, end time.Time
	flooder    *floodClient
	readers    []*floodClient
	pair       [2]*floodClient
	all        []*floodClient
	hist       histogram    // the other room's latency
	lastFlood  atomic.Int64 // unix ns of the readers' latest flood message
	lastPair   atomic.Int64
	closing    atomic.Bool
	errs       errorList
}

// dial connects client k to room and waits for its welcome.
func (f *floodRun) dial(k, room int, r role) (*floodClient, error) {
	c := &floodClient{id: fmt.Sprintf("c%d", k), idx: k, role: r, last: -1, done: make(chan struct{})}
	nd := &net.Dialer{Timeout: 30 * time.Second}
	if f.cfg.Src > 0 {
		nd.LocalAddr = &net.TCPAddr{IP: srcIP(k % f.cfg.Src)}
	}
	d := &websocket.Dialer{
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096, // a 1 KiB message in one frame
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			c.counted = &countingConn{Conn: conn}
			return c.counted, nil
		},
	}
	conn, resp, err := d.Dial(f.cfg.URL+fmt.Sprintf("r%d?_pk=%s", room, url.QueryEscape(c.id)), nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %v%s", c.id, err, status(resp))
	}
	c.conn = conn
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: no welcome: %v", c.id, err)
		}
		if bytes.HasPrefix(b, prefixWelcome) {
			break
		}
	}
	conn.SetReadDeadline(time.Time{})
	f.all = append(f.all, c)
	go f.read(c)
	return c, nil
}

// connect joins the readers, then the flooder, to r0 and the pair to r1.
func (f *floodRun) connect() error {
	n := f.cfg.FloodReaders
	for k := 1; k <= n; k++ {
		c, err := f.dial(k, 0, reader)
		if err != nil {
			return err
		}
		f.readers = append(f.readers, c)
	}
	var err error
	if f.flooder, err = f.dial(0, 0, flooder); err != nil {
		return err
	}
	for i := range f.pair {
		if f.pair[i], err = f.dial(n+1+i, 1, pairer); err != nil {
			return err
		}
	}
	f.pair[0].peer, f.pair[1].peer = f.pair[1], f.pair[0]
	return nil
}

// read is a client's reader goroutine.
func (f *floodRun) read(c *floodClient) {
	defer close(c.done)
	buf := make([]byte, 0, 2048)
	for {
		_, r, err := c.conn.NextReader()
		if err == nil {
			buf, err = readAll(buf[:0], r)
		}
		if err != nil {
			if !f.closing.Load() {
				c.closedAt = time.Now().UnixNano()
				c.closedCode = websocket.CloseAbnormalClosure
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					c.closedCode = ce.Code
				}
				f.errs.add("%s closed by the server: %v", c.id, err)
			}
			return
		}
		if len(buf) >= headerLen && buf[0] == '#' {
			f.take(c, buf)
		}
	}
}

// take counts one bench message received by c.
func (f *floodRun) take(c *floodClient, b []byte) {
	sender, seq, sentAt, ok := parseHeader(b)
	switch {
	case !ok:
		c.unexpected++
	case c.role == reader && sender == f.flooder.idx:
		if c.check(seq) {
			storeMax(&f.lastFlood, time.Now().UnixNano())
		}
	case c.role == pairer && sender == c.peer.idx:
		if c.check(seq) {
			now := time.Now().UnixNano()
			f.hist.record(time.Duration(now - sentAt))
			storeMax(&f.lastPair, now)
		}
	default:
		c.unexpected++
	}
}

func storeMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// flood sends numbered messages back to back until f.end; a write still
// blocked then fails on its deadline. It returns the messages written whole.
func (f *floodRun) flood() int64 {
	c := f.flooder
	msg := bytes.Repeat([]byte{'x'}, max(f.cfg.Size, headerLen))
	c.conn.SetWriteDeadline(f.end)
	var sent int64
	for time.Now().Before(f.end) {
		putHeader(msg, c.idx, int(sent), time.Now().UnixNano())
		if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				f.errs.add("flooder: %v", err)
			}
			break
		}
		sent++
	}
	return sent
}

// pairSize is the size of the pair's messages.
const pairSize = 64

// pairSend sends c's peer a message every cfg.PairEvery, from offset after
// the start until the flood's end.
func (f *floodRun) pairSend(c *floodClient, offset time.Duration) {
	msg := bytes.Repeat([]byte{'x'}, pairSize)
	for seq := 0; ; seq++ {
		at := f.start.Add(offset + time.Duration(seq)*f.cfg.PairEvery)
		if !at.Before(f.end) {
			return
		}
		time.Sleep(time.Until(at))
		putHeader(msg, c.idx, seq, time.Now().UnixNano())
		if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			f.errs.add("%s send: %v", c.id, err)
			return
		}
		c.sent.Add(1)
	}
}
