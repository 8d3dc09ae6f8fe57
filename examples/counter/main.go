// Command counter is a shared counter that survives a restart: every browser
// in a room sees the same number, "+1" adds to it, and the number is kept in
// the room's durable Storage (a FileStore), so stopping and starting the
// server loses nothing.
//
//	go run ./examples/counter            # then open http://localhost:1999
//	go run ./examples/counter -data DIR  # where the counts are kept (default ./counter-data)
//
// Each room (http://localhost:1999/?room=NAME) has its own count. A room
// also resets its count at the top of the next hour: an alarm, which fires
// even when nobody is connected and even across a restart.
package main

import (
	"embed"
	"flag"
	"log"
	"net/http"
	"strconv"
	"time"

	"party"
	"party/storage"
)

//go:embed index.html
var static embed.FS

// Counter is one room's counter.
type Counter struct {
	room *party.Room
	n    int
}

func (s *Counter) OnStart() error {
	b, err := s.room.Storage().Get("count")
	if err == nil {
		s.n, _ = strconv.Atoi(string(b))
	}
	if _, set := s.room.GetAlarm(); !set {
		return s.room.SetAlarm(time.Now().Truncate(time.Hour).Add(time.Hour))
	}
	return nil
}

func (s *Counter) OnConnect(c *party.Connection, r *http.Request) {
	c.Send(party.Text(strconv.Itoa(s.n)))
}

func (s *Counter) OnMessage(msg party.Message, sender *party.Connection) {
	if msg.String() != "+1" {
		return
	}
	s.save(s.n + 1)
}

// OnAlarm resets the count every hour.
func (s *Counter) OnAlarm() {
	s.save(0)
	s.room.SetAlarm(time.Now().Truncate(time.Hour).Add(time.Hour))
}

// save keeps n (durably: FileStore syncs before Put returns), then shows it.
func (s *Counter) save(n int) {
	if err := s.room.Storage().Put("count", []byte(strconv.Itoa(n))); err != nil {
		log.Printf("counter %s: %v", s.room.ID(), err)
		return
	}
	s.n = n
	s.room.Broadcast(party.Text(strconv.Itoa(n)))
}

// newHost returns the counter's Host, keeping its data under dir.
func newHost(dir string) (*party.Host, error) {
	store, err := storage.OpenFileStore(dir)
	if err != nil {
		return nil, err
	}
	h := party.Handler(func(r *party.Room) party.Server { return &Counter{room: r} })
	h.Storage = store
	return h, nil
}

func main() {
	addr := flag.String("addr", "localhost:1999", "address to listen on")
	dir := flag.String("data", "counter-data", "directory for the rooms' storage")
	flag.Parse()

	h, err := newHost(*dir)
	if err != nil {
		log.Fatal(err)
	}
	if err := h.ResumeAlarms(); err != nil { // hourly resets that came due while stopped
		log.Print(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/parties/", h)
	mux.Handle("GET /{$}", http.FileServerFS(static)) // index.html
	log.Printf("counter on http://%s, data in %s", *addr, *dir)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
