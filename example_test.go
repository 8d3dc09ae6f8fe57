package party_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/coder/websocket"

	"party"
)

// Chat is the PartyKit guide's broadcast server.
type Chat struct{ room *party.Room }

func (s *Chat) OnConnect(c *party.Connection, r *http.Request) {
	c.Send(party.Text("Welcome, " + c.ID()))
	s.room.Broadcast(party.Text("Heads up! "+c.ID()+" joined the party!"), c.ID())
}

func (s *Chat) OnMessage(msg party.Message, sender *party.Connection) {
	s.room.Broadcast(msg, sender.ID())
}

func (s *Chat) OnClose(c *party.Connection) {
	s.room.Broadcast(party.Text("So sad! " + c.ID() + " left the party!"))
}

// Chat's handlers, checked at compile time: a wrong signature (say
// OnMessage(string, *party.Connection)) is an error here, not a handler that
// is silently never called.
var (
	_ party.OnConnectHandler = (*Chat)(nil)
	_ party.OnMessageHandler = (*Chat)(nil)
	_ party.OnCloseHandler   = (*Chat)(nil)
)

// The guide's server, with two real clients in one room.
func Example() {
	mux := http.NewServeMux()
	h := party.Handler(func(r *party.Room) party.Server { return &Chat{room: r} })
	mux.Handle("/party/", h)   // the guide's URLs
	mux.Handle("/parties/", h) // partysocket's URLs
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	read := func(name string, c *websocket.Conn) {
		_, b, _ := c.Read(ctx)
		fmt.Printf("%s sees: %s\n", name, b)
	}

	alice, _, _ := websocket.Dial(ctx, url+"/parties/main/my-room?_pk=alice", nil)
	read("alice", alice)
	bob, _, _ := websocket.Dial(ctx, url+"/party/my-room?_pk=bob", nil)
	read("bob", bob)
	read("alice", alice)

	alice.Write(ctx, websocket.MessageText, []byte("Hello everyone"))
	read("bob", bob)

	alice.Close(websocket.StatusNormalClosure, "bye")
	read("bob", bob)
	bob.Close(websocket.StatusNormalClosure, "bye")

	// Output:
	// alice sees: Welcome, alice
	// bob sees: Welcome, bob
	// alice sees: Heads up! bob joined the party!
	// bob sees: Hello everyone
	// bob sees: So sad! alice left the party!
}
