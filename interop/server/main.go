// Command server is the Go server the interop suite drives with the real
// partysocket client. It mounts the guide's broadcast server
// (party/examples/guide) and a few purpose-built parties:
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
// The main Host accepts the subprotocol "party.v1". -ping sets every Host's
// PingInterval and -ping-timeout its PingTimeout (so a client that never
// answers a ping is dropped within 2×ping+ping-timeout). The server prints
// "listening on http://{addr}" once it accepts connections. On SIGTERM or SIGINT it shuts
// down gracefully (open connections get 1012) and exits, so a test can start
// it again on the same port with -addr.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"

	"party"
	"party/examples/guide"
	"party/internal/graceful"
)

// boot identifies this process, so a client can tell a restarted server.
var boot = func() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}()

// Control lets its clients steer it.
type Control struct {
	connects map[string]int // connections seen per id, in this room
}

func (s *Control) OnConnect(c *party.Connection, r *http.Request) {
	s.connects[c.ID()]++
	hello, _ := json.Marshal(map[string]any{
		"type": "hello", "id": c.ID(), "connects": s.connects[c.ID()], "boot": boot, "tags": c.Tags(), "uri": c.URI(),
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

type userKey struct{}

// tokens are the tokens the secure party accepts, and whose they are.
var tokens = map[string]string{"t0k3n-alice": "alice", "t0k3n-bob": "bob"}

func checkToken(r *http.Request, partyName, room string) (*http.Request, error) {
	if partyName != "secure" {
		return nil, nil
	}
	user, ok := tokens[r.URL.Query().Get("token")]
	if !ok {
		return nil, &party.HTTPError{Status: http.StatusUnauthorized, Message: "unknown token"}
	}
	return r.WithContext(context.WithValue(r.Context(), userKey{}, user)), nil
}

func (Secure) OnConnect(c *party.Connection, r *http.Request) {
	user, _ := r.Context().Value(userKey{}).(string)
	c.Send(party.Text("welcome " + user))
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

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	ping := flag.Duration("ping", 0, "Host.PingInterval of every Host (0: the default)")
	pingTimeout := flag.Duration("ping-timeout", 0, "Host.PingTimeout of every Host (0: the default)")
	flag.Parse()

	newControl := func(*party.Room) party.Server { return &Control{connects: map[string]int{}} }

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

	for _, host := range []*party.Host{h, custom, limited, paced} {
		host.PingInterval, host.PingTimeout = *ping, *pingTimeout
	}

	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	mux.Handle("/parties/", h)
	mux.Handle("/rooms/{room}", h) // a Go 1.22 pattern: partysocket's basePath option
	mux.Handle("/custom/", custom)
	mux.Handle("/limited/", limited)
	mux.Handle("/paced/", paced)

	if err := graceful.Serve(*addr, mux, h, custom, limited, paced); err != nil {
		log.Fatal(err)
	}
}
