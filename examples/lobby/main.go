// Command lobby shows rooms that talk to each other: chat rooms tell a lobby
// room how many people they hold, and the lobby shows every browser the live
// counts.
//
//	go run ./examples/lobby
//
// Open http://localhost:1999 (the lobby) in one tab and
// http://localhost:1999/?room=kitchen in others: the lobby's counts follow
// people in and out of each room.
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net/http"
	"time"

	"party"
	"party/storage"
)

//go:embed index.html
var static embed.FS

// Chat is the guide's chat room; it also reports its head count to the lobby.
type Chat struct{ room *party.Room }

func (s *Chat) OnConnect(c *party.Connection, r *http.Request) {
	c.Send(party.Text("Welcome, " + c.ID()))
	s.room.Broadcast(party.Text("Heads up! "+c.ID()+" joined the party!"), c.ID())
	s.report()
}

func (s *Chat) OnMessage(msg party.Message, sender *party.Connection) {
	s.room.Broadcast(msg, sender.ID())
}

func (s *Chat) OnClose(c *party.Connection) {
	s.room.Broadcast(party.Text("So sad! " + c.ID() + " left the party!"))
	s.report()
}

// report runs the lobby's update in the lobby's turn. The chat room waits
// for the lobby, and the lobby never calls back, so there is no cycle.
func (s *Chat) report() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	id, n := s.room.ID(), s.room.ConnectionCount()
	err := s.room.Call(ctx, "lobby", "main", func(srv party.Server) error {
		srv.(*Lobby).set(id, n)
		return nil
	})
	if err != nil {
		log.Printf("chat %s: lobby update: %v", id, err)
	}
}

// Lobby keeps the head count of every chat room and shows it to its
// connections as a JSON object {"room": count}. The counts live in the
// lobby's Storage too, so they outlive the lobby room itself, which is
// dropped when nobody has watched it for a while.
type Lobby struct {
	room   *party.Room
	counts map[string]int
}

func (l *Lobby) OnStart() error {
	l.counts = map[string]int{}
	err := storage.GetJSON(l.room.Storage(), "counts", &l.counts)
	if errors.Is(err, storage.ErrKeyNotFound) {
		return nil
	}
	return err
}

func (l *Lobby) set(room string, n int) {
	if n == 0 {
		delete(l.counts, room)
	} else {
		l.counts[room] = n
	}
	if err := storage.PutJSON(l.room.Storage(), "counts", l.counts); err != nil {
		log.Printf("lobby: saving counts: %v", err)
	}
	l.room.Broadcast(l.snapshot())
}

func (l *Lobby) snapshot() party.Message {
	b, _ := json.Marshal(l.counts)
	return party.Text(string(b))
}

func (l *Lobby) OnConnect(c *party.Connection, r *http.Request) { c.Send(l.snapshot()) }

// OnRequest answers GET /parties/lobby/main with the counts, for scripts.
func (l *Lobby) OnRequest(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(l.snapshot().Bytes())
}

func main() {
	addr := flag.String("addr", "localhost:1999", "address to listen on")
	flag.Parse()

	h := party.Handler(func(r *party.Room) party.Server { return &Chat{room: r} })
	h.Party("lobby", func(r *party.Room) party.Server { return &Lobby{room: r} })

	mux := http.NewServeMux()
	mux.Handle("/parties/", h)
	mux.Handle("GET /{$}", http.FileServerFS(static)) // index.html
	log.Printf("lobby on http://%s (chat rooms at http://%s/?room=NAME)", *addr, *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
