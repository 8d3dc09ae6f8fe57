package party

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/rs/xid"

	"party/internal/wire"
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
		key, _ := h.route(r)
		h.refuse(w, r, key, &HTTPError{http.StatusServiceUnavailable, "server is shutting down"})
		return
	}
	defer h.leave()
	key, err := h.route(r)
	if err != nil {
		h.refuse(w, r, key, err)
		return
	}
	if headerHasToken(r.Header, "Upgrade", "websocket") {
		h.serveWebSocket(w, r, key)
		return
	}
	r, err = runHook(h.BeforeRequest, r, key)
	if err != nil {
		h.refuse(w, r, key, err)
		return
	}
	r.Header.Del(callChainHeader) // only a Fetch between rooms sets it
	if room := h.placedRelay(key); room != nil {
		defer room.release(false)
		room.serveRequest(w, r) // without the turn: see Relay
		return
	}
	room, startErr, err := h.lockRoom(key, false)
	if err != nil {
		h.refuse(w, r, key, err)
		return
	}
	defer room.release(false)
	if startErr != nil {
		http.Error(w, "party: room failed to start: "+startErr.Error(), http.StatusInternalServerError)
		return
	}
	defer room.unlock()
	room.serveRequest(w, r)
}

func (h *Host) serveWebSocket(w http.ResponseWriter, r *http.Request, key roomKey) {
	r2, id, err := h.checkUpgrade(w, r, key)
	if err != nil {
		h.refuse(w, r, key, err)
		return
	}
	r = r2
	room, startErr, err := h.lockForUpgrade(key, id, r)
	if err != nil {
		h.refuse(w, r, key, err)
		return
	}
	ws, sock, err := wire.Accept(w, r, h.Subprotocols)
	if err != nil {
		if startErr == nil {
			if room.relay != nil {
				room.relay.Abandon(id)
			}
			room.unlock()
		}
		room.release(true)
		return // Accept has answered
	}
	ws.SetReadLimit(h.readLimit())
	c := &Connection{id: id, uri: requestURI(r), remoteAddr: r.RemoteAddr, opened: time.Now(), room: room, ws: ws, sock: sock, tags: []string{id}}
	c.lastActive.Store(time.Now().UnixNano())
	stats := &room.factory.stats
	stats.opened.Add(1)

	if startErr != nil {
		ws.Close(websocket.StatusInternalError, truncateReason(startErr.Error()))
		stats.closed[ClosedInternalError].Add(1)
		room.release(true)
		return
	}
	stats.connections.Add(1) // until serve ends
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

// lockForUpgrade returns the room of an upgrade, with a connection slot
// reserved and, if startErr is nil, its turn held.
//
// The room's turn is taken before the 101 is written and kept until the
// connection has joined: no handler of the room runs between the moment the
// client sees its socket open and the moment it is in the room, so whatever
// the room does after a client is open reaches that client. A relay room
// (the room runs on another node) first has the client join there
// (Relay.Admit); if that fails because the room has just moved (the relay's
// Placement is lost), the room is placed anew, up to three times.
func (h *Host) lockForUpgrade(key roomKey, id string, r *http.Request) (room *Room, startErr, err error) {
	for attempt := 1; ; attempt++ {
		room, startErr, err := h.lockRoom(key, true)
		if err != nil {
			return nil, nil, err
		}
		if startErr != nil || room.relay == nil {
			return room, startErr, nil
		}
		err = room.relay.Admit(id, r)
		if err == nil {
			return room, nil, nil
		}
		room.unlock()
		room.release(true)
		if room.isLost() && attempt < 3 {
			room.lose()
			continue
		}
		var he *HTTPError
		if !errors.As(err, &he) {
			err = &HTTPError{http.StatusServiceUnavailable, "joining the room on its node: " + err.Error()}
		}
		return nil, nil, err
	}
}

// lockRoom returns the room of a request (an upgrade if conn), with a slot
// reserved and, if startErr is nil, its turn held. A room whose Placement
// was lost while it started (its OnStart failed because its storage refused
// a fenced write, say) is not the request's to fail: it is dropped and the
// room placed anew, up to 3 times, so that the client reaches the room where
// it runs now instead of getting 1011 (or 500) for a move.
func (h *Host) lockRoom(key roomKey, conn bool) (room *Room, startErr, err error) {
	for attempt := 1; ; attempt++ {
		room, err := h.acquire(key, conn)
		if err != nil {
			return nil, nil, err
		}
		startErr := room.lock()
		if startErr != nil && room.isLost() && attempt < 3 {
			room.release(conn)
			room.lose()
			continue
		}
		return room, startErr, nil
	}
}

// checkUpgrade makes every check of a WebSocket upgrade that comes before
// the room is touched: the handshake, the Origin, the connection id, then
// BeforeConnect. It returns the request to go on with and the connection's
// id.
func (h *Host) checkUpgrade(w http.ResponseWriter, r *http.Request, key roomKey) (*http.Request, string, error) {
	if err := checkHandshake(w, r); err != nil {
		return nil, "", err
	}
	if err := h.checkOrigin(r); err != nil {
		return nil, "", err
	}
	id, err := connectionID(r)
	if err != nil {
		return nil, "", err
	}
	r, err = runHook(h.BeforeConnect, r, key)
	return r, id, err
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

// checkHandshake validates a WebSocket handshake before any room is touched,
// so that a malformed one cannot start a room. coder/websocket's Accept
// checks the same things again, later, and would refuse the same requests;
// refusing them here costs the room nothing.
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
// OriginPatterns. coder/websocket's Accept has the same check, with the same
// answers (the host compared case-insensitively, each pattern matched with
// path.Match against the host, or against "scheme://host" when it contains
// "://"); party makes it itself, and tells Accept to skip its own, for two
// reasons: the refusal must come before BeforeConnect runs and before the
// room is touched (Accept runs in the room's turn, which may start the room),
// and it names the OriginPatterns entry that would allow the origin.
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

// runHook runs BeforeConnect or BeforeRequest, if set, and returns the
// request to go on with.
func runHook(hook func(*http.Request, string, string) (*http.Request, error), r *http.Request, key roomKey) (*http.Request, error) {
	if hook == nil {
		return r, nil
	}
	r2, err := hook(r, key.party, key.id)
	if err != nil || r2 == nil {
		return r, err
	}
	return r2, nil
}

// refuse answers r with err: an *HTTPError's status and message, or 401 and
// the error's text. A refused WebSocket upgrade is counted for the party key
// names, or for none if that is not a registered party.
func (h *Host) refuse(w http.ResponseWriter, r *http.Request, key roomKey, err error) {
	status, msg := http.StatusUnauthorized, err.Error()
	var he *HTTPError
	if errors.As(err, &he) {
		status, msg = he.Status, he.Message
	}
	if headerHasToken(r.Header, "Upgrade", "websocket") {
		if f, ok := h.parties[key.party]; ok {
			f.stats.refused.add(status)
		} else {
			h.unrouted.add(status)
		}
	}
	http.Error(w, "party: "+msg, status)
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
