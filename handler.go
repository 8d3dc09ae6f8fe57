package party

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/rs/xid"
)

// ServeHTTP routes r to its room. It accepts these paths, anywhere in the
// URL (so the Host may be mounted under any prefix):
//
//	/party/{room}[/...]             the default party (the PartyKit guide's URLs)
//	/{Prefix}/{party}/{room}[/...]  partysocket's URLs; Prefix defaults to "parties"
//
// and, when the Host is mounted on a Go 1.22 mux pattern with a {room}
// wildcard (and optionally {party}), the segment that wildcard matched. The
// room id is the path segment as the client sent it, still percent-encoded,
// as PartyKit's room.id. Segments after the room and the query string do not
// change the room.
//
// Requests carrying "Upgrade: websocket" become connections; others go to the
// room's OnRequest. Refusals are plain HTTP responses with a body saying why:
// 400 for a malformed room or connection id (empty, over 256 bytes, not valid
// UTF-8 once decoded, "." or ".." as a segment once decoded, as in "..%2Fx",
// control characters) or a malformed handshake, 403 for a cross-origin
// browser request not allowed by OriginPatterns, 404 for an unknown party or
// a path with no room, 426 for a wrong WebSocket version or a plain request
// to a room without OnRequest, 503 during Shutdown or over
// MaxRooms/MaxConnectionsPerRoom.
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.enter() {
		http.Error(w, "party: server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.leave()
	key, err := h.route(r)
	if err != nil {
		refuse(w, err)
		return
	}
	if headerHasToken(r.Header, "Upgrade", "websocket") {
		h.serveWebSocket(w, r, key)
		return
	}
	if h.BeforeRequest != nil {
		r2, err := h.BeforeRequest(r, key.party, key.id)
		if err != nil {
			refuse(w, err)
			return
		}
		if r2 != nil {
			r = r2
		}
	}
	room, err := h.acquire(key, false)
	if err != nil {
		refuse(w, err)
		return
	}
	defer room.release(false)
	room.serveRequest(w, r)
}

func (h *Host) serveWebSocket(w http.ResponseWriter, r *http.Request, key roomKey) {
	if err := checkHandshake(w, r); err != nil {
		refuse(w, err)
		return
	}
	if err := h.checkOrigin(r); err != nil {
		refuse(w, err)
		return
	}
	id, err := connectionID(r)
	if err != nil {
		refuse(w, err)
		return
	}
	if h.BeforeConnect != nil {
		r2, err := h.BeforeConnect(r, key.party, key.id)
		if err != nil {
			refuse(w, err)
			return
		}
		if r2 != nil {
			r = r2
		}
	}
	room, err := h.acquire(key, true)
	if err != nil {
		refuse(w, err)
		return
	}

	// The room's turn is taken before the 101 is written and kept until the
	// connection has joined: no handler of the room runs between the moment
	// the client sees its socket open and the moment it is in the room, so
	// whatever the room does after a client is open reaches that client.
	startErr := room.lock()
	sb := &smallBuffers{ResponseWriter: w}
	ws, err := websocket.Accept(sb, r, &websocket.AcceptOptions{
		Subprotocols:       h.Subprotocols,
		InsecureSkipVerify: true, // checkOrigin did it, with a clearer refusal
	})
	if err != nil {
		if startErr == nil {
			room.unlock()
		}
		room.release(true)
		return // Accept has answered
	}
	ws.SetReadLimit(h.readLimit())
	c := &Connection{id: id, uri: requestURI(r), room: room, ws: ws, sock: sb.sock, tags: []string{id}}
	c.lastActive.Store(time.Now().UnixNano())

	if startErr != nil {
		ws.Close(websocket.StatusInternalError, truncateReason(startErr.Error()))
		room.release(true)
		return
	}
	joined := room.join(c, r)
	if joined {
		h.ensureSweeper()
	}
	room.unlock()

	// The connection's read loop runs on a goroutine of its own, so that the
	// HTTP server's goroutine, and the stack it grew parsing the request,
	// are gone while the connection idles.
	h.active.Add(1) // still counted by ServeHTTP: Add is safe during Shutdown
	go c.serve(joined)
}

// serve reads the connection until it ends, then takes it out of its room.
func (c *Connection) serve(joined bool) {
	if !c.readLoop() {
		// The loop went idle after a read that grew this goroutine's
		// stack: it goes on on a fresh one, whose stack is the smallest.
		go c.serve(joined)
		return
	}
	r := c.room
	defer r.host.leave()
	defer r.release(true)
	c.finish()
	if joined {
		r.turn.Lock()
		r.leave(c)
		r.turn.Unlock()
	}
}

// Buffer sizes of a hijacked connection. net/http hands over 4 KiB for each;
// most real-time messages are far smaller, larger ones are read and written
// straight through, and every idle connection saves the difference.
const (
	connReadBuffer  = 512
	connWriteBuffer = 128 // the socket gathers a batch's frames; this only stages headers and control frames
)

// smallBuffers makes coder/websocket's Accept use smaller buffers than the
// ones net/http hands over with the hijacked connection.
type smallBuffers struct {
	http.ResponseWriter
	sock *socket // the hijacked connection
}

func (w *smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("party: the http.ResponseWriter cannot be hijacked")
	}
	hijacked, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	conn := &socket{Conn: hijacked, raw: rawConn(hijacked)}
	w.sock = conn
	br := bufio.NewReaderSize(conn, connReadBuffer)
	if n := brw.Reader.Buffered(); n > 0 {
		conn.early = true
		// The client spoke right after its handshake. Accept keeps only
		// what is buffered in the reader it gets (it resets the reader's
		// source to conn), so those bytes must sit in br's buffer.
		early, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(n, connReadBuffer))
		if _, err := br.Peek(n); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	conn.br = br
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, connWriteBuffer)), nil
}

// join makes c a member of the room: tags, replacement of an older
// connection with the same id, then OnConnect. The caller holds the turn. It
// reports false if c failed before joining (ConnectionTags panicked), in which
// case c is closing with 1011 and gets no OnClose.
func (r *Room) join(c *Connection, req *http.Request) bool {
	if t := r.handlers.tagger; t != nil {
		var tags []string
		if err := r.call("ConnectionTags", c, func() { tags = t.ConnectionTags(c, req) }); err != nil {
			c.closeAfterQueue(StatusInternalError, err.Error(), err)
			return false
		}
		for _, tag := range tags {
			if tag != "" && !slices.Contains(c.tags, tag) {
				c.tags = append(c.tags, tag)
			}
		}
	}
	// An older connection with the same id leaves before c joins, as if it
	// had closed before c arrived: its OnClose (the guide's "left" notice)
	// does not reach c ahead of c's welcome. A reconnecting client then sees
	// the same thing whether or not the server noticed its old socket die
	// first.
	r.setMu.RLock()
	old := r.set[c.id]
	r.setMu.RUnlock()
	if old != nil {
		old.Close(StatusReplaced, "replaced by a newer connection with the same id")
		r.leave(old)
	}
	r.add(c)
	if r.host.closing.Load() {
		c.Close(StatusServiceRestart, "server shutting down")
	}
	if on := r.handlers.connect; on != nil {
		if err := r.call("OnConnect", c, func() { on.OnConnect(c, req) }); err != nil {
			c.closeAfterQueue(StatusInternalError, err.Error(), err)
		}
	}
	return true
}

// route finds the party and room a request is for.
func (h *Host) route(r *http.Request) (roomKey, error) {
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if room, ok := patternRoom(r, segs); ok {
		party := r.PathValue("party")
		if party == "" {
			party = DefaultParty
		}
		return roomKey{party, room}, checkID("room id", room)
	}
	prefix := strings.Split(strings.Trim(h.prefix(), "/"), "/")
	for i, s := range segs {
		if s == "party" && i+1 < len(segs) {
			return roomKey{DefaultParty, segs[i+1]}, checkID("room id", segs[i+1])
		}
		if n := len(prefix); i+n+1 < len(segs) && slices.Equal(segs[i:i+n], prefix) {
			party, room := segs[i+n], segs[i+n+1]
			if _, ok := h.parties[party]; !ok {
				return roomKey{}, &HTTPError{http.StatusNotFound, fmt.Sprintf("party %q not found", party)}
			}
			return roomKey{party, room}, checkID("room id", room)
		}
	}
	return roomKey{}, &HTTPError{http.StatusNotFound, fmt.Sprintf("no room in path %q: expected /party/{room} or /%s/{party}/{room}", r.URL.Path, h.prefix())}
}

// patternRoom returns the raw path segment matched by a {room} wildcard of
// the Go 1.22 mux pattern that routed r, if any.
func patternRoom(r *http.Request, segs []string) (string, bool) {
	value := r.PathValue("room")
	if value == "" || r.Pattern == "" {
		return "", false
	}
	pat := r.Pattern
	if i := strings.IndexAny(pat, " \t"); i >= 0 { // "GET /rooms/{room}"
		pat = strings.TrimLeft(pat[i:], " \t")
	}
	if i := strings.IndexByte(pat, '/'); i > 0 { // "example.com/rooms/{room}"
		pat = pat[i:]
	}
	i := slices.Index(strings.Split(strings.TrimPrefix(pat, "/"), "/"), "{room}")
	if i >= 0 && i < len(segs) {
		if dec, err := url.PathUnescape(segs[i]); err == nil && dec == value {
			return segs[i], true
		}
	}
	return url.PathEscape(value), true // the path was rewritten (http.StripPrefix): best effort
}

// checkID validates a room or connection id as sent (percent-encoded).
func checkID(kind, raw string) error {
	bad := func(why string) error {
		return &HTTPError{http.StatusBadRequest, fmt.Sprintf("invalid %s %q: %s", kind, truncateReason(raw), why)}
	}
	if raw == "" {
		return bad("empty")
	}
	if len(raw) > maxIDLength {
		return bad(fmt.Sprintf("%d bytes, longer than %d", len(raw), maxIDLength))
	}
	dec, err := url.PathUnescape(raw)
	if err != nil {
		return bad("bad percent-encoding")
	}
	if !utf8.ValidString(dec) {
		return bad("not valid UTF-8")
	}
	// "..%2F..%2Fetc" decodes to "../../etc": no "." or ".." segment either
	// side of a slash (or backslash), for code that builds paths from ids.
	for _, seg := range strings.FieldsFunc(dec, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return bad("a dot segment")
		}
	}
	if strings.ContainsFunc(dec, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return bad("contains a control character")
	}
	return nil
}

// connectionID returns the first _pk query parameter, or a fresh xid.
func connectionID(r *http.Request) (string, error) {
	q, _ := url.ParseQuery(r.URL.RawQuery)
	if pk := q["_pk"]; len(pk) > 0 && pk[0] != "" {
		// Cloned: a substring would keep the whole request line alive.
		return strings.Clone(pk[0]), checkID("connection id (_pk)", url.PathEscape(pk[0]))
	}
	return xid.New().String(), nil
}

// checkHandshake validates a WebSocket handshake before any room is touched.
func checkHandshake(w http.ResponseWriter, r *http.Request) error {
	switch {
	case r.Method != http.MethodGet:
		return &HTTPError{http.StatusMethodNotAllowed, "WebSocket handshake must be a GET request"}
	case !r.ProtoAtLeast(1, 1):
		return &HTTPError{http.StatusBadRequest, "WebSocket handshake needs HTTP/1.1"}
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return &HTTPError{http.StatusBadRequest, `WebSocket handshake needs "Connection: Upgrade"`}
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		w.Header().Set("Sec-WebSocket-Version", "13")
		return &HTTPError{http.StatusUpgradeRequired, fmt.Sprintf("unsupported Sec-WebSocket-Version %q: this server speaks 13", r.Header.Get("Sec-WebSocket-Version"))}
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key"))
	if err != nil || len(key) != 16 {
		return &HTTPError{http.StatusBadRequest, "missing or malformed Sec-WebSocket-Key"}
	}
	return nil
}

// checkOrigin refuses a cross-origin browser request not allowed by
// OriginPatterns.
func (h *Host) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return &HTTPError{http.StatusForbidden, fmt.Sprintf("malformed Origin %q", origin)}
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	for _, p := range h.OriginPatterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, err := path.Match(strings.ToLower(p), strings.ToLower(target)); err == nil && ok {
			return nil
		}
	}
	return &HTTPError{http.StatusForbidden, fmt.Sprintf("origin %q may not connect to %q: add %q to Host.OriginPatterns to allow it", origin, r.Host, u.Host)}
}

func refuse(w http.ResponseWriter, err error) {
	var he *HTTPError
	if errors.As(err, &he) {
		http.Error(w, "party: "+he.Message, he.Status)
		return
	}
	http.Error(w, "party: "+err.Error(), http.StatusUnauthorized)
}

func requestURI(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
