package party_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
)

// The inspector's JSON, as a client reads it.
type inspectedState struct {
	Time    int64 `json:"time"`
	Parties []struct {
		Name        string          `json:"name"`
		RoomsTotal  int             `json:"rooms_total"`
		Connections int             `json:"connections"`
		Rooms       []inspectedRoom `json:"rooms"`
		Stats       map[string]any  `json:"stats"`
	} `json:"parties"`
}

type inspectedRoom struct {
	ID               string  `json:"id"`
	Connections      int     `json:"connections"`
	MessagesReceived uint64  `json:"messages_received"`
	QueuedMessages   int     `json:"queued_messages"`
	QueuedBytes      int     `json:"queued_bytes"`
	AgeSeconds       float64 `json:"age_seconds"`
}

type inspectedConnections struct {
	Party            string `json:"party"`
	ID               string `json:"id"`
	ConnectionsTotal int    `json:"connections_total"`
	Connections      []struct {
		ID               string   `json:"id"`
		Tags             []string `json:"tags"`
		RemoteAddr       string   `json:"remote_addr"`
		QueuedMessages   int      `json:"queued_messages"`
		QueuedBytes      int      `json:"queued_bytes"`
		ConnectedSeconds float64  `json:"connected_seconds"`
	} `json:"connections"`
}

// inspected is a Server for the inspector's tests: its connections are
// tagged with their ?tag= values, and a message "flood N" sends its sender
// N messages of 1 MiB.
type inspected struct{}

func (inspected) ConnectionTags(c *party.Connection, r *http.Request) []string {
	return r.URL.Query()["tag"]
}

func (inspected) OnMessage(m party.Message, c *party.Connection) {
	if n, ok := strings.CutPrefix(m.String(), "flood "); ok {
		count, _ := strconv.Atoi(n)
		mebibyte := party.Binary(make([]byte, 1<<20))
		for range count {
			c.Send(mebibyte)
		}
	}
}

// serveInspected serves h's rooms at /parties/ and its inspector as mount
// says, and returns the server's http:// and ws:// base URLs.
func serveInspected(t *testing.T, h *party.Host, mount func(*http.ServeMux, http.Handler)) (httpURL, wsURL string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/parties/", h)
	mount(mux, h.Inspector())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
		srv.Close()
	})
	return srv.URL, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// dialFrom dials url and returns the client with its local address, which
// the server sees as the connection's remote address.
func dialFrom(t *testing.T, url string) (*client, string) {
	t.Helper()
	var local string
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			local = c.LocalAddr().String()
		}
		return c, err
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer}}
	c, err := dialErr(url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return &client{t: t, conn: c}, local
}

// getJSON GETs url, fails unless it answers 200 with JSON, and decodes it into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s, want 200 application/json", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// roomIn returns room id of party as state.json at base shows it, or nil.
func roomIn(t *testing.T, base, party, id string) *inspectedRoom {
	t.Helper()
	var s inspectedState
	getJSON(t, base+"state.json", &s)
	for _, p := range s.Parties {
		for _, r := range p.Rooms {
			if p.Name == party && r.ID == id {
				return &r
			}
		}
	}
	return nil
}

// state.json shows a room appear with its connections as clients join and
// go as they leave; room.json lists them with their ids, tags and addresses.
func TestInspectorRoomsAndConnections(t *testing.T) {
	h := party.Handler(func(*party.Room) party.Server { return inspected{} })
	h.Party("other", func(*party.Room) party.Server { return inspected{} })
	h.IdleTimeout = -1 // a room goes with its last connection
	srv, ws := serveInspected(t, h, func(mux *http.ServeMux, in http.Handler) { mux.Handle("/debug/party/", in) })
	base := srv + "/debug/party/"

	if r := roomIn(t, base, "main", "lobby"); r != nil {
		t.Fatalf("before anyone joined, state.json shows %+v", r)
	}
	ann, annAddr := dialFrom(t, ws+"/parties/main/lobby?_pk=ann&tag=red&tag=admin")
	bob, bobAddr := dialFrom(t, ws+"/parties/main/lobby?_pk=bob&tag=blue")
	cy, _ := dialFrom(t, ws+"/parties/other/lobby?_pk=cy")
	defer cy.close()
	// A client's socket opens before its connection is counted (the 101
	// comes first, then the join, in the room's turn): wait for all three.
	eventually(t, "state.json to show main/lobby with 2 connections and other/lobby with 1", func() bool {
		r, o := roomIn(t, base, "main", "lobby"), roomIn(t, base, "other", "lobby")
		return r != nil && r.Connections == 2 && o != nil && o.Connections == 1
	})
	var s inspectedState
	getJSON(t, base+"state.json", &s)
	if len(s.Parties) != 2 || s.Parties[0].Name != "main" || s.Parties[1].Name != "other" {
		t.Fatalf("state.json parties: %+v, want main then other", s.Parties)
	}
	if p := s.Parties[0]; p.RoomsTotal != 1 || p.Connections != 2 || p.Stats["connections"] != 2.0 {
		t.Errorf("party main: %d rooms, %d connections, stats %v; want 1 room, 2 connections", p.RoomsTotal, p.Connections, p.Stats)
	}
	if p := s.Parties[1]; len(p.Rooms) != 1 || p.Rooms[0].Connections != 1 {
		t.Errorf("party other: rooms %+v, want lobby with 1 connection", p.Rooms)
	}

	var rj inspectedConnections
	getJSON(t, base+"room.json?party=main&id=lobby", &rj)
	got := map[string]string{}
	for _, c := range rj.Connections {
		got[c.ID] = fmt.Sprintf("tags %v from %s, queued %d/%d", c.Tags, c.RemoteAddr, c.QueuedMessages, c.QueuedBytes)
	}
	want := map[string]string{
		"ann": fmt.Sprintf("tags [red admin] from %s, queued 0/0", annAddr),
		"bob": fmt.Sprintf("tags [blue] from %s, queued 0/0", bobAddr),
	}
	if rj.ConnectionsTotal != 2 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("room.json: %d connections %v\nwant 2: %v", rj.ConnectionsTotal, got, want)
	}

	ann.send("hello")
	ann.send("again")
	eventually(t, "state.json to count main/lobby's 2 messages", func() bool {
		r := roomIn(t, base, "main", "lobby")
		return r != nil && r.MessagesReceived == 2
	})
	bob.close()
	eventually(t, "state.json to show main/lobby with 1 connection", func() bool {
		r := roomIn(t, base, "main", "lobby")
		return r != nil && r.Connections == 1
	})
	ann.close()
	eventually(t, "main/lobby to leave state.json", func() bool { return roomIn(t, base, "main", "lobby") == nil })
	if body, status := get(t, base+"room.json?party=main&id=lobby"); status != http.StatusNotFound {
		t.Errorf("room.json of a room gone: %d %q, want 404", status, body)
	}
}

// A connection whose client does not read shows its queue in room.json and
// in its room's total.
func TestInspectorQueues(t *testing.T) {
	h := party.Handler(func(*party.Room) party.Server { return inspected{} })
	h.SendQueueBytes = 256 << 20
	srv, ws := serveInspected(t, h, func(mux *http.ServeMux, in http.Handler) { mux.Handle("/debug/party/", in) })
	base := srv + "/debug/party/"

	quiet := dial(t, ws+"/parties/main/q?_pk=quiet")
	defer quiet.close()
	slow := dial(t, ws+"/parties/main/q?_pk=slow")
	defer slow.conn.CloseNow()
	slow.send("flood 64") // 64 MiB: more than loopback's buffers hold, so most of it stays queued
	eventually(t, "room.json to show slow's queue", func() bool {
		var rj inspectedConnections
		getJSON(t, base+"room.json?id=q", &rj) // party defaults to main
		return len(rj.Connections) == 2 && rj.Connections[0].ID == "slow" && rj.Connections[0].QueuedMessages > 0 &&
			rj.Connections[0].QueuedBytes >= rj.Connections[0].QueuedMessages<<20 && rj.Connections[1].QueuedBytes == 0
	})
	if r := roomIn(t, base, "main", "q"); r == nil || r.QueuedMessages == 0 || r.QueuedBytes < r.QueuedMessages<<20 {
		t.Errorf("state.json's room q: %+v, want slow's queue counted", r)
	}
}

// The inspector answers under any prefix: a trailing-slash pattern as is, or
// with StripPrefix, with or without the slash; the page's relative URLs
// need the slash, so a URL without it is redirected.
func TestInspectorMounts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mount func(*http.ServeMux, http.Handler)
		path  string // where the page is
	}{
		{"pattern", func(mux *http.ServeMux, in http.Handler) { mux.Handle("/debug/party/", in) }, "/debug/party/"},
		{"StripPrefix", func(mux *http.ServeMux, in http.Handler) {
			mux.Handle("/admin/party/", http.StripPrefix("/admin/party", in))
		}, "/admin/party/"},
		{"StripPrefix with the slash", func(mux *http.ServeMux, in http.Handler) {
			mux.Handle("/ops/", http.StripPrefix("/ops/", in))
			mux.Handle("/ops", http.StripPrefix("/ops", in))
		}, "/ops/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := party.Handler(func(*party.Room) party.Server { return inspected{} })
			srv, ws := serveInspected(t, h, tc.mount)
			base := srv + tc.path
			c := dial(t, ws+"/parties/main/r1")
			defer c.close()
			eventually(t, "state.json to show room r1", func() bool {
				r := roomIn(t, base, "main", "r1")
				return r != nil && r.Connections == 1
			})
			for file, want := range map[string]string{"": `src="inspector.js"`, "index.html": "<title>party inspector",
				"inspector.js": "state.json", "inspector.css": "table"} {
				if body, status := get(t, base+file); status != http.StatusOK || !strings.Contains(body, want) {
					t.Errorf("GET %s: %d, body without %q", base+file, status, want)
				}
			}
			for _, file := range []string{"nope", "room.json?party=main&id=nope", "room.json?party=nope&id=r1"} {
				if body, status := get(t, base+file); status != http.StatusNotFound {
					t.Errorf("GET %s: %d %q, want 404", base+file, status, body)
				}
			}
			resp, err := http.Post(base+"state.json", "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("POST state.json: %d, Allow %q; want 405, GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
			}
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err = noFollow.Get(strings.TrimSuffix(base, "/"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || loc != tc.path {
				t.Errorf("GET %s: %d to %q, want a redirect to %s", strings.TrimSuffix(base, "/"), resp.StatusCode, loc, tc.path)
			}
		})
	}
}

// state.json holds at most 500 rooms of a party, the most connected first,
// and says how many there are.
func TestInspectorRoomBound(t *testing.T) {
	h := party.Handler(func(*party.Room) party.Server { return inspected{} })
	h.IdleTimeout = time.Minute
	srv, ws := serveInspected(t, h, func(mux *http.ServeMux, in http.Handler) { mux.Handle("/i/", in) })
	base := srv + "/i/"
	for i := range 600 {
		req := httptest.NewRequest("GET", "/", nil)
		if _, err := h.Fetch(party.DefaultParty, fmt.Sprintf("idle-%03d", i), req); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, ws+"/parties/main/zz-busy")
	defer c.close()
	eventually(t, "the busy room in state.json", func() bool { return roomIn(t, base, "main", "zz-busy") != nil })
	var s inspectedState
	getJSON(t, base+"state.json", &s)
	p := s.Parties[0]
	ids := make([]string, len(p.Rooms))
	for i, r := range p.Rooms {
		ids[i] = r.ID
	}
	if p.RoomsTotal != 601 || len(p.Rooms) != 500 || ids[0] != "zz-busy" || !slices.IsSorted(ids[1:]) || ids[1] != "idle-000" {
		t.Errorf("state.json: %d rooms of %d, first %v; want 500 of 601, zz-busy then idle-000...", len(p.Rooms), p.RoomsTotal, ids[:3])
	}
}
