package partysocket_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"party"
	"party/partysocket"
)

// guideRoom is the PartyKit guide's server.
type guideRoom struct{ room *party.Room }

func (s *guideRoom) OnConnect(c *party.Connection, r *http.Request) {
	c.Send(party.Text("Welcome, " + c.ID()))
	s.room.Broadcast(party.Text("Heads up! "+c.ID()+" joined the party!"), c.ID())
}

func (s *guideRoom) OnMessage(msg party.Message, sender *party.Connection) {
	s.room.Broadcast(msg, sender.ID())
}

func (s *guideRoom) OnRequest(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "room %s has %d connections", s.room.ID(), s.room.ConnectionCount())
}

// Two Go clients in the guide's room: each is welcomed, the first hears
// that the second joined, and a message reaches everyone but its sender.
func Example() {
	h := party.Handler(func(r *party.Room) party.Server { return &guideRoom{room: r} })
	srv := httptest.NewServer(h) // any http.Server or mux will do
	defer srv.Close()
	defer h.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	join := func(id string) (*partysocket.Socket, <-chan string) {
		received := make(chan string, 10)
		s, err := partysocket.Dial(ctx, partysocket.Options{
			Host: srv.URL, // 127.0.0.1:port, a local address: ws://, not wss://
			Room: "my-room",
			ID:   id, // optional: a random id is chosen otherwise
			OnMessage: func(s *partysocket.Socket, msg party.Message) {
				received <- msg.String()
			},
		})
		if err != nil {
			log.Fatal(err)
		}
		return s, received
	}

	alice, toAlice := join("alice")
	defer alice.Close()
	fmt.Println("alice:", <-toAlice)

	bob, toBob := join("bob")
	defer bob.Close()
	fmt.Println("bob:", <-toBob)
	fmt.Println("alice:", <-toAlice)

	bob.Send(party.Text("Hello everyone"))
	fmt.Println("alice:", <-toAlice)
	// Output:
	// alice: Welcome, alice
	// bob: Welcome, bob
	// alice: Heads up! bob joined the party!
	// alice: Hello everyone
}

// Fetch sends an HTTP request to the room's OnRequest, at the same URL the
// socket uses (without its _pk).
func ExampleFetch() {
	h := party.Handler(func(r *party.Room) party.Server { return &guideRoom{room: r} })
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())

	resp, err := partysocket.Fetch(context.Background(), partysocket.Options{
		Host: srv.URL,
		Room: "my-room",
	}, http.MethodGet, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 room my-room has 0 connections
}

// A bot that authenticates with a fresh token on every connection, stops
// for good when the server closes it with 4001, and reconnects otherwise,
// with partysocket's default delays.
func ExampleOptions() {
	token := func(ctx context.Context) (string, error) { return "t0ken", nil } // your token source

	s, err := partysocket.New(partysocket.Options{
		Host:  "chat.example.com", // wss://, a public host
		Party: "chat",
		Room:  "lobby",
		QueryFunc: func(ctx context.Context) (url.Values, error) {
			t, err := token(ctx)
			return url.Values{"token": {t}}, err
		},
		ShouldReconnect: func(ev partysocket.CloseEvent) bool {
			return ev.Code != 4001 // "unauthorized": retrying will not help
		},
		OnMessage: func(s *partysocket.Socket, msg party.Message) {
			if strings.HasPrefix(msg.String(), "ping") {
				s.Send(party.Text("pong"))
			}
		},
		OnClose: func(s *partysocket.Socket, ev partysocket.CloseEvent) {
			log.Printf("closed: %d %s", ev.Code, ev.Reason)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	<-s.Done() // until the server says 4001
}
