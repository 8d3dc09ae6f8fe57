package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"party"
	"party/metrics"
)

// server greets each connection with "hi" and broadcasts each message to
// its whole room, sender included, except "panic" (it panics) and "flood"
// (32 MiB to the sender, more than loopback sockets buffer, and one message
// more, which overflows the queue of a client that does not read).
type server struct{ room *party.Room }

func (s *server) OnConnect(c *party.Connection, r *http.Request) { c.Send(party.Text("hi")) }

func (s *server) OnMessage(m party.Message, c *party.Connection) {
	switch m.String() {
	case "panic":
		panic("on purpose")
	case "flood":
		c.Send(party.Binary(make([]byte, 32<<20)))
		c.Send(party.Text("overflow"))
	default:
		s.room.Broadcast(m)
	}
}

func (s *server) OnClose(*party.Connection) {}

// The Prometheus scrape of a live server after a known workload: every
// series has its exact value, and the names pass promlint.
func TestScrapeAfterAKnownWorkload(t *testing.T) {
	const n = 3 // messages per client, 5 bytes each
	h := party.Handler(func(r *party.Room) party.Server { return &server{room: r} })
	h.Party("other", func(r *party.Room) party.Server { return &server{room: r} })
	h.ReadLimit = 1024
	h.IdleTimeout = time.Minute
	h.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	collector := metrics.NewCollector(h)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector)
	mux := http.NewServeMux()
	mux.Handle("/parties/", h)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	ws := "ws" + strings.TrimPrefix(srv.URL, "http") + "/parties/"

	a, b, c, d := dial(t, ws+"main/r1?_pk=a"), dial(t, ws+"main/r1?_pk=b"), dial(t, ws+"main/r2?_pk=c"), dial(t, ws+"other/r1?_pk=d")
	for i := range n {
		msg := fmt.Sprintf("msg-%d", i)
		a.send(msg)
		a.expect(msg)
		b.expect(msg)
		c.send(msg)
		c.expect(msg)
		d.send(msg)
		d.expect(msg)
	}
	a.send("panic")
	b.write(websocket.MessageBinary, make([]byte, 2048))
	b.closedWith(websocket.StatusMessageTooBig)
	c.write(websocket.MessageText, []byte{0xff})
	c.closedWith(websocket.StatusInvalidFramePayloadData)
	refusedWith(t, ws+"main/r1", http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden)
	refusedWith(t, ws+"nope/r1", nil, http.StatusNotFound)
	d.send("flood") // and d reads no more
	for start := time.Now(); h.Stats().Parties["other"].SendsRefused == 0; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the client that stopped reading was not dropped")
		}
	}
	d.conn.CloseNow()
	a.conn.Close(websocket.StatusNormalClosure, "")

	closed := func(p string, reasons map[string]float64) map[string]float64 {
		m := map[string]float64{}
		for r := party.ClosedByClient; r <= party.ClosedInternalError; r++ {
			m[series("party_connections_closed_total", "party", p, "reason", r.String())] = reasons[r.String()]
		}
		return m
	}
	want := map[string]float64{
		series("party_rooms", "party", "main"):                                        2,
		series("party_connections", "party", "main"):                                  0,
		series("party_connections_opened_total", "party", "main"):                     3,
		series("party_messages_received_total", "party", "main"):                      2*n + 2, // a's, c's, "panic", 0xff
		series("party_received_bytes_total", "party", "main"):                         2*n*5 + 5 + 1,
		series("party_messages_sent_total", "party", "main"):                          3 + 3*n, // welcomes; a's to 2, c's to 1
		series("party_sent_bytes_total", "party", "main"):                             3*2 + 3*n*5,
		series("party_sends_refused_total", "party", "main"):                          0,
		series("party_upgrades_refused_total", "party", "main", "status", "403"):      1,
		series("party_handler_panics_total", "handler", "OnMessage", "party", "main"): 1,

		series("party_rooms", "party", "other"):                    1,
		series("party_connections", "party", "other"):              0,
		series("party_connections_opened_total", "party", "other"): 1,
		series("party_messages_received_total", "party", "other"):  n + 1, // d's, "flood"
		series("party_received_bytes_total", "party", "other"):     n*5 + 5,
		series("party_messages_sent_total", "party", "other"):      1 + n, // neither the 32 MiB nor "overflow"
		series("party_sent_bytes_total", "party", "other"):         2 + n*5,
		series("party_sends_refused_total", "party", "other"):      1,

		series("party_upgrades_refused_total", "party", "", "status", "404"): 1,
	}
	for k, v := range closed("main", map[string]float64{"client": 1, "too_big": 1, "invalid_utf8": 1}) {
		want[k] = v
	}
	for k, v := range closed("other", map[string]float64{"slow": 1}) {
		want[k] = v
	}
	calls := map[string]float64{
		series("party_handler_duration_seconds_count", "handler", "OnConnect", "party", "main"):  3,
		series("party_handler_duration_seconds_count", "handler", "OnMessage", "party", "main"):  2*n + 1,
		series("party_handler_duration_seconds_count", "handler", "OnClose", "party", "main"):    3,
		series("party_handler_duration_seconds_count", "handler", "OnConnect", "party", "other"): 1,
		series("party_handler_duration_seconds_count", "handler", "OnMessage", "party", "other"): n + 1,
		series("party_handler_duration_seconds_count", "handler", "OnClose", "party", "other"):   1,
	}

	var problems []string
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		problems = check(scrape(t, srv.URL+"/metrics"), want, calls)
		if len(problems) == 0 || time.Since(start) > 5*time.Second {
			break
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
	if lint, err := testutil.CollectAndLint(collector); err != nil || len(lint) > 0 {
		t.Errorf("promlint: %v %+v", err, lint)
	}
}

// scraped is one scrape: each sample's value by series ("name{labels}"),
// and each family's type.
type scraped struct {
	values map[string]float64
	types  map[string]string
}

// scrape GETs url and parses the text exposition format.
func scrape(t *testing.T, url string) scraped {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	s := scraped{values: map[string]float64{}, types: map[string]string{}}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			s.types[name] = typ
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("unparsable sample %q", line)
		}
		s.values[line[:i]] = v
	}
	return s
}

// check compares a scrape with want (every party_ series other than the
// histogram's, zeros included) and calls (each histogram's count), and
// returns what differs.
func check(s scraped, want, calls map[string]float64) []string {
	var problems []string
	for name, typ := range map[string]string{
		"party_rooms": "gauge", "party_connections": "gauge", "party_connections_closed_total": "counter",
		"party_sent_bytes_total": "counter", "party_handler_duration_seconds": "histogram",
	} {
		if s.types[name] != typ {
			problems = append(problems, fmt.Sprintf("%s has type %q, want %s", name, s.types[name], typ))
		}
	}
	seen := map[string]bool{}
	for key, got := range s.values {
		name, labels, _ := strings.Cut(key, "{")
		for _, pair := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
			if l, _, _ := strings.Cut(pair, "="); !strings.Contains(" party reason status handler le ", " "+l+" ") {
				problems = append(problems, fmt.Sprintf("%s: unexpected label %s", key, l))
			}
		}
		switch {
		case !strings.HasPrefix(name, "party_"):
		case strings.HasPrefix(name, "party_handler_duration_seconds_"):
			problems = append(problems, checkHistogram(s, key, calls)...)
		case got != want[key]:
			problems = append(problems, fmt.Sprintf("%s is %v, want %v", key, got, want[key]))
		}
		seen[key] = true
	}
	for _, m := range []map[string]float64{want, calls} {
		for key := range m {
			if !seen[key] {
				problems = append(problems, fmt.Sprintf("%s is missing", key))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// checkHistogram checks one sample of a handler's histogram: its count is
// calls', its +Inf bucket is its count, its sum is above zero.
func checkHistogram(s scraped, key string, calls map[string]float64) []string {
	name, labels, _ := strings.Cut(key, "{")
	countKey := "party_handler_duration_seconds_count{" + labels
	switch {
	case strings.HasSuffix(name, "_count") && s.values[key] != calls[key]:
		return []string{fmt.Sprintf("%s is %v, want %v", key, s.values[key], calls[key])}
	case strings.HasSuffix(name, "_sum") && s.values[key] <= 0:
		return []string{fmt.Sprintf("%s is %v, want more than 0", key, s.values[key])}
	case strings.HasSuffix(name, "_bucket") && strings.Contains(labels, `le="+Inf"`):
		countKey = strings.NewReplacer(`,le="+Inf"`, "", `le="+Inf",`, "").Replace(countKey)
		if s.values[key] != s.values[countKey] {
			return []string{fmt.Sprintf("%s is %v, want its count, %v", key, s.values[key], s.values[countKey])}
		}
	}
	return nil
}

// series returns the exposition key of a series: name{label="value",...},
// labels given in their order in the exposition (by name).
func series(name string, labels ...string) string {
	var pairs []string
	for i := 0; i+1 < len(labels); i += 2 {
		pairs = append(pairs, labels[i]+"="+strconv.Quote(labels[i+1]))
	}
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// client is a WebSocket client whose every step must succeed within 5 s.
type client struct {
	t    *testing.T
	conn *websocket.Conn
}

// dial connects to url and reads the welcome.
func dial(t *testing.T, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &client{t: t, conn: conn}
	c.expect("hi")
	return c
}

func (c *client) write(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	if err := c.conn.Write(context.Background(), typ, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(s string) { c.t.Helper(); c.write(websocket.MessageText, []byte(s)) }

func (c *client) expect(want string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, b, err := c.conn.Read(ctx); err != nil || string(b) != want {
		c.t.Fatalf("read %q, %v; want %q", b, err, want)
	}
}

// closedWith reads until the server closes the connection with code.
func (c *client) closedWith(code websocket.StatusCode) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := c.conn.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code {
		c.t.Fatalf("read ended with %v, want a close frame with %v", err, code)
	}
}

// refusedWith dials url with header and expects the upgrade refused with
// status.
func refusedWith(t *testing.T, url string, header http.Header, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err == nil || resp == nil || resp.StatusCode != status {
		t.Fatalf("dial %s: %v (response %v), want a %d", url, err, resp, status)
	}
}
