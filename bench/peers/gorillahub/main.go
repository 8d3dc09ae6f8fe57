// Command gorillahub is the guide's broadcast server written the classic
// gorilla/websocket way, as the baseline for bench/compare: one hub goroutine
// owns a map of rooms, every connection has a read goroutine and a write
// goroutine joined by a buffered send channel, and each broadcast is encoded
// once as a PreparedMessage. A client whose send channel is full is dropped.
//
//	gorillahub -addr 127.0.0.1:8080   # ws://127.0.0.1:8080/parties/main/{room}?_pk=id
package main

import (
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"party/bench/internal/peerserver"
)

const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = pongWait * 9 / 10
	maxMessageSize = 1 << 20
	sendBuffer     = 256
)

type client struct {
	hub  *hub
	conn *websocket.Conn
	room string
	id   string
	send chan *websocket.PreparedMessage
}

// outbound is a message for every member of room except one (nil: nobody).
type outbound struct {
	room   string
	msg    *websocket.PreparedMessage
	except *client
}

type hub struct {
	rooms      map[string]map[*client]struct{}
	register   chan *client
	unregister chan *client
	broadcast  chan outbound
}

func newHub() *hub {
	return &hub{
		rooms:      make(map[string]map[*client]struct{}),
		register:   make(chan *client),
		unregister: make(chan *client),
		broadcast:  make(chan outbound),
	}
}

func text(s string) *websocket.PreparedMessage {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, []byte(s))
	if err != nil {
		panic(err) // only fails for invalid message types
	}
	return pm
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			members := h.rooms[c.room]
			if members == nil {
				members = make(map[*client]struct{})
				h.rooms[c.room] = members
			}
			members[c] = struct{}{}
			h.deliver(members, c, text("Welcome, "+c.id))
			h.fanOut(members, text("Heads up! "+c.id+" joined the party!"), c)
		case c := <-h.unregister:
			members := h.rooms[c.room]
			if _, ok := members[c]; !ok {
				continue // already dropped as a slow client
			}
			delete(members, c)
			close(c.send)
			if len(members) == 0 {
				delete(h.rooms, c.room)
				continue
			}
			h.fanOut(members, text("So sad! "+c.id+" left the party!"), nil)
		case b := <-h.broadcast:
			h.fanOut(h.rooms[b.room], b.msg, b.except)
		}
	}
}

func (h *hub) fanOut(members map[*client]struct{}, pm *websocket.PreparedMessage, except *client) {
	for c := range members {
		if c != except {
			h.deliver(members, c, pm)
		}
	}
}

// deliver queues pm for c, dropping c if its send buffer is full.
func (h *hub) deliver(members map[*client]struct{}, c *client, pm *websocket.PreparedMessage) {
	select {
	case c.send <- pm:
	default:
		delete(members, c)
		close(c.send)
	}
}

func (c *client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		pm, err := websocket.NewPreparedMessage(typ, data)
		if err != nil {
			return
		}
		c.hub.broadcast <- outbound{room: c.room, msg: pm, except: c}
	}
}

func (c *client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case pm, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			if err := c.conn.WritePreparedMessage(pm); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

func main() {
	h := newHub()
	go h.run()
	upgrader := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	chat := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has replied
		}
		c := &client{
			hub:  h,
			conn: conn,
			room: r.PathValue("room"),
			id:   r.URL.Query().Get("_pk"),
			send: make(chan *websocket.PreparedMessage, sendBuffer),
		}
		if c.id == "" {
			c.id = r.RemoteAddr
		}
		h.register <- c
		go c.writePump()
		go c.readPump()
	})
	peerserver.Main("gorillahub", chat)
}
