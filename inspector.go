package party

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The inspector's page, served from these embedded files.
//
//go:embed inspector
var inspectorFiles embed.FS

// Bounds on what the inspector returns, so that one poll stays cheap to
// encode and to draw however many rooms there are.
const (
	inspectorMaxRooms       = 500  // per party in state.json, the most connected first
	inspectorMaxConnections = 1000 // per room in room.json, the longest queues first
)

// Inspector returns a read-only live view of the Host for operators: an
// http.Handler serving a web page that shows every party, its rooms (id,
// connections, messages received per second, messages and bytes queued for
// its connections, age), the connections of the room clicked (id, tags,
// remote address, queue length, how long connected) and the counters of
// [Host.Stats], refreshed every second.
//
// Nothing is exposed unless you mount it, as with net/http/pprof. It serves
// relative to where it is mounted, under a pattern ending in a slash, with or
// without http.StripPrefix:
//
//	mux.Handle("/debug/party/", h.Inspector())
//
// Besides the page it serves state.json (the parties, at most 500 rooms of
// each, the most connected first, with the party's totals and Stats) and
// room.json?party=P&id=ROOM (at most 1000 connections of the room, the
// longest queues first; 404 if the room is not in memory). It answers GET
// and HEAD only (405 otherwise), and changes nothing.
//
// The inspector shows room ids, connection ids, tags and client addresses,
// which may identify your users: mount it behind your own authentication, or
// only on a listener that the public cannot reach:
//
//	admin := http.NewServeMux()
//	admin.Handle("/debug/party/", h.Inspector())
//	go http.ListenAndServe("127.0.0.1:6060", admin)
//
// or wrap it in a handler of yours that checks the request's credentials
// (a session, a token) and calls the inspector only if they pass:
//
//	mux.Handle("/debug/party/", requireAdmin(h.Inspector()))
//
// docs/inspector.md shows such a wrapper, with a token checked in constant
// time.
//
// It never takes a room's turn: a busy or stuck room does not slow it down,
// nor does it slow a room. A poll reads each room's connection snapshot
// (the one Broadcast uses) and atomic counters, and, for the rooms it lists,
// each connection's queue length under its send-queue lock, held for two
// integer reads: its cost grows with the rooms of the Host and the
// connections of the rooms listed (docs/inspector.md has measurements).
func (h *Host) Inspector() http.Handler { return inspector{h} }

type inspector struct{ h *Host }

func (in inspector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "party inspector: read-only, GET only", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("Cache-Control", "no-store")
	name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	switch name {
	case "state.json":
		writeJSON(w, in.h.inspectState())
	case "room.json":
		party := cmp.Or(r.URL.Query().Get("party"), DefaultParty)
		room := in.h.Room(party, r.URL.Query().Get("id"))
		if room == nil {
			http.Error(w, "party inspector: no such room in memory", http.StatusNotFound)
			return
		}
		writeJSON(w, inspectRoom(room))
	case "", "index.html", "inspector.js", "inspector.css":
		if asked := requestPath(r); r.URL.Path == "" && asked != "" && !strings.HasSuffix(asked, "/") {
			// Mounted without its slash: the page's relative URLs need one.
			http.Redirect(w, r, asked+"/", http.StatusMovedPermanently)
			return
		}
		b, err := inspectorFiles.ReadFile("inspector/" + cmp.Or(name, "index.html"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.ServeContent(w, r, cmp.Or(name, "index.html"), time.Time{}, bytes.NewReader(b))
	default:
		http.NotFound(w, r)
	}
}

// requestPath returns the path the client asked for, before any StripPrefix.
func requestPath(r *http.Request) string {
	path, _, _ := strings.Cut(r.RequestURI, "?")
	return path
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// inspectorState is state.json.
type inspectorState struct {
	Time            int64             `json:"time"` // unix milliseconds, for rates
	Parties         []inspectorParty  `json:"parties"`
	UpgradesRefused map[string]uint64 `json:"upgrades_refused"` // for URLs naming no party, by status
}

type inspectorParty struct {
	Name        string          `json:"name"`
	RoomsTotal  int             `json:"rooms_total"` // rooms in memory; Rooms holds the first inspectorMaxRooms
	Connections int             `json:"connections"` // summed over every room
	Rooms       []inspectorRoom `json:"rooms"`
	Stats       inspectorStats  `json:"stats"`
}

type inspectorRoom struct {
	ID               string  `json:"id"`
	Connections      int     `json:"connections"`
	MessagesReceived uint64  `json:"messages_received"`
	QueuedMessages   int     `json:"queued_messages"`
	QueuedBytes      int     `json:"queued_bytes"`
	AgeSeconds       float64 `json:"age_seconds"`
}

// inspectorStats is PartyStats with names for keys.
type inspectorStats struct {
	Rooms             int64                         `json:"rooms"`
	Connections       int64                         `json:"connections"`
	ConnectionsOpened uint64                        `json:"connections_opened"`
	ConnectionsClosed map[string]uint64             `json:"connections_closed"`
	MessagesReceived  uint64                        `json:"messages_received"`
	BytesReceived     uint64                        `json:"bytes_received"`
	MessagesSent      uint64                        `json:"messages_sent"`
	BytesSent         uint64                        `json:"bytes_sent"`
	SendsRefused      uint64                        `json:"sends_refused"`
	UpgradesRefused   map[string]uint64             `json:"upgrades_refused"`
	HandlerPanics     map[string]uint64             `json:"handler_panics"`
	HandlerDurations  map[string]inspectorHistogram `json:"handler_durations"`
}

type inspectorHistogram struct {
	Count      uint64  `json:"count"`
	SumSeconds float64 `json:"sum_seconds"`
}

func (h *Host) inspectState() inspectorState {
	stats := h.Stats()
	type listed struct {
		room  *Room
		conns []*Connection
	}
	byParty := map[string][]listed{}
	h.rooms.Range(func(_, v any) bool {
		r := v.(*Room)
		byParty[r.key.party] = append(byParty[r.key.party], listed{r, r.snapshot()})
		return true
	})
	s := inspectorState{Time: time.Now().UnixMilli(), Parties: []inspectorParty{}, UpgradesRefused: byStatus(stats.UpgradesRefused)}
	for _, name := range slices.Sorted(maps.Keys(stats.Parties)) {
		rooms := byParty[name]
		p := inspectorParty{Name: name, RoomsTotal: len(rooms), Stats: inspectStats(stats.Parties[name])}
		for _, l := range rooms {
			p.Connections += len(l.conns)
		}
		slices.SortFunc(rooms, func(a, b listed) int {
			return cmp.Or(cmp.Compare(len(b.conns), len(a.conns)), strings.Compare(a.room.key.id, b.room.key.id))
		})
		// Only the rooms shown are looked into: the queues of the others cost nothing.
		p.Rooms = make([]inspectorRoom, 0, min(len(rooms), inspectorMaxRooms))
		for _, l := range rooms[:cap(p.Rooms)] {
			p.Rooms = append(p.Rooms, inspectRoomSummary(l.room, l.conns))
		}
		s.Parties = append(s.Parties, p)
	}
	return s
}

func inspectRoomSummary(r *Room, conns []*Connection) inspectorRoom {
	s := inspectorRoom{
		ID:               r.key.id,
		Connections:      len(conns),
		MessagesReceived: r.received.Load(),
		AgeSeconds:       time.Since(r.created).Seconds(),
	}
	for _, c := range conns {
		msgs, n := c.queueLen()
		s.QueuedMessages += msgs
		s.QueuedBytes += n
	}
	return s
}

func inspectStats(ps PartyStats) inspectorStats {
	s := inspectorStats{
		Rooms: ps.Rooms, Connections: ps.Connections, ConnectionsOpened: ps.ConnectionsOpened,
		ConnectionsClosed: make(map[string]uint64, len(ps.ConnectionsClosed)),
		MessagesReceived:  ps.MessagesReceived, BytesReceived: ps.BytesReceived,
		MessagesSent: ps.MessagesSent, BytesSent: ps.BytesSent, SendsRefused: ps.SendsRefused,
		UpgradesRefused: byStatus(ps.UpgradesRefused), HandlerPanics: ps.HandlerPanics,
		HandlerDurations: make(map[string]inspectorHistogram, len(ps.HandlerDurations)),
	}
	for why, n := range ps.ConnectionsClosed {
		s.ConnectionsClosed[why.String()] = n
	}
	for name, hist := range ps.HandlerDurations {
		s.HandlerDurations[name] = inspectorHistogram{Count: hist.Count, SumSeconds: hist.Sum.Seconds()}
	}
	return s
}

// byStatus labels the statuses of UpgradesRefused as party/metrics does:
// the status, or "other" for 0.
func byStatus(m map[int]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for status, n := range m {
		label := "other"
		if status != 0 {
			label = strconv.Itoa(status)
		}
		out[label] = n
	}
	return out
}

// inspectorConnections is room.json.
type inspectorConnections struct {
	Party            string                `json:"party"`
	ID               string                `json:"id"`
	ConnectionsTotal int                   `json:"connections_total"` // Connections holds the first inspectorMaxConnections
	Connections      []inspectorConnection `json:"connections"`
}

type inspectorConnection struct {
	ID               string   `json:"id"`
	Tags             []string `json:"tags"` // from ConnectionTags: the id, always a tag, left out
	RemoteAddr       string   `json:"remote_addr"`
	QueuedMessages   int      `json:"queued_messages"`
	QueuedBytes      int      `json:"queued_bytes"`
	ConnectedSeconds float64  `json:"connected_seconds"`
	Closing          bool     `json:"closing"`
}

func inspectRoom(r *Room) inspectorConnections {
	conns := r.snapshot()
	out := inspectorConnections{Party: r.key.party, ID: r.key.id, ConnectionsTotal: len(conns)}
	all := make([]inspectorConnection, 0, len(conns))
	for _, c := range conns {
		msgs, n := c.queueLen()
		all = append(all, inspectorConnection{
			ID:               c.id,
			Tags:             append([]string{}, c.tags[1:]...), // set before it joined, never changed since
			RemoteAddr:       c.remoteAddr,
			QueuedMessages:   msgs,
			QueuedBytes:      n,
			ConnectedSeconds: time.Since(c.opened).Seconds(),
			Closing:          c.isClosing(),
		})
	}
	slices.SortFunc(all, func(a, b inspectorConnection) int {
		return cmp.Or(cmp.Compare(b.QueuedBytes, a.QueuedBytes), cmp.Compare(b.ConnectedSeconds, a.ConnectedSeconds), strings.Compare(a.ID, b.ID))
	})
	out.Connections = all[:min(len(all), inspectorMaxConnections)]
	return out
}
