// Package app is what the interop suite's servers serve: the PartyKit
// guide's chat (party/examples/guide) and a few purpose-built parties, on
// four Hosts behind one mux. interop/server serves it on one Host per name;
// the cluster module's interopcluster command serves it on every node of a
// cluster, each Host joined to the cluster under its name.
//
//	/party/{room}, /parties/main/{room}  the PartyKit guide's chat server
//	/parties/control/{room}              says hello (JSON: id, connect count, boot id, tags), echoes every
//	                                     message as it came (text or binary), and closes the sender on
//	                                     "close <code> <reason>"
//	/parties/feed/{room}                 OnRequest: POST stores the body and broadcasts it to the room's
//	                                     sockets, GET returns the room id and the stored bodies as JSON
//	/parties/secure/{room}               BeforeConnect lets in only ?token=<known token>; OnConnect
//	                                     greets the user the hook found
//	/parties/tags/{room}                 tags each connection with role:<?role>; "admins:<text>" goes only to
//	                                     role:admin connections, "all:<text>" to everyone
//	/rooms/{room}                        the chat server again, through a Go 1.22 mux pattern
//	/custom/main/{room}                  the chat server on a second Host whose Prefix is "custom"
//	/limited/main/{room}                 the control server on a Host whose ReadLimit is 1 KiB
//	/paced/main/{room}                   the control server on a Host whose RateLimit is 50 messages/s
//	                                     with a 100 ms burst
//
// The main Host accepts the subprotocol "party.v1".
package app

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"party"
	"party/examples/guide"
)

// Options configure [New]. The zero value is the suite's default server.
type Options struct {
	// PingInterval and PingTimeout are every Host's (zero: party's
	// defaults).
	PingInterval, PingTimeout time.Duration
}

// App is one instance of the interop server: its Hosts and the mux that
// routes to them.
type App struct {
	// Handler routes every URL of the package documentation.
	Handler http.Handler
	// Hosts are the four Hosts, in this order: "main" (the guide's chat,
	// the test parties and the "party.v1" subprotocol: /party/,
	// /parties/, /rooms/{room}), "custom", "limited" and "paced". Each
	// has rooms of its own: a room "x" of party "main" on two Hosts is two
	// rooms.
	Hosts []NamedHost
	// Boot identifies this App: the control party's hello carries it, so
	// that a client can tell a restarted server.
	Boot string
}

// NamedHost is one Host of an App and its name.
type NamedHost struct {
	Name string
	Host *party.Host
}

// New builds an App.
func New(o Options) *App {
	b := make([]byte, 6)
	rand.Read(b)
	boot := hex.EncodeToString(b)
	newControl := func(*party.Room) party.Server { return &Control{boot: boot, connects: map[string]int{}} }

	h := party.Handler(guide.New)
	h.Party("control", newControl)
	h.Party("feed", func(r *party.Room) party.Server { return &Feed{room: r} })
	h.Party("secure", func(*party.Room) party.Server { return Secure{} })
	h.Party("tags", func(r *party.Room) party.Server { return &Tagged{room: r} })
	h.BeforeConnect = checkToken
	h.Subprotocols = []string{"party.v1"}

	custom := party.Handler(guide.New)
	custom.Prefix = "custom"

	limited := party.Handler(newControl)
	limited.Prefix = "limited"
	limited.ReadLimit = 1024

	paced := party.Handler(newControl)
	paced.Prefix = "paced"
	paced.RateLimit = party.RateLimit{MessagesPerSecond: 50, Burst: 100 * time.Millisecond}

	hosts := []NamedHost{{"main", h}, {"custom", custom}, {"limited", limited}, {"paced", paced}}
	for _, nh := range hosts {
		nh.Host.PingInterval, nh.Host.PingTimeout = o.PingInterval, o.PingTimeout
	}

	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	mux.Handle("/parties/", h)
	mux.Handle("/rooms/{room}", h) // a Go 1.22 pattern: partysocket's basePath option
	mux.Handle("/custom/", custom)
	mux.Handle("/limited/", limited)
	mux.Handle("/paced/", paced)
	return &App{Handler: mux, Hosts: hosts, Boot: boot}
}

// PartyHosts returns the App's Hosts without their names.
func (a *App) PartyHosts() []*party.Host {
	hosts := make([]*party.Host, len(a.Hosts))
	for i, nh := range a.Hosts {
		hosts[i] = nh.Host
	}
	return hosts
}

// Control lets its clients steer it.
type Control struct {
	boot     string
	connects map[string]int // connections seen per id, in this room
}

func (s *Control) OnConnect(c *party.Connection, r *http.Request) {
	s.connects[c.ID()]++
	hello, _ := json.Marshal(map[string]any{
		"type": "hello", "id": c.ID(), "connects": s.connects[c.ID()], "boot": s.boot, "tags": c.Tags(), "uri": c.URI(),
	})
	c.Send(party.Text(string(hello)))
}

func (s *Control) OnMessage(msg party.Message, sender *party.Connection) {
	if cmd, ok := strings.CutPrefix(msg.String(), "close "); ok && !msg.IsBinary() {
		code, reason, _ := strings.Cut(cmd, " ")
		n, err := strconv.Atoi(code)
		if err != nil {
			sender.Send(party.Text("bad close code " + strconv.Quote(code)))
			return
		}
		sender.Close(party.StatusCode(n), reason)
		return
	}
	sender.Send(msg) // as it came: text stays text, binary stays the same bytes
}

// Feed answers plain HTTP: PartySocket.fetch reaches it.
type Feed struct {
	room  *party.Room
	items []string
}

func (s *Feed) OnRequest(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.items = append(s.items, string(body))
		s.room.Broadcast(party.Text(string(body)))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "stored %d bytes as item %d", len(body), len(s.items))
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"room": s.room.ID(), "party": s.room.Party(), "items": s.items,
			"connections": s.room.ConnectionCount(), "url": r.URL.String(),
		})
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
	}
}

// Secure greets the user that BeforeConnect found for the token.
type Secure struct{}

// tokens are the tokens the secure party accepts, and whose they are.
var tokens = map[string]string{"t0k3n-alice": "alice", "t0k3n-bob": "bob"}

// userHeader carries the user BeforeConnect found to OnConnect. A header,
// not a context value: on a cluster (party/cluster), OnConnect may run on
// another node, and only the request's method, URL, headers and remote
// address travel there. The hook sets it on every request it lets in,
// replacing whatever the client sent.
const userHeader = "X-Party-User"

func checkToken(r *http.Request, partyName, room string) (*http.Request, error) {
	r.Header.Del(userHeader)
	if partyName != "secure" {
		return nil, nil
	}
	user, ok := tokens[r.URL.Query().Get("token")]
	if !ok {
		return nil, &party.HTTPError{Status: http.StatusUnauthorized, Message: "unknown token"}
	}
	r.Header.Set(userHeader, user)
	return r, nil
}

func (Secure) OnConnect(c *party.Connection, r *http.Request) {
	c.Send(party.Text("welcome " + r.Header.Get(userHeader)))
}

// Tagged tags connections by role and can broadcast to one role only.
type Tagged struct{ room *party.Room }

func (s *Tagged) ConnectionTags(c *party.Connection, r *http.Request) []string {
	if role := r.URL.Query().Get("role"); role != "" {
		return []string{"role:" + role}
	}
	return nil
}

func (s *Tagged) OnConnect(c *party.Connection, r *http.Request) {
	tags, _ := json.Marshal(c.Tags())
	c.Send(party.Text("tags " + string(tags)))
}

func (s *Tagged) OnMessage(msg party.Message, sender *party.Connection) {
	if text, ok := strings.CutPrefix(msg.String(), "admins:"); ok {
		for c := range s.room.GetConnections("role:admin") {
			c.Send(party.Text("to admins from " + sender.ID() + ": " + text))
		}
		return
	}
	if text, ok := strings.CutPrefix(msg.String(), "all:"); ok {
		s.room.Broadcast(party.Text("to all from " + sender.ID() + ": " + text))
	}
}
