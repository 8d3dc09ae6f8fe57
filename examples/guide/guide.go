// Package guide is the PartyKit WebSocket server guide's broadcast chat as a
// party Server: a welcome for the joiner, a notice to the others, every
// message to everyone but its sender, and a notice when someone leaves.
//
// It is the one chat server of the repository: examples/chat serves it to
// browsers, the interop suite (interop/server) drives it with the npm
// partysocket client, and the bench module (bench/peers/party) measures it.
package guide

import (
	"net/http"

	"party"
)

// Chat is the guide's server; New builds one for each room.
type Chat struct{ room *party.Room }

// New returns the Chat of room r: the factory to give to party.Handler.
func New(r *party.Room) party.Server { return &Chat{room: r} }

// OnConnect welcomes c and tells everyone else that c joined.
func (s *Chat) OnConnect(c *party.Connection, r *http.Request) {
	c.Send(party.Text("Welcome, " + c.ID()))
	s.room.Broadcast(party.Text("Heads up! "+c.ID()+" joined the party!"), c.ID())
}

// OnMessage relays msg to everyone but its sender.
func (s *Chat) OnMessage(msg party.Message, sender *party.Connection) {
	s.room.Broadcast(msg, sender.ID())
}

// OnClose tells everyone left that c left.
func (s *Chat) OnClose(c *party.Connection) {
	s.room.Broadcast(party.Text("So sad! " + c.ID() + " left the party!"))
}

var (
	_ party.OnConnectHandler = (*Chat)(nil)
	_ party.OnMessageHandler = (*Chat)(nil)
	_ party.OnCloseHandler   = (*Chat)(nil)
)
