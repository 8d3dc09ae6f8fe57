// Command party is the guide's broadcast server on the party package, for
// bench/compare: welcome the joiner, tell the others, relay every message to
// everyone but its sender, and announce who left.
//
//	party -addr 127.0.0.1:8080   # ws://127.0.0.1:8080/parties/main/{room}?_pk=id
package main

import (
	"net/http"

	"party"
	"party/bench/internal/peerserver"
)

type chat struct{ room *party.Room }

func (s *chat) OnConnect(c *party.Connection, r *http.Request) {
	c.Send(party.Text("Welcome, " + c.ID()))
	s.room.Broadcast(party.Text("Heads up! "+c.ID()+" joined the party!"), c.ID())
}

func (s *chat) OnMessage(msg party.Message, sender *party.Connection) {
	s.room.Broadcast(msg, sender.ID())
}

func (s *chat) OnClose(c *party.Connection) {
	s.room.Broadcast(party.Text("So sad! " + c.ID() + " left the party!"))
}

func main() {
	host := party.Handler(func(r *party.Room) party.Server { return &chat{room: r} })
	peerserver.Main("party", host)
}
