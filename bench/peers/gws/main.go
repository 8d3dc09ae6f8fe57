// Command gws is the guide's broadcast server written on
// github.com/lxzan/gws v1.8.9, as a baseline for bench/compare, the way gws's
// README recommends: an event handler type given to gws.NewUpgrader, each
// connection's ReadLoop on a goroutine of its own, and a gws.Broadcaster (the
// frame built once) for every room broadcast.
//
// gws has no rooms: here a room is a set of connections under a mutex, held
// while a broadcast is queued so that every member gets a room's messages
// in the same order and a joiner its welcome first. Writes go through each
// connection's write queue, which has no bound: gws drops nothing and closes
// nobody for being slow, so a reader that falls behind keeps its backlog in
// the server's memory.
//
// Options are gws's defaults except a 1 MiB message limit, like the other
// peers, and its panic recovery. Two settings of the README's example stay
// off: ParallelEnabled handles one connection's messages concurrently, and
// the guide's chat relays a sender's messages in order; compression is off
// for every peer (the load clients do not ask for it). Keepalive is the
// gorilla hub's: a ping every 54 s, and a connection's deadline 60 s after
// it opened or last answered one.
//
//	gws -addr 127.0.0.1:8080   # ws://127.0.0.1:8080/parties/main/{room}?_pk=id
package main

import (
	"net/http"
	"sync"
	"time"

	"github.com/lxzan/gws"

	"party/bench/internal/peerserver"
)

const (
	pongWait       = 60 * time.Second
	pingPeriod     = pongWait * 9 / 10
	maxMessageSize = 1 << 20
)

// member is what each connection's session holds under the key "member".
// Only the connection's own read goroutine uses it after the upgrade.
type member struct {
	id       string
	roomName string
	room     *room // set by OnOpen
}

func memberOf(socket *gws.Conn) *member {
	m, _ := socket.Session().Load("member")
	return m.(*member)
}

// room is the connections that share a room id.
type room struct {
	mu      sync.Mutex
	members map[*gws.Conn]struct{}
}

// broadcastLocked queues payload for every member but except (nil: none),
// building the frame once. The caller holds r.mu.
func (r *room) broadcastLocked(op gws.Opcode, payload []byte, except *gws.Conn) {
	b := gws.NewBroadcaster(op, payload)
	defer b.Close()
	for c := range r.members {
		if c != except {
			_ = b.Broadcast(c) // an error closes c; its OnClose removes it
		}
	}
}

// chat is the event handler: the guide's server over all rooms.
type chat struct {
	mu    sync.Mutex // taken before a room's mu
	rooms map[string]*room
}

func (h *chat) OnOpen(socket *gws.Conn) {
	_ = socket.SetDeadline(time.Now().Add(pongWait))
	me := memberOf(socket)
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[me.roomName]
	if r == nil {
		r = &room{members: make(map[*gws.Conn]struct{})}
		h.rooms[me.roomName] = r
	}
	me.room = r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members[socket] = struct{}{}
	socket.WriteAsync(gws.OpcodeText, []byte("Welcome, "+me.id), nil)
	r.broadcastLocked(gws.OpcodeText, []byte("Heads up! "+me.id+" joined the party!"), socket)
}

func (h *chat) OnClose(socket *gws.Conn, err error) {
	me := memberOf(socket)
	if me.room == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := me.room
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.members, socket)
	if len(r.members) == 0 {
		delete(h.rooms, me.roomName)
		return
	}
	r.broadcastLocked(gws.OpcodeText, []byte("So sad! "+me.id+" left the party!"), nil)
}

func (h *chat) OnPing(socket *gws.Conn, payload []byte) {
	_ = socket.WritePong(payload)
}

func (h *chat) OnPong(socket *gws.Conn, payload []byte) {
	_ = socket.SetDeadline(time.Now().Add(pongWait))
}

// OnMessage relays the message to the sender's room. Message.Close returns
// its buffer to gws's pool: the Broadcaster copied it into the frame when it
// built it, at its first Broadcast.
func (h *chat) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	r := memberOf(socket).room
	r.mu.Lock()
	r.broadcastLocked(message.Opcode, message.Bytes(), socket)
	r.mu.Unlock()
}

// pingAll queues a ping for every connection every pingPeriod.
func (h *chat) pingAll() {
	for range time.Tick(pingPeriod) {
		h.mu.Lock()
		for _, r := range h.rooms {
			r.mu.Lock()
			for c := range r.members {
				c.WriteAsync(gws.OpcodePing, nil, nil)
			}
			r.mu.Unlock()
		}
		h.mu.Unlock()
	}
}

func main() {
	h := &chat{rooms: make(map[string]*room)}
	go h.pingAll()
	upgrader := gws.NewUpgrader(h, &gws.ServerOption{
		ReadMaxPayloadSize: maxMessageSize,
		Recovery:           gws.Recovery,
		Authorize: func(r *http.Request, session gws.SessionStorage) bool {
			id := r.URL.Query().Get("_pk")
			if id == "" {
				id = r.RemoteAddr
			}
			session.Store("member", &member{id: id, roomName: r.PathValue("room")})
			return true
		},
	})
	chat := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		socket, err := upgrader.Upgrade(w, r)
		if err != nil {
			return // Upgrade has replied
		}
		go socket.ReadLoop()
	})
	peerserver.Main("gws", chat)
}
