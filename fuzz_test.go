package party_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/rs/xid"

	"party"
)

// Fuzz targets, one per input surface a client controls: the request path
// (party and room), the query (the connection id), and the frames of an open
// connection. Each checks the outcome against the documented rules, not only
// the absence of a panic. The seeds run with every `go test`; .ci/fuzz.sh
// runs each target for a bounded time.

// idRule is the documented rule for a room or connection id as sent
// (percent-encoded): it returns the rule raw breaks, or "" if it breaks none.
// It is written from the documentation, not from checkID: it decodes by
// hand and looks at bytes, where checkID calls net/url and looks at runes.
func idRule(raw string) string {
	if raw == "" {
		return "no bytes"
	}
	if len(raw) > 256 {
		return "over 256 bytes"
	}
	unhex := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'a' <= c && c <= 'f':
			return c - 'a' + 10, true
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	var dec []byte
	for i := 0; i < len(raw); i++ {
		if raw[i] != '%' {
			dec = append(dec, raw[i])
			continue
		}
		if i+2 >= len(raw) {
			return "bad percent-encoding"
		}
		hi, ok1 := unhex(raw[i+1])
		lo, ok2 := unhex(raw[i+2])
		if !ok1 || !ok2 {
			return "bad percent-encoding"
		}
		dec = append(dec, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(dec) {
		return "invalid UTF-8 once decoded"
	}
	start := 0
	for i := 0; i <= len(dec); i++ {
		if i == len(dec) || dec[i] == '/' || dec[i] == '\\' {
			if seg := string(dec[start:i]); seg == "." || seg == ".." {
				return "a dot segment once decoded"
			}
			start = i + 1
		}
	}
	for _, c := range dec { // UTF-8 by now: a byte below 0x80 is a character
		if c < 0x20 || c == 0x7f {
			return "a control character"
		}
	}
	return ""
}

// mount is how FuzzRoomPath's mux reaches a Host: the Host's prefix, and
// for a Go 1.22 pattern the positions of its {party} and {room} wildcards
// (-1 for none).
type mount struct {
	host            *party.Host
	prefix          string
	partyAt, roomAt int
}

// route is the documented routing of a request that reached m's Host,
// modelled from ServeHTTP's doc, apart from the Host: the party and the room
// id (as sent: a segment of the escaped path), or the status of the refusal
// and why. A request with two faults (an unknown party and an invalid room)
// may be refused for either; route names both.
func (m mount) route(r *http.Request) (partyName, room string, status int, why string) {
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	known := func(p string) bool { return p == "main" || p == "other" }
	judge := func(p, id string) (string, string, int, string) {
		switch rule := idRule(id); {
		case !known(p) && rule != "":
			return p, id, http.StatusNotFound, "unknown party " + p + " and a room id with " + rule
		case !known(p):
			return p, id, http.StatusNotFound, "unknown party " + p
		case rule != "":
			return p, id, http.StatusBadRequest, "a room id with " + rule
		}
		return p, id, http.StatusOK, ""
	}
	if m.roomAt >= 0 { // the segment the {room} wildcard matched
		p := "main"
		if m.partyAt >= 0 {
			p = r.PathValue("party")
		}
		return judge(p, segs[m.roomAt])
	}
	// /party/{room} or /{prefix}/{party}/{room}, whichever comes first.
	prefix := strings.Split(m.prefix, "/")
	for i := range segs {
		if segs[i] == "party" && i+1 < len(segs) {
			return judge("main", segs[i+1])
		}
		if i+len(prefix)+1 < len(segs) && slices.Equal(segs[i:i+len(prefix)], prefix) {
			return judge(segs[i+len(prefix)], segs[i+len(prefix)+1])
		}
	}
	return "", "", http.StatusNotFound, "no room in the path"
}

// FuzzRoomPath sends arbitrary request targets through a mux holding the Host
// under every supported URL form, and checks the outcome against route, an
// independent model of the documented rules, both ways: a request for a
// valid room in a known party reaches exactly that room (and the canonical
// URL /parties/{party}/{room} reaches it too), one for an invalid room id is
// refused with 400, and nothing is refused that the model lets through. No
// room outlives its request.
func FuzzRoomPath(f *testing.F) {
	for _, s := range []string{
		"/party/r1", "/parties/main/r1", "/parties/other/r1/extra?x=1", "/party/r1/a/b?_pk=z",
		"/party/my%20room", "/party/caf%C3%A9", "/party/a%2Fb", "/party/%2E%2E", "/party/..%2F..%2Fetc",
		"/party/a%00b", "/party/%FF", "/party/", "/parties/main", "/parties/nope/r", "/party//x",
		"/rooms/lobby", "/rooms/a%20b", "/rooms/%2e", "/p/other/r9/x/y", "/p/main/%C3%A9/z",
		"/api/rt/main/r", "/api/rt/other/x%2F..", "/x/y/party/deep", "/party/" + strings.Repeat("b", 256),
		"/party/" + strings.Repeat("b", 257), "/party/%", "/party/%zz", "/party/../x", "/party/./x",
		"*", "http://example.test/party/abs", "/party/x#frag", "/party/\xff\xfe", "/party/%7F",
		"/party/%2", "/party/a%5C..", "/party/..%5Cx", "/party/%E2%80%8B", "/party/%C0%AF", "/p/nope/r/x",
		"/p/nope/%00/x", "/parties/nope/%00", "/api/party/r", "/parties/x/party/r", "/party/%c3%a9",
	} {
		f.Add(s)
	}
	newServer := func(r *party.Room) party.Server { return &whoami{room: r} }
	h := party.Handler(newServer)
	h.Party("other", newServer)
	h.IdleTimeout = -1
	h2 := party.Handler(newServer)
	h2.Party("other", newServer)
	h2.Prefix = "api/rt"
	h2.IdleTimeout = -1
	hosts := []*party.Host{h, h2}

	// Each mount records that it was reached, and how.
	var reached *mount
	mux := http.NewServeMux()
	for pattern, m := range map[string]mount{
		"/party/":                         {h, "parties", -1, -1},
		"/parties/":                       {h, "parties", -1, -1},
		"/rooms/{room}":                   {h, "parties", -1, 1},
		"GET /p/{party}/{room}/{rest...}": {h, "parties", 1, 2},
		"/api/":                           {h2, "api/rt", -1, -1},
	} {
		mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached = &m
			m.host.ServeHTTP(w, r)
		}))
	}

	do := func(target string) (*httptest.ResponseRecorder, *http.Request, *mount, bool) {
		if strings.ContainsAny(target, "\r\n") {
			return nil, nil, nil, false
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: example.test\r\n\r\n")))
		if err != nil {
			return nil, nil, nil, false // net/http's server answers 400 before any handler
		}
		rec := httptest.NewRecorder()
		reached = nil
		mux.ServeHTTP(rec, req)
		return rec, req, reached, true
	}
	f.Fuzz(func(t *testing.T, target string) {
		rec, req, m, ok := do(target)
		if !ok {
			return
		}
		body := rec.Body.String()
		if m == nil { // the mux answered: no room is involved
			switch {
			case rec.Code == http.StatusNotFound && body == "404 page not found\n":
			case rec.Code == http.StatusBadRequest && body == "" && !strings.HasPrefix(req.URL.Path, "/"):
			case rec.Code == http.StatusMovedPermanently, rec.Code == http.StatusTemporaryRedirect, rec.Code == http.StatusPermanentRedirect:
			default:
				t.Fatalf("%q reached no Host but got %d %q", target, rec.Code, body)
			}
			return
		}
		partyName, room, status, why := m.route(req)
		switch {
		case status == http.StatusOK:
			if rec.Code != http.StatusOK || body != partyName+" "+room {
				t.Fatalf("%q: got %d %q, want room %q of party %q (the id breaks no rule)", target, rec.Code, body, room, partyName)
			}
		case status == http.StatusBadRequest:
			if rec.Code != http.StatusBadRequest || !strings.HasPrefix(body, "party: invalid room id") {
				t.Fatalf("%q: got %d %q, want 400 for %s", target, rec.Code, body, why)
			}
		case strings.Contains(why, " and "): // two faults: either refusal
			if rec.Code != http.StatusNotFound && !(rec.Code == http.StatusBadRequest && strings.HasPrefix(body, "party: invalid room id")) {
				t.Fatalf("%q: got %d %q, want 404 or 400 for an %s", target, rec.Code, body, why)
			}
		default:
			if rec.Code != http.StatusNotFound || !strings.HasPrefix(body, "party: ") {
				t.Fatalf("%q: got %d %q, want 404 for %s", target, rec.Code, body, why)
			}
		}
		if rec.Code != http.StatusOK {
			return
		}
		for _, host := range hosts {
			if host.Room(partyName, room) != nil {
				t.Fatalf("room %q is still in memory after its request", room)
			}
		}
		canonical := "/parties/" + partyName + "/" + room
		if m.host == h2 {
			canonical = "/api/rt/" + partyName + "/" + room
		}
		if rec2, _, _, ok := do(canonical); !ok || rec2.Code != 200 || rec2.Body.String() != body {
			t.Fatalf("%q reached %q, but its canonical URL %q does not", target, body, canonical)
		}
	})
}

// FuzzConnectionID opens a real WebSocket with an arbitrary query string.
// The connection's id is the first _pk value when there is a non-empty one
// (refused with 400 if it breaks the id rules), and a fresh xid otherwise.
func FuzzConnectionID(f *testing.F) {
	for _, s := range []string{
		"", "_pk=abc", "_pk=first&_pk=second", "x=1&_pk=id", "_pk=", "_pk=&_pk=second", "_pk",
		"_pk=a%20b", "_pk=caf%C3%A9", "_pk=%FF", "_pk=a%00", "_pk=..", "_pk=..%2F..", "_pk=a/b",
		"_pk=" + strings.Repeat("p", 256), "_pk=" + strings.Repeat("%C3%A9", 50), "_pk=%", "_pk=a;b",
		"_pk=a+b", "%5Fpk=encoded-key", "_pk=%2e", "_pk=\\..\\x", "_PK=upper", "&&_pk=x&&",
	} {
		f.Add(s)
	}
	var closes sync.Map
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{
			connect: func(c *party.Connection, _ *http.Request) { c.Send(party.Text(c.ID())) },
			close:   func(c *party.Connection) { closes.Store(c.ID(), true) },
		}
	})
	h.IdleTimeout = -1
	h.PingInterval = -1
	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	srv := httptest.NewServer(mux)
	f.Cleanup(func() { h.Shutdown(context.Background()); srv.Close() })
	addr := srv.Listener.Addr().String()

	f.Fuzz(func(t *testing.T, query string) {
		target := "/party/ids?" + query
		if strings.ContainsAny(query, "\r\n") {
			return
		}
		if _, err := http.ReadRequest(bufio.NewReader(strings.NewReader(upgradeRequest(target)))); err != nil {
			return // refused by net/http before the Host
		}
		q, _ := url.ParseQuery(query) // the standard reading of a query string
		want, refuse := "", false
		if pk := q["_pk"]; len(pk) > 0 && pk[0] != "" {
			want, refuse = pk[0], idRule(url.PathEscape(pk[0])) != ""
		}
		c, err := rawDial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.reset()
		resp, body, err := c.roundTrip(upgradeRequest(target))
		if err != nil {
			t.Fatalf("%q: %v", query, err)
		}
		if refuse {
			if resp.StatusCode != 400 || !strings.Contains(body, "connection id (_pk)") {
				t.Fatalf("_pk %q: got %d %q, want 400", want, resp.StatusCode, body)
			}
			return
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("%q: got %d %q, want 101", query, resp.StatusCode, body)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, op, id, err := c.readFrame()
		if err != nil || op != opText {
			t.Fatalf("%q: reading the id: %v (opcode %d)", query, err, op)
		}
		if want == "" {
			if _, err := xid.FromString(string(id)); err != nil {
				t.Fatalf("%q: id %q is not an xid", query, id)
			}
		} else if string(id) != want {
			t.Fatalf("%q: id %q, want %q", query, id, want)
		}
		if err := c.closeNormally(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, ok := closes.LoadAndDelete(string(id)); !ok; _, ok = closes.LoadAndDelete(string(id)) {
			if time.Now().After(deadline) {
				t.Fatalf("%q: OnClose never ran for %q", query, id)
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// ---- frames ------------------------------------------------------------------

// fuzzReadLimit is the Host.ReadLimit of FuzzFrames: small, so that random
// programs reach it.
const fuzzReadLimit = 8192

// frame is one client frame of a FuzzFrames program.
type frame struct {
	b0         byte // FIN, RSV1-3, opcode, as sent
	unmasked   bool
	payload    []byte
	longForm   bool // length in the 16-bit form although it fits in 7 bits
	negative   bool // 64-bit length with the top bit set
	truncated  bool // the header claims more payload than follows; ends the program
	claimedLen int
}

func (fr frame) fin() bool  { return fr.b0&0x80 != 0 }
func (fr frame) rsv() byte  { return fr.b0 & 0x70 }
func (fr frame) op() byte   { return fr.b0 & 0x0f }
func (fr frame) ctrl() bool { return fr.op() >= 8 }

// quirks is how fr departs from a well-formed frame, for appendFrame.
func (fr frame) quirks() frameQuirks {
	q := frameQuirks{rsv: fr.rsv(), unmasked: fr.unmasked, longForm: fr.longForm, negative: fr.negative}
	if fr.truncated {
		q.claimed = fr.claimedLen
	}
	return q
}

// decodeProgram turns fuzz input into frames: per frame a byte of FIN, RSV
// and opcode, a byte choosing masking and the length, then the payload,
// taken from the input and padded with 'a' when the length asks for more.
func decodeProgram(data []byte) []frame {
	var frames []frame
	total := 0
	for len(data) >= 2 && len(frames) < 40 && total < 256<<10 {
		fr := frame{b0: data[0], unmasked: data[1]&0x80 != 0}
		v := int(data[1] & 0x7f)
		data = data[2:]
		var n int
		switch {
		case v < 100:
			n = v
		case v == 100:
			n = 125
		case v == 101:
			n = 126
		case v == 102:
			n = 127
		case v == 103:
			n = 65535
		case v == 104:
			n = 65536
		case v == 105:
			n = fuzzReadLimit
		case v == 106:
			n = fuzzReadLimit + 1
		case v <= 110:
			n = fuzzReadLimit / 2
		case v <= 118:
			if len(data) >= 2 {
				n = int(binary.BigEndian.Uint16(data)) % (fuzzReadLimit + 64)
				data = data[2:]
			}
		case v == 119:
			fr.negative = true
		case v == 120:
			fr.truncated = true
			fr.claimedLen = len(data) + 10
			fr.payload = data
			frames = append(frames, fr)
			return frames
		default:
			n = v - 121
			fr.longForm = true
		}
		k := min(n, len(data))
		fr.payload = append(append([]byte(nil), data[:k]...), bytes.Repeat([]byte("a"), n-k)...)
		data = data[k:]
		total += n
		frames = append(frames, fr)
	}
	return frames
}

// How a program ends, in the model.
type ending int

const (
	endOpen      ending = iota // every frame handled: the connection is open
	endClose                   // the server sends a close frame with the model's code
	endDrop                    // the server drops the TCP connection without a close frame
	endTruncated               // the program stops inside a frame; the client then half-closes
)

// model is the expected behaviour of a program, from RFC 6455, the package's
// documentation (1007, 1009) and coder/websocket's choices where the RFC
// leaves one (an unmasked or negative-length frame drops the connection; a
// protocol error is reported to OnClose as 1006).
type model struct {
	frames    []frame         // the frames to send, up to and including the one that ends the connection
	messages  []party.Message // complete messages OnMessage must see, in order
	pongs     [][]byte
	end       ending
	closeCode int    // for endClose: the code of the server's close frame (1005: an empty one)
	echoClose []byte // for a client's valid close: the exact payload echoed
	onClose   string // what OnClose must see: "code reason"
	strict    bool   // every echo must arrive before the close
}

func simulate(frames []frame) model {
	var m model
	var inMsg bool
	var typ byte
	var buf []byte
	closeWith := func(code int, onClose string) {
		m.end, m.closeCode, m.onClose = endClose, code, onClose
	}
	for _, fr := range frames {
		m.frames = append(m.frames, fr)
		// The header, checked in coder/websocket's order.
		switch {
		case fr.negative:
			m.end, m.onClose = endDrop, "1006 "
			return m
		case fr.rsv() != 0:
			closeWith(1002, "1006 ")
			return m
		case fr.unmasked:
			m.end, m.onClose = endDrop, "1006 "
			return m
		case fr.op() == opClose || fr.op() == opPing || fr.op() == opPong:
			if n := len(fr.payload); n > 125 || fr.truncated && fr.claimedLen > 125 || !fr.fin() {
				closeWith(1002, "1006 ")
				return m
			}
		case fr.op() == opText || fr.op() == opBinary:
			if inMsg {
				closeWith(1002, "1006 ")
				return m
			}
		case fr.op() == opCont:
			if !inMsg {
				closeWith(1002, "1006 ")
				return m
			}
		default: // reserved opcodes
			closeWith(1002, "1006 ")
			return m
		}
		// The payload.
		if fr.ctrl() {
			if fr.truncated {
				m.end, m.onClose = endTruncated, "1006 "
				return m
			}
			switch fr.op() {
			case opPing:
				m.pongs = append(m.pongs, fr.payload)
			case opClose:
				switch p := fr.payload; {
				case len(p) == 0:
					closeWith(1005, "1005 ")
					m.echoClose = []byte{}
				case len(p) == 1 || !validWireCode(int(binary.BigEndian.Uint16(p))):
					closeWith(1002, "1006 ")
				default:
					code := int(binary.BigEndian.Uint16(p))
					closeWith(code, fmt.Sprint(code, " ", string(p[2:])))
					m.echoClose = p
				}
				return m
			}
			continue
		}
		if fr.op() != opCont {
			inMsg, typ, buf = true, fr.op(), nil
		}
		buf = append(buf, fr.payload...)
		if len(buf) > fuzzReadLimit {
			closeWith(1009, "1009 message too big")
			return m
		}
		if fr.truncated {
			m.end, m.onClose = endTruncated, "1006 "
			return m
		}
		if fr.fin() {
			inMsg = false
			if typ == opText && !utf8.Valid(buf) {
				closeWith(1007, "1007 invalid UTF-8 in text message")
				m.strict = true
				return m
			}
			if typ == opText {
				m.messages = append(m.messages, party.Text(string(buf)))
			} else {
				m.messages = append(m.messages, party.Binary(buf))
			}
		}
	}
	m.end, m.strict, m.onClose = endOpen, true, "1000 fuzz done"
	return m
}

// validWireCode reports whether a close frame may carry code (RFC 6455 7.4).
func validWireCode(code int) bool {
	switch code {
	case 1004, 1005, 1006, 1015:
		return false
	}
	return code >= 1000 && code <= 1014 || code >= 3000 && code <= 4999
}

// frameSink records, per connection, what the server saw.
type frameSink struct {
	mu     sync.Mutex
	msgs   map[string][]party.Message
	closes map[string][]string
}

// FuzzFrames writes arbitrary frames on a real connection after a real
// handshake: random sizes, opcodes, RSV bits, fragmentation, interleaved
// control frames, invalid UTF-8, close frames with odd codes, unmasked,
// truncated and non-minimally encoded frames. The server must never panic
// or hang; OnMessage sees exactly the complete valid messages, in order;
// the client gets its echoes and pongs and the close the model predicts;
// OnClose runs exactly once with the predicted status; and a bystander in
// the same room keeps chatting.
func FuzzFrames(f *testing.F) {
	for _, seed := range frameSeeds() {
		f.Add(seed)
	}
	sink := &frameSink{msgs: map[string][]party.Message{}, closes: map[string][]string{}}
	h := party.Handler(func(r *party.Room) party.Server {
		return &probe{
			message: func(m party.Message, c *party.Connection) {
				sink.mu.Lock()
				sink.msgs[c.ID()] = append(sink.msgs[c.ID()], m)
				sink.mu.Unlock()
				c.Send(m)
			},
			close: func(c *party.Connection) {
				code, reason := c.CloseStatus()
				sink.mu.Lock()
				sink.closes[c.ID()] = append(sink.closes[c.ID()], fmt.Sprint(code, " ", reason))
				sink.mu.Unlock()
			},
		}
	})
	h.ReadLimit = fuzzReadLimit
	h.PingInterval = -1 // the client answers nothing it is not asked
	h.Logger = (&logBuffer{}).logger()
	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	srv := httptest.NewServer(mux)
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	addr := srv.Listener.Addr().String()
	bystander, err := dialErr(ws+"/party/frames?_pk=bystander", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		bystander.CloseNow()
		h.Shutdown(context.Background())
		srv.Close()
	})
	var n atomic.Int64

	f.Fuzz(func(t *testing.T, data []byte) {
		m := simulate(decodeProgram(data))
		id := fmt.Sprint("f", n.Add(1))
		c, err := rawDial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.reset()
		if err := c.upgrade("/party/frames?_pk=" + id); err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))

		// Read everything the server sends, concurrently with writing.
		type serverFrame struct {
			op      byte
			payload []byte
		}
		got := make(chan serverFrame, 1024)
		readErr := make(chan error, 1)
		go func() {
			for {
				fin, op, p, err := c.readFrame()
				if err != nil {
					readErr <- err
					close(got)
					return
				}
				if !fin {
					readErr <- fmt.Errorf("fragmented server frame (opcode %d)", op)
					close(got)
					return
				}
				got <- serverFrame{op, p}
			}
		}()
		var program []byte
		for _, fr := range m.frames {
			program = appendFrame(program, fr.fin(), fr.op(), fr.payload, fr.quirks())
		}
		c.Write(program) // an error shows below, as a different outcome
		if m.end == endTruncated {
			c.Conn.(*net.TCPConn).CloseWrite()
		}

		var echoes []party.Message
		var pongs [][]byte
		var closeFrame []byte
		sawClose := false
		next := func() (serverFrame, bool) {
			fr, ok := <-got
			if ok && sawClose {
				t.Fatalf("program %x: frame (opcode %d) after the server's close frame", data, fr.op)
			}
			return fr, ok
		}
		handle := func(fr serverFrame) {
			switch fr.op {
			case opText:
				echoes = append(echoes, party.Text(string(fr.payload)))
			case opBinary:
				echoes = append(echoes, party.Binary(fr.payload))
			case opPong:
				pongs = append(pongs, fr.payload)
			case opClose:
				sawClose, closeFrame = true, fr.payload
				// Answer as a client does, so that the server's close handshake ends.
				c.writeFrame(true, opClose, fr.payload)
			default:
				t.Fatalf("program %x: server sent opcode %d", data, fr.op)
			}
		}
		if m.end == endOpen {
			for len(echoes) < len(m.messages) || len(pongs) < len(m.pongs) {
				fr, ok := next()
				if !ok {
					t.Fatalf("program %x: connection ended (%v) after %d of %d echoes and %d of %d pongs; model %+v",
						data, <-readErr, len(echoes), len(m.messages), len(pongs), len(m.pongs), m)
				}
				handle(fr)
			}
			c.writeFrame(true, opClose, closePayload(1000, "fuzz done"))
		}
		for {
			fr, ok := next()
			if !ok {
				break
			}
			handle(fr)
		}
		if err := <-readErr; err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatalf("program %x: the server did not end the connection: %v", data, err)
		}

		// What the client saw.
		if m.strict && len(echoes) != len(m.messages) || len(echoes) > len(m.messages) {
			t.Fatalf("program %x: %d echoes, want %d", data, len(echoes), len(m.messages))
		}
		for i, e := range echoes {
			if e.IsBinary() != m.messages[i].IsBinary() || !bytes.Equal(e.Bytes(), m.messages[i].Bytes()) {
				t.Fatalf("program %x: echo %d differs from message %d", data, i, i)
			}
		}
		droppable := m.end == endDrop || m.end == endTruncated || m.end == endClose && m.closeCode == 1002
		if len(pongs) > len(m.pongs) || !droppable && len(pongs) != len(m.pongs) {
			t.Fatalf("program %x: %d pongs, want %d", data, len(pongs), len(m.pongs))
		}
		for i, p := range pongs {
			if !bytes.Equal(p, m.pongs[i]) {
				t.Fatalf("program %x: pong %d carries %q, want %q", data, i, p, m.pongs[i])
			}
		}
		switch {
		case m.end == endOpen:
			if !sawClose || !bytes.Equal(closeFrame, closePayload(1000, "fuzz done")) {
				t.Fatalf("program %x: our close was answered with %q, want its echo", data, closeFrame)
			}
		case m.end == endClose && m.echoClose != nil:
			if !sawClose || !bytes.Equal(closeFrame, m.echoClose) {
				t.Fatalf("program %x: our close %q was answered with %q", data, m.echoClose, closeFrame)
			}
		case m.end == endClose:
			if !sawClose && m.closeCode != 1002 { // a 1002 may be lost to the reset that follows it
				t.Fatalf("program %x: no close frame, want %d", data, m.closeCode)
			}
			if sawClose && (len(closeFrame) < 2 || int(binary.BigEndian.Uint16(closeFrame)) != m.closeCode) {
				t.Fatalf("program %x: server closed with %q, want %d", data, closeFrame, m.closeCode)
			}
		case sawClose:
			t.Fatalf("program %x: close frame %q, want the connection dropped", data, closeFrame)
		}

		// What the server saw: OnClose once with the predicted status, and
		// exactly the complete messages.
		deadline := time.Now().Add(10 * time.Second)
		for {
			sink.mu.Lock()
			closes, msgs := sink.closes[id], sink.msgs[id]
			sink.mu.Unlock()
			if len(closes) > 0 {
				time.Sleep(time.Millisecond) // a second OnClose would show now
				sink.mu.Lock()
				closes = sink.closes[id]
				delete(sink.closes, id)
				delete(sink.msgs, id)
				sink.mu.Unlock()
				// A protocol error or a broken socket may be seen first by
				// a write of the connection's own: either way, 1006.
				if len(closes) == 1 && m.onClose == "1006 " && closes[0] == "1006 write failed" {
					closes[0] = m.onClose
				}
				if len(closes) != 1 || closes[0] != m.onClose {
					t.Fatalf("program %x: OnClose saw %q, want once %q", data, closes, m.onClose)
				}
				if len(msgs) != len(m.messages) {
					t.Fatalf("program %x: OnMessage saw %d messages, want %d", data, len(msgs), len(m.messages))
				}
				for i := range msgs {
					if msgs[i].IsBinary() != m.messages[i].IsBinary() || !bytes.Equal(msgs[i].Bytes(), m.messages[i].Bytes()) {
						t.Fatalf("program %x: message %d differs", data, i)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("program %x: OnClose did not run", data)
			}
			time.Sleep(time.Millisecond)
		}

		// The room carries on for the bystander.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ping := []byte("still here " + id)
		if err := bystander.Write(ctx, websocket.MessageText, ping); err != nil {
			t.Fatalf("bystander: %v", err)
		}
		if _, b, err := bystander.Read(ctx); err != nil || !bytes.Equal(b, ping) {
			t.Fatalf("bystander got %q, %v", b, err)
		}
		if n := h.Room("main", "frames").ConnectionCount(); n != 1 {
			t.Fatalf("program %x: %d connections left in the room, want the bystander only", data, n)
		}
	})
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && strings.Contains(err.Error(), "reset")
}

// frameSeeds are hand-written programs covering each rule of the model.
func frameSeeds() [][]byte {
	fr := func(b0 byte, payload string) []byte { // masked, minimal length under 100
		return append([]byte{b0, byte(len(payload))}, payload...)
	}
	code := func(c uint16, reason string) string { return string(closePayload(c, reason)) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	return [][]byte{
		cat(fr(0x81, "hello")),
		cat(fr(0x82, "\x00\x01\xff")),
		cat(fr(0x81, "")),
		cat(fr(0x01, "hel"), fr(0x89, "ping!"), fr(0x00, "lo "), fr(0x80, "world")), // fragmented, ping inside
		cat(fr(0x81, "ok"), fr(0x81, "\xff\xfe")),                                   // invalid UTF-8: 1007
		cat(fr(0x01, "\xe2\x82"), fr(0x80, "\xac")),                                 // a rune split across fragments
		cat(fr(0x88, code(1000, "bye"))),
		cat(fr(0x88, code(4000, "app"))),
		cat(fr(0x88, code(1005, ""))), // codes that may not be sent: 1002
		cat(fr(0x88, code(999, ""))),
		cat(fr(0x88, code(2999, ""))),
		cat(fr(0x88, code(5000, ""))),
		cat(fr(0x88, "x")), // one-byte close payload
		cat(fr(0x88, "")),  // empty close: 1005
		cat(fr(0x88, code(1000, "\xff\xfe"))),
		cat(fr(0x83, "reserved opcode")),
		cat(fr(0x8b, "reserved control")),
		cat(fr(0xc1, "rsv1")),
		cat(fr(0xa1, "rsv2")),
		cat(fr(0x80, "continuation first")),
		cat(fr(0x01, "start"), fr(0x81, "new message inside")),
		cat(fr(0x09, "fragmented ping")),
		cat([]byte{0x89, 100}, bytes.Repeat([]byte("p"), 125)),                  // ping of 125: fine
		cat([]byte{0x89, 101}, bytes.Repeat([]byte("p"), 126)),                  // ping of 126: 1002
		cat([]byte{0x81, 105}),                                                  // exactly the read limit
		cat([]byte{0x81, 106}),                                                  // one byte over: 1009
		cat([]byte{0x01, 108}, []byte{0x00, 108}, []byte{0x80, 1}, []byte("z")), // over the limit in fragments
		cat([]byte{0x82, 104}),                                                  // 65,536 bytes: 1009
		cat([]byte{0x81, 0x80 | 5}, []byte("plain")),                            // unmasked: dropped
		cat([]byte{0x81, 119}),                                                  // negative length: dropped
		cat(fr(0x81, "before"), []byte{0x81, 120}, []byte("cut short")),         // truncated frame
		cat([]byte{0x81, 121 + 3}, []byte("abc")),                               // non-minimal length encoding
		cat(fr(0x8a, "unsolicited pong"), fr(0x81, "after")),
	}
}
