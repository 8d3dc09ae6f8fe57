package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// measureFlood runs the flood scenario (see flood.go) in this process and
// returns its report. The clients are closed before it returns: done has
// nothing left to do.
func measureFlood(cfg config, o options) (*report, func(), error) {
	if len(o.pids) > 1 || len(cfg.URLs) > 1 {
		return nil, nil, fmt.Errorf("-flood measures one server: give one -url and one -pid")
	}
	f := &floodRun{cfg: cfg}
	if len(o.pids) == 1 {
		f.pid = o.pids[0]
	}
	rep := &report{
		Label: o.label, Clients: cfg.FloodReaders + 3, Rooms: 2, Senders: 3, Size: max(cfg.Size, headerLen), Procs: 1,
	}
	rep.RSSIdleKiB = rssKiB(f.pid)
	t0 := time.Now()
	err := f.connect()
	rep.ConnectSeconds = time.Since(t0).Seconds()
	if err != nil {
		f.closeAll()
		return nil, nil, err
	}
	rep.Connected = len(f.all)
	time.Sleep(o.settle)
	rep.RSSConnectedKiB = rssKiB(f.pid)
	cpu0, loadCPU0 := cpuSeconds(f.pid), selfCPUSeconds()
	stopRSS := sampleRSS(f.pid, 10*time.Millisecond)
	fr := f.run()
	fr.RSSPeakKiB = stopRSS()
	rep.ServerCPUSeconds = cpuSeconds(f.pid) - cpu0
	rep.LoadCPUSeconds = selfCPUSeconds() - loadCPU0
	rep.RSSAfterKiB = rssKiB(f.pid)
	f.closeAll()
	f.account(rep, fr)
	return rep, func() {}, nil
}

// run floods for cfg.Flood while the pair talks, measures what the server
// read, and waits for the readers and the pair to get everything.
func (f *floodRun) run() *floodReport {
	fr := &floodReport{}
	f.start = time.Now()
	f.end = f.start.Add(f.cfg.Flood)
	var wg sync.WaitGroup
	for i, c := range f.pair {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.pairSend(c, time.Duration(i)*f.cfg.PairEvery/2)
		}()
	}
	read0, written0 := readChars(f.pid), f.flooder.counted.written.Load()
	fr.Sent = f.flood()
	stop := time.Now()
	read := readChars(f.pid) - read0
	for _, c := range f.readers {
		fr.Readers = append(fr.Readers, floodReader{ID: c.id, AtEnd: c.received.Load()})
	}
	queued, known := tcpQueued(f.flooder.conn.LocalAddr(), f.flooder.conn.RemoteAddr())
	written := f.flooder.counted.written.Load() - written0
	fr.Seconds = stop.Sub(f.start).Seconds()
	f.accepted(fr, read, written, queued, known)
	wg.Wait()
	f.drain(fr.Sent)
	if last := f.lastFlood.Load(); last > stop.UnixNano() {
		fr.DrainSeconds = float64(last-stop.UnixNano()) / 1e9
	}
	return fr
}

// accepted works out how many flood messages the server read by the end of
// the flood, given the bytes it read meanwhile (from /proc/PID/io; 0 if
// unknown) and the bytes the flooder wrote and those still queued between
// the two in the kernel.
func (f *floodRun) accepted(fr *floodReport, read, written, queued int64, known bool) {
	frame := int64(frameLen(max(f.cfg.Size, headerLen)))
	fr.QueueKnown, fr.QueuedKiB = known, float64(queued)/1024
	fr.AcceptedByQueues = min(max((written-queued)/frame, 0), fr.Sent)
	fr.Accepted, fr.AcceptedFrom = fr.AcceptedByQueues, "tcp queues"
	if read > 0 {
		// The server read nothing else meanwhile but the pair's messages.
		pair := (f.pair[0].sent.Load() + f.pair[1].sent.Load()) * int64(frameLen(pairSize))
		fr.Accepted, fr.AcceptedFrom = min(max((read-pair)/frame, 0), fr.Sent), "rchar"
	}
	fr.AcceptedPerS = float64(fr.Accepted) / fr.Seconds
}

// drain waits until every reader the server kept has all sent messages and
// each of the pair all its peer sent, or for cfg.Drain of silence.
func (f *floodRun) drain(sent int64) {
	settled := func() bool {
		for _, c := range f.readers {
			if !c.isDone() && c.received.Load() < sent {
				return false
			}
		}
		for _, c := range f.pair {
			if !c.isDone() && c.received.Load() < c.peer.sent.Load() {
				return false
			}
		}
		return true
	}
	for !settled() {
		last := max(f.lastFlood.Load(), f.lastPair.Load(), f.end.UnixNano())
		if time.Since(time.Unix(0, last)) > f.cfg.Drain {
			f.errs.add("gave up waiting after %v of silence", f.cfg.Drain)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closeAll closes every client and waits for its reader.
func (f *floodRun) closeAll() {
	f.closing.Store(true)
	for _, c := range f.all {
		c.conn.Close()
	}
	for _, c := range f.all {
		<-c.done
	}
}

// account completes fr from the clients, once their readers are done, and
// fills rep's common figures from it: every reader is expected to receive
// every message sent, each of the pair every message its peer sent.
func (f *floodRun) account(rep *report, fr *floodReport) {
	fr.RSSBeforeKiB = rep.RSSConnectedKiB
	fr.RSSPeakKiB = max(fr.RSSPeakKiB, rep.RSSAfterKiB)
	if fr.RSSPeakKiB > 0 {
		fr.RSSGrowthKiB = fr.RSSPeakKiB - fr.RSSBeforeKiB
	}
	fr.FlooderClosed = f.flooder.closedCode
	var floodDelivered int64
	for i, c := range f.readers {
		r := &fr.Readers[i]
		r.Received = c.received.Load()
		r.Lost = max(fr.Sent-r.Received, 0)
		r.Skipped, r.OutOfOrder, r.Duplicated, r.ClosedCode = c.skipped(), c.outOfOrder, c.dups, c.closedCode
		if c.closedAt != 0 {
			r.ClosedAtS = float64(c.closedAt-f.start.UnixNano()) / 1e9
		}
		r.Complete = r.ClosedCode == 0 && r.Lost == 0 && r.OutOfOrder == 0 && r.Duplicated == 0
		if r.ClosedCode == 0 {
			fr.ReadersKept++
		}
		if r.Complete {
			fr.ReadersComplete++
		}
		fr.Lost += r.Lost
		fr.Skipped += r.Skipped
		fr.OutOfOrder += r.OutOfOrder
		fr.Duplicated += r.Duplicated
		floodDelivered += r.Received
	}
	o := &fr.Other
	for _, c := range f.pair {
		o.Sent += c.sent.Load()
		o.Delivered += c.received.Load()
		o.Duplicated += c.dups
	}
	o.Lost = o.Sent - o.Delivered
	var m merged
	m.add(f.hist.sparse(), f.hist.max.Load())
	o.LatencyMs = latencyOf(&m)

	rep.Flood = fr
	rep.Sent = fr.Sent + o.Sent
	rep.Expected = int64(len(f.readers))*fr.Sent + o.Sent
	rep.Delivered = floodDelivered + o.Delivered
	rep.Lost = rep.Expected - rep.Delivered
	rep.Duplicated = fr.Duplicated + o.Duplicated
	for _, c := range f.all {
		rep.Unexpected += c.unexpected
		if c.closedCode != 0 {
			rep.DroppedClients++
		}
	}
	rep.Seconds = fr.Seconds
	rep.SentPerS = float64(fr.Sent) / fr.Seconds
	if last := f.lastFlood.Load(); last > f.start.UnixNano() {
		rep.DeliveriesPerS = float64(floodDelivered) / (float64(last-f.start.UnixNano()) / 1e9)
	}
	rep.LatencyMs = o.LatencyMs
	rep.Errors = f.errs.list
}

// frameLen is the length of a client's frame of n payload bytes (masked).
func frameLen(n int) int {
	switch {
	case n < 126:
		return 2 + 4 + n
	case n < 1<<16:
		return 4 + 4 + n
	}
	return 10 + 4 + n
}

// srcIP is loopback source address i: 127.0.0.2, 127.0.0.3, ...
func srcIP(i int) net.IP {
	return net.IPv4(127, 0, byte((2+i)/256), byte((2+i)%256))
}

// tcpQueued returns the bytes in the kernel's buffers between the local end
// a and the remote end b of a TCP connection over IPv4 on this machine: a's
// send queue (written, not yet acknowledged) plus b's receive queue (arrived,
// not yet read), from /proc/net/tcp. known is false unless both were found.
func tcpQueued(a, b net.Addr) (queued int64, known bool) {
	ta, ok1 := a.(*net.TCPAddr)
	tb, ok2 := b.(*net.TCPAddr)
	if !ok1 || !ok2 || ta.IP.To4() == nil || tb.IP.To4() == nil {
		return 0, false
	}
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, false
	}
	la, lb := procTCPAddr(ta), procTCPAddr(tb)
	found := 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		tx, rx, _ := strings.Cut(f[4], ":")
		var field string
		switch {
		case f[1] == la && f[2] == lb:
			field = tx
		case f[1] == lb && f[2] == la:
			field = rx
		default:
			continue
		}
		n, err := strconv.ParseInt(field, 16, 64)
		if err != nil {
			return 0, false
		}
		queued += n
		found++
	}
	return queued, found == 2
}

// procTCPAddr writes a as /proc/net/tcp does on a little-endian machine:
// the address as a 32-bit number in host order, then the port, in hex.
func procTCPAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
}

// sampleRSS reads pid's RSS every period until stop is called; stop returns
// the highest reading (0 without a pid).
func sampleRSS(pid int, period time.Duration) (stop func() int64) {
	if pid == 0 {
		return func() int64 { return 0 }
	}
	quit, done := make(chan struct{}), make(chan struct{})
	var peak int64
	go func() {
		defer close(done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			peak = max(peak, rssKiB(pid))
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(quit)
		<-done
		return peak
	}
}
