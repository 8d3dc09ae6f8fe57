package main

import (
	"io"
	"net"
	"testing"
	"time"

	"party"
)

func floodConfig(url string) config {
	return config{
		URL: url, Flood: 300 * time.Millisecond, FloodReaders: 5, Size: 1024, PairEvery: 20 * time.Millisecond,
		Src: 2, Drain: 2 * time.Second, Parts: 1,
	}
}

func TestFloodCountsEveryMessage(t *testing.T) {
	rep, done, err := measureFlood(floodConfig(serveChat(t, nil)), options{settle: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done()
	f := rep.Flood
	if f.Sent == 0 || f.Accepted <= 0 || f.Accepted > f.Sent || f.AcceptedFrom != "tcp queues" || !f.QueueKnown {
		t.Errorf("sent %d, accepted %d from %q (queues known: %v): want 0 < accepted <= sent, from the TCP queues",
			f.Sent, f.Accepted, f.AcceptedFrom, f.QueueKnown)
	}
	for _, r := range f.Readers {
		if r.Received != f.Sent || r.Lost != 0 || r.Skipped != 0 || r.OutOfOrder != 0 || r.Duplicated != 0 ||
			r.ClosedCode != 0 || !r.Complete || r.AtEnd > r.Received {
			t.Errorf("reader %+v, want all %d messages, once, in order, kept", r, f.Sent)
		}
	}
	if f.ReadersKept != 5 || f.ReadersComplete != 5 || f.Lost != 0 || f.FlooderClosed != 0 {
		t.Errorf("kept %d, complete %d, lost %d, flooder closed %d: want 5, 5, 0, 0", f.ReadersKept, f.ReadersComplete, f.Lost, f.FlooderClosed)
	}
	// Each of the pair sends at 0, 20, ... 280 ms, offset by 0 and 10 ms.
	if o := f.Other; o.Sent != 30 || o.Delivered != 30 || o.Lost != 0 || o.Duplicated != 0 || o.LatencyMs.P50 <= 0 {
		t.Errorf("other room %+v, want 30 sent and delivered, with latencies", o)
	}
	if want := 5*f.Sent + 30; rep.Expected != want || rep.Delivered != want || rep.Lost != 0 ||
		rep.Unexpected != 0 || rep.DroppedClients != 0 || rep.Connected != 8 {
		t.Errorf("expected %d, delivered %d, lost %d, misrouted %d, dropped %d, connected %d: want %d, %d, 0, 0, 0, 8 (errors %q)",
			rep.Expected, rep.Delivered, rep.Lost, rep.Unexpected, rep.DroppedClients, rep.Connected, want, want, rep.Errors)
	}
}

// tamperedChat is the guide's chat with the flooder's messages tampered
// with: 3 dropped, 5 relayed twice, 7 held back until after 8, and c3
// closed with 1008 before 10 is relayed.
type tamperedChat struct {
	chat
	held party.Message
}

func (s *tamperedChat) OnMessage(msg party.Message, sender *party.Connection) {
	if sender.ID() != "c0" {
		s.chat.OnMessage(msg, sender)
		return
	}
	_, seq, _, _ := parseHeader(msg.Bytes())
	switch seq {
	case 3:
		return
	case 5:
		s.room.Broadcast(msg, "c0")
	case 7:
		s.held = msg
		return
	case 8:
		s.room.Broadcast(msg, "c0")
		msg = s.held
	case 10:
		for c := range s.room.GetConnections("c3") {
			c.Close(party.StatusPolicyViolation, "slow consumer")
		}
	}
	s.room.Broadcast(msg, "c0")
}

func TestFloodReportsLossOrderAndCloses(t *testing.T) {
	url := serve(t, func(r *party.Room) party.Server { return &tamperedChat{chat: chat{room: r}} })
	cfg := floodConfig(url)
	cfg.Drain = 300 * time.Millisecond // the kept readers wait for message 3
	rep, done, err := measureFlood(cfg, options{settle: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done()
	f := rep.Flood
	for _, r := range f.Readers {
		want := floodReader{ID: r.ID, Received: f.Sent - 1, AtEnd: r.AtEnd, Lost: 1, Skipped: 1, OutOfOrder: 1, Duplicated: 1}
		if r.ID == "c3" {
			// 0..9 but 3, then the close.
			want.Received, want.Lost, want.ClosedCode, want.ClosedAtS = 9, f.Sent-9, 1008, r.ClosedAtS
		}
		if r != want {
			t.Errorf("reader %+v, want %+v", r, want)
		}
	}
	if f.ReadersKept != 4 || f.ReadersComplete != 0 || f.Lost != 4+f.Sent-9 || f.Skipped != 5 || f.OutOfOrder != 5 || f.Duplicated != 5 {
		t.Errorf("kept %d, complete %d, lost %d, skipped %d, out of order %d, duplicated %d: want 4, 0, %d, 5, 5, 5",
			f.ReadersKept, f.ReadersComplete, f.Lost, f.Skipped, f.OutOfOrder, f.Duplicated, 4+f.Sent-9)
	}
	if rep.DroppedClients != 1 || rep.Lost != f.Lost || rep.Duplicated != 5 || f.Other.Lost != 0 {
		t.Errorf("dropped %d, lost %d, duplicated %d, other room lost %d: want 1, %d, 5, 0",
			rep.DroppedClients, rep.Lost, rep.Duplicated, f.Other.Lost, f.Lost)
	}
}

func TestTCPQueued(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server := <-accepted
	defer server.Close()
	if _, err := c.Write(make([]byte, 10000)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the acknowledgement through
	if q, known := tcpQueued(c.LocalAddr(), c.RemoteAddr()); q != 10000 || !known {
		t.Errorf("queued %d (known %v) with 10,000 bytes unread, want 10000", q, known)
	}
	io.ReadFull(server, make([]byte, 4000))
	if q, _ := tcpQueued(c.LocalAddr(), c.RemoteAddr()); q != 6000 {
		t.Errorf("queued %d after the server read 4,000, want 6000", q)
	}
}
