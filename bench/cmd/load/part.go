package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// A part is the clients [lo, hi) of the layout and the churn operations
// [churnLo, churnHi), run in one process. It talks to the parent through a
// line-delimited JSON protocol (see runPart) so that the same code runs
// in-process and in child processes.
type part struct {
	cfg     config
	lo, hi  int
	dialers []*websocket.Dialer

	clients []*client // index i-lo; nil if it failed to connect

	hist       histogram
	delivered  atomic.Int64
	dups       atomic.Int64
	unexpected atomic.Int64
	remaining  atomic.Int64 // unique deliveries this part still expects
	lastRecv   atomic.Int64 // unix ns of the latest bench delivery
	welcomes   atomic.Int64
	joins      atomic.Int64
	leaves     atomic.Int64
	other      atomic.Int64
	dropped    atomic.Int64 // clients the server closed before the end
	closing    atomic.Bool

	sent      atomic.Int64
	firstSend atomic.Int64
	lastSend  atomic.Int64

	// Window flow control: acks[s][q] counts this part's receivers that
	// got message q of sender s; sender s waits on senderWake[s] until
	// acks[s][senderWait[s]] reaches senderRecv[s], the number of local
	// clients that receive s.
	acks       [][]atomic.Int32
	senderWait []atomic.Int64
	senderWake []chan struct{}
	senderRecv []int32

	churnRemaining atomic.Int64 // churn join+leave notices residents still expect
	churnJoins     atomic.Int64
	churnLeaves    atomic.Int64
	churnHist      histogram
	closeHist      histogram
	churnDone      atomic.Int64
	churnFailed    atomic.Int64

	errMu sync.Mutex
	errs  []string
}

type client struct {
	idx      int
	conn     *websocket.Conn
	expected int64 // bench deliveries this client should receive
	got      int64 // unique bench deliveries received (reader goroutine only)
	churnExp int64 // churn notices this client should receive
	churnGot int64
	seen     map[int][]uint64 // sender -> bitset of seqs (reader goroutine only)
	welcomed chan struct{}    // closed on welcome or on failure
	ok       atomic.Bool      // welcomed (set before welcomed is closed)
}

// readyMsg and resultMsg are the part's two reports to the parent.
type readyMsg struct {
	Connected      int     `json:"connected"`
	Failed         int     `json:"failed"`
	ConnectSeconds float64 `json:"connect_seconds"`
	Errors         []string
}

type resultMsg struct {
	Sent        int64
	FirstSend   int64
	LastSend    int64
	LastRecv    int64
	Expected    int64
	Delivered   int64
	Dups        int64
	Unexpected  int64
	Dropped     int64
	Welcomes    int64
	Joins       int64
	Leaves      int64
	Other       int64
	Hist        map[int]uint64
	HistMax     int64
	ChurnDone   int64
	ChurnFailed int64
	ChurnStart  int64
	ChurnEnd    int64
	ChurnExp    int64
	ChurnJoins  int64
	ChurnLeaves int64
	ChurnHist   map[int]uint64
	ChurnMax    int64
	CloseHist   map[int]uint64
	CloseMax    int64
	CPUSeconds  float64
	Errors      []string
}

type envelope struct {
	Ready  *readyMsg  `json:"ready,omitempty"`
	Result *resultMsg `json:"result,omitempty"`
}

const maxErrors = 10

func (p *part) errorf(format string, args ...any) {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if len(p.errs) < maxErrors {
		p.errs = append(p.errs, fmt.Sprintf(format, args...))
	}
}

func (p *part) takeErrors() []string {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	e := p.errs
	p.errs = nil
	return e
}

// runPart runs part cfg.Part of cfg.Parts: it connects, reports ready, waits
// for "go" on in, runs, reports its result, and closes its connections when
// in says "exit" or ends.
func runPart(cfg config, in io.Reader, out io.Writer) error {
	p := newPart(cfg)
	enc := json.NewEncoder(out)
	lines := bufio.NewScanner(in)

	t0 := time.Now()
	p.connectAll()
	ready := &readyMsg{ConnectSeconds: time.Since(t0).Seconds()}
	for _, c := range p.clients {
		if c != nil {
			ready.Connected++
		} else {
			ready.Failed++
		}
	}
	ready.Errors = p.takeErrors()
	if err := enc.Encode(envelope{Ready: ready}); err != nil {
		return err
	}

	if !lines.Scan() || lines.Text() != "go" {
		p.closeAll()
		return fmt.Errorf("part %d: expected go, got %q", cfg.Part, lines.Text())
	}
	res := p.run()
	if err := enc.Encode(envelope{Result: res}); err != nil {
		return err
	}
	for lines.Scan() && lines.Text() != "exit" {
	}
	p.closeAll()
	return nil
}

func newPart(cfg config) *part {
	p := &part{
		cfg: cfg,
		lo:  cfg.Clients * cfg.Part / cfg.Parts,
		hi:  cfg.Clients * (cfg.Part + 1) / cfg.Parts,
	}
	p.senderWait = make([]atomic.Int64, cfg.Senders)
	p.senderRecv = make([]int32, cfg.Senders)
	if cfg.Window > 0 {
		p.acks = make([][]atomic.Int32, cfg.Senders)
		for s := range p.acks {
			p.acks[s] = make([]atomic.Int32, cfg.Messages)
		}
	}
	for range cfg.Senders {
		p.senderWake = append(p.senderWake, make(chan struct{}, 1))
	}
	n := max(cfg.Src, 1)
	for i := 0; i < n; i++ {
		d := &websocket.Dialer{
			HandshakeTimeout: 30 * time.Second,
			ReadBufferSize:   4096,
			WriteBufferSize:  1024,
		}
		if cfg.Src > 0 {
			local := &net.TCPAddr{IP: srcIP(i)}
			nd := &net.Dialer{LocalAddr: local, Timeout: 30 * time.Second}
			d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				return nd.DialContext(ctx, network, addr)
			}
		}
		p.dialers = append(p.dialers, d)
	}
	return p
}

// dialer spreads connections over the source addresses.
func (p *part) dialer(k int) *websocket.Dialer {
	return p.dialers[k%len(p.dialers)]
}

// roomURL is the URL client k of the layout (or churn client k) dials to
// join room as id: on the (k mod count)th server with several.
func (p *part) roomURL(k, room int, id string) string {
	prefix := p.cfg.URL
	if n := len(p.cfg.URLs); n > 0 {
		prefix = p.cfg.URLs[k%n]
	}
	return prefix + "r" + fmt.Sprint(room) + "?_pk=" + url.QueryEscape(id)
}

// countBelow is how many k in [0, n) have k % rooms == r.
func countBelow(n, rooms, r int) int {
	c := n / rooms
	if r < n%rooms {
		c++
	}
	return c
}

func (p *part) connectAll() {
	cfg := p.cfg
	p.clients = make([]*client, p.hi-p.lo)
	sem := make(chan struct{}, max(cfg.DialConcurrency, 1))
	var wg sync.WaitGroup
	from := p.lo
	if len(cfg.URLs) > 0 && p.lo < cfg.Rooms {
		// Several servers sharing rooms: each room's first client (client
		// r of room r) connects before the others, so that the room is
		// placed on the server it dials.
		for i := p.lo; i < min(p.hi, cfg.Rooms); i++ {
			wg.Add(1)
			sem <- struct{}{}
			go p.connect(i, sem, &wg)
		}
		wg.Wait()
		from = min(p.hi, cfg.Rooms)
	}
	for i := from; i < p.hi; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go p.connect(i, sem, &wg)
	}
	wg.Wait()
	for _, c := range p.clients {
		if c == nil {
			continue
		}
		for sd := c.idx % cfg.Rooms; sd < cfg.Senders; sd += cfg.Rooms {
			if sd != c.idx {
				p.senderRecv[sd]++
			}
		}
	}
}

// connect dials client i of the layout and waits for its welcome; then it
// releases its place in sem and is done with wg.
func (p *part) connect(i int, sem chan struct{}, wg *sync.WaitGroup) {
	cfg := p.cfg
	defer func() { <-sem; wg.Done() }()
	room := i % cfg.Rooms
	c := &client{
		idx:      i,
		seen:     make(map[int][]uint64),
		welcomed: make(chan struct{}),
	}
	senders := int64(countBelow(cfg.Senders, cfg.Rooms, room))
	if i < cfg.Senders {
		senders--
	}
	c.expected = senders * int64(cfg.Messages)
	c.churnExp = 2 * int64(countBelow(cfg.Churn, cfg.Rooms, room))
	conn, resp, err := p.dialer(i).Dial(p.roomURL(i, room, fmt.Sprintf("c%d", i)), nil)
	if err != nil {
		p.errorf("dial c%d: %v%s", i, err, status(resp))
		return
	}
	c.conn = conn
	// Count this client's expectations before its reader can
	// subtract deliveries from them.
	p.remaining.Add(c.expected)
	p.churnRemaining.Add(c.churnExp)
	go p.read(c)
	select {
	case <-c.welcomed:
	case <-time.After(30 * time.Second):
		p.errorf("c%d: no welcome within 30s", i)
	}
	if c.ok.Load() {
		p.clients[i-p.lo] = c
	} else {
		conn.Close()
	}
}

// ack counts one more local receiver of message q of sender s and wakes s if
// it waits for that message.
func (p *part) ack(s, q int) {
	if p.acks == nil {
		return
	}
	if p.acks[s][q].Add(1) == p.senderRecv[s] && p.senderWait[s].Load() == int64(q) {
		select {
		case p.senderWake[s] <- struct{}{}:
		default:
		}
	}
}

func status(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	return fmt.Sprintf(" (HTTP %d)", resp.StatusCode)
}

func (p *part) closeAll() {
	p.closing.Store(true)
	for _, c := range p.clients {
		if c != nil {
			c.conn.Close()
		}
	}
}

var (
	prefixWelcome = []byte("Welcome, ")
	prefixJoin    = []byte("Heads up! ")
	prefixLeave   = []byte("So sad! ")
)

// read is the client's reader goroutine.
func (p *part) read(c *client) {
	buf := make([]byte, 0, 256)
	for {
		_, r, err := c.conn.NextReader()
		if err == nil {
			buf, err = readAll(buf[:0], r)
		}
		if err != nil {
			if !c.ok.Load() {
				p.errorf("c%d: before welcome: %v", c.idx, err)
				close(c.welcomed)
			} else if !p.closing.Load() {
				if p.dropped.Add(1) <= 3 {
					p.errorf("c%d dropped by server: %v", c.idx, err)
				}
			}
			// Nothing more will arrive: stop waiting for it.
			p.remaining.Add(-(c.expected - c.got))
			if c.ok.Load() {
				// Ack what it will never get, so no sender waits for it.
				for sd := c.idx % p.cfg.Rooms; sd < p.cfg.Senders; sd += p.cfg.Rooms {
					if sd == c.idx {
						continue
					}
					set := c.seen[sd]
					for q := range p.cfg.Messages {
						if set == nil || set[q/64]&(1<<(q%64)) == 0 {
							p.ack(sd, q)
						}
					}
				}
			}
			p.churnRemaining.Add(-(c.churnExp - c.churnGot))
			return
		}
		p.handle(c, buf)
	}
}

func readAll(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func (p *part) handle(c *client, b []byte) {
	if len(b) >= headerLen && b[0] == '#' {
		now := time.Now().UnixNano()
		sender, seq, sentAt, ok := parseHeader(b)
		if !ok {
			p.other.Add(1)
			return
		}
		p.hist.record(time.Duration(now - sentAt))
		for {
			last := p.lastRecv.Load()
			if now <= last || p.lastRecv.CompareAndSwap(last, now) {
				break
			}
		}
		if sender == c.idx || sender%p.cfg.Rooms != c.idx%p.cfg.Rooms || seq >= p.cfg.Messages {
			p.unexpected.Add(1)
			return
		}
		set := c.seen[sender]
		if set == nil {
			set = make([]uint64, (p.cfg.Messages+63)/64)
			c.seen[sender] = set
		}
		if set[seq/64]&(1<<(seq%64)) != 0 {
			p.dups.Add(1)
			return
		}
		set[seq/64] |= 1 << (seq % 64)
		c.got++
		p.delivered.Add(1)
		p.remaining.Add(-1)
		p.ack(sender, seq)
		return
	}
	switch {
	case bytes.HasPrefix(b, prefixWelcome):
		p.welcomes.Add(1)
		if !c.ok.Load() {
			c.ok.Store(true)
			close(c.welcomed)
		}
	case bytes.HasPrefix(b, prefixJoin):
		p.joins.Add(1)
		if bytes.HasPrefix(b[len(prefixJoin):], []byte("x")) {
			p.churnJoins.Add(1)
			c.churnGot++
			p.churnRemaining.Add(-1)
		}
	case bytes.HasPrefix(b, prefixLeave):
		p.leaves.Add(1)
		if bytes.HasPrefix(b[len(prefixLeave):], []byte("x")) {
			p.churnLeaves.Add(1)
			c.churnGot++
			p.churnRemaining.Add(-1)
		}
	default:
		p.other.Add(1)
	}
}

// The bench message header: '#', sender and sequence as 8 hex digits each,
// send time in unix nanoseconds as 16 hex digits; padding follows.
const headerLen = 1 + 8 + 8 + 16

const hexDigits = "0123456789abcdef"

func putHex(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = hexDigits[v&15]
		v >>= 4
	}
}

func getHex(b []byte) (uint64, bool) {
	var v uint64
	for _, ch := range b {
		switch {
		case '0' <= ch && ch <= '9':
			v = v<<4 | uint64(ch-'0')
		case 'a' <= ch && ch <= 'f':
			v = v<<4 | uint64(ch-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

func putHeader(b []byte, sender, seq int, sentAt int64) {
	b[0] = '#'
	putHex(b[1:9], uint64(sender))
	putHex(b[9:17], uint64(seq))
	putHex(b[17:33], uint64(sentAt))
}

func parseHeader(b []byte) (sender, seq int, sentAt int64, ok bool) {
	s, ok1 := getHex(b[1:9])
	q, ok2 := getHex(b[9:17])
	t, ok3 := getHex(b[17:33])
	return int(s), int(q), int64(t), ok1 && ok2 && ok3
}

// run is the measured phase: local senders send, churn workers churn, and
// the part waits for every expected delivery or for cfg.Drain of silence.
func (p *part) run() *resultMsg {
	cfg := p.cfg
	start := time.Now()
	cpu0 := selfCPUSeconds()
	var wg sync.WaitGroup
	for i := p.lo; i < min(p.hi, cfg.Senders); i++ {
		c := p.clients[i-p.lo]
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.send(c, start)
		}()
	}
	churnLo := cfg.Churn * cfg.Part / cfg.Parts
	churnHi := cfg.Churn * (cfg.Part + 1) / cfg.Parts
	var churnStart, churnEnd int64
	if churnHi > churnLo {
		churnStart = time.Now().UnixNano()
		var next atomic.Int64
		next.Store(int64(churnLo))
		workers := max(cfg.ChurnWorkers/cfg.Parts, 1)
		var cwg sync.WaitGroup
		for w := 0; w < workers; w++ {
			cwg.Add(1)
			go func() {
				defer cwg.Done()
				for {
					k := int(next.Add(1) - 1)
					if k >= churnHi {
						return
					}
					p.churnOnce(k)
				}
			}()
		}
		cwg.Wait()
		churnEnd = time.Now().UnixNano()
	}
	wg.Wait()

	// The senders of other parts may still be sending: the schedule says
	// how long at least, silence for cfg.Drain says when to give up.
	var planned time.Duration
	if cfg.Rate > 0 && cfg.Senders > 0 {
		planned = time.Duration(float64(cfg.Messages) / (cfg.Rate / float64(cfg.Senders)) * float64(time.Second))
	}
	for p.remaining.Load() > 0 || p.churnRemaining.Load() > 0 {
		last := max(p.lastRecv.Load(), p.lastSend.Load(), start.Add(planned).UnixNano(), churnEnd)
		if time.Since(time.Unix(0, last)) > cfg.Drain {
			p.errorf("part %d: gave up waiting after %v of silence: %d deliveries and %d churn notices missing",
				cfg.Part, cfg.Drain, p.remaining.Load(), p.churnRemaining.Load())
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	res := &resultMsg{
		Sent:        p.sent.Load(),
		FirstSend:   p.firstSend.Load(),
		LastSend:    p.lastSend.Load(),
		LastRecv:    p.lastRecv.Load(),
		Delivered:   p.delivered.Load(),
		Dups:        p.dups.Load(),
		Unexpected:  p.unexpected.Load(),
		Dropped:     p.dropped.Load(),
		Welcomes:    p.welcomes.Load(),
		Joins:       p.joins.Load(),
		Leaves:      p.leaves.Load(),
		Other:       p.other.Load(),
		Hist:        p.hist.sparse(),
		HistMax:     p.hist.max.Load(),
		ChurnDone:   p.churnDone.Load(),
		ChurnFailed: p.churnFailed.Load(),
		ChurnStart:  churnStart,
		ChurnEnd:    churnEnd,
		ChurnJoins:  p.churnJoins.Load(),
		ChurnLeaves: p.churnLeaves.Load(),
		ChurnHist:   p.churnHist.sparse(),
		ChurnMax:    p.churnHist.max.Load(),
		CloseHist:   p.closeHist.sparse(),
		CloseMax:    p.closeHist.max.Load(),
		CPUSeconds:  selfCPUSeconds() - cpu0,
	}
	// Expectations count every client of the layout in this part, connected
	// or not: one that never connected lost everything meant for it.
	for i := p.lo; i < p.hi; i++ {
		room := i % cfg.Rooms
		s := int64(countBelow(cfg.Senders, cfg.Rooms, room))
		if i < cfg.Senders {
			s--
		}
		res.Expected += s * int64(cfg.Messages)
		res.ChurnExp += 2 * int64(countBelow(cfg.Churn, cfg.Rooms, room))
	}
	res.Errors = p.takeErrors()
	return res
}

// send is one sender's loop: cfg.Messages messages, back to back or on the
// sender's share of cfg.Rate, each stamped with its send time.
func (p *part) send(c *client, start time.Time) {
	cfg := p.cfg
	msg := make([]byte, max(cfg.Size, headerLen))
	for i := headerLen; i < len(msg); i++ {
		msg[i] = 'x'
	}
	var interval time.Duration
	var first time.Time
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Senders) / cfg.Rate)
		// Stagger the senders evenly over one interval.
		first = start.Add(interval * time.Duration(c.idx) / time.Duration(cfg.Senders))
	}
	recv := p.senderRecv[c.idx]
	for seq := 0; seq < cfg.Messages; seq++ {
		if w := cfg.Window; w > 0 && seq >= w && recv > 0 {
			// At most w messages of this sender not yet delivered to
			// every local receiver: wait for message seq-w.
			q := seq - w
			p.senderWait[c.idx].Store(int64(q))
			for p.acks[c.idx][q].Load() < recv {
				select {
				case <-p.senderWake[c.idx]:
				case <-time.After(cfg.Drain):
					p.errorf("c%d: window stalled for %v at seq %d", c.idx, cfg.Drain, seq)
					return
				}
			}
		}
		if interval > 0 {
			if d := time.Until(first.Add(interval * time.Duration(seq))); d > 0 {
				time.Sleep(d)
			}
		}
		now := time.Now().UnixNano()
		putHeader(msg, c.idx, seq, now)
		if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			p.errorf("c%d send: %v", c.idx, err)
			return
		}
		p.sent.Add(1)
		p.firstSend.CompareAndSwap(0, now)
		for {
			f := p.firstSend.Load()
			if now >= f || p.firstSend.CompareAndSwap(f, now) {
				break
			}
		}
		for {
			l := p.lastSend.Load()
			if now <= l || p.lastSend.CompareAndSwap(l, now) {
				break
			}
		}
	}
}

// churnOnce connects churn client k, waits for its welcome, and closes it
// with a close handshake.
func (p *part) churnOnce(k int) {
	t := time.Now()
	room := k % p.cfg.Rooms
	// Churn clients use the source addresses in the other direction from
	// the residents, spreading the TIME_WAIT sockets.
	d := p.dialers[len(p.dialers)-1-k%len(p.dialers)]
	conn, resp, err := d.Dial(p.roomURL(k, room, fmt.Sprintf("x%d", k)), nil)
	if err != nil {
		if p.churnFailed.Add(1) <= 3 {
			p.errorf("churn x%d dial: %v%s", k, err, status(resp))
		}
		return
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 0, 128)
	for {
		_, r, err := conn.NextReader()
		if err == nil {
			buf, err = readAll(buf[:0], r)
		}
		if err != nil {
			if p.churnFailed.Add(1) <= 3 {
				p.errorf("churn x%d: no welcome: %v", k, err)
			}
			return
		}
		if bytes.HasPrefix(buf, prefixWelcome) {
			break
		}
	}
	p.churnHist.record(time.Since(t))
	closeStart := time.Now()
	deadline := closeStart.Add(5 * time.Second)
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
	conn.SetReadDeadline(deadline)
	for {
		// Returns the server's close frame as an error, or a timeout.
		if _, _, err := conn.NextReader(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				if p.churnFailed.Add(1) <= 3 {
					p.errorf("churn x%d close: %v", k, err)
				}
				return
			}
			break
		}
	}
	p.closeHist.record(time.Since(closeStart))
	p.churnDone.Add(1)
}
