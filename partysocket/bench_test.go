package partysocket_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/coder/websocket"

	"party"
	"party/partysocket"
)

// echo sends every message back to its sender.
type echo struct{}

func (echo) OnMessage(msg party.Message, sender *party.Connection) { sender.Send(msg) }

// BenchmarkRoundTrip measures one message to a party server and back, one
// at a time: through a Socket (queue, writer goroutine, callback) and, as
// the baseline, through a bare coder/websocket connection.
func BenchmarkRoundTrip(b *testing.B) {
	msg := party.Text("hello, room")
	b.Run("Socket", func(b *testing.B) {
		srv := startServer(b, func(*party.Room) party.Server { return echo{} }, nil)
		back := make(chan struct{}, 1)
		s, err := partysocket.Dial(context.Background(), partysocket.Options{
			Host:      srv.addr,
			Room:      "bench",
			OnMessage: func(*partysocket.Socket, party.Message) { back <- struct{}{} },
		})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := s.Send(msg); err != nil {
				b.Fatal(err)
			}
			<-back
		}
	})
	b.Run("coder-websocket", func(b *testing.B) {
		srv := startServer(b, func(*party.Room) party.Server { return echo{} }, nil)
		ctx := context.Background()
		c, _, err := websocket.Dial(ctx, "ws://"+srv.addr+"/parties/main/bench", &websocket.DialOptions{HTTPClient: &http.Client{}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := c.Write(ctx, websocket.MessageText, msg.Bytes()); err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.Read(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
