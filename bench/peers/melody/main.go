// Command melody is the guide's broadcast server written on
// github.com/olahol/melody, as a baseline for bench/compare. Melody has one
// hub for all sessions, so a room is a session key and every room broadcast is
// BroadcastFilter over all sessions. Melody's defaults are kept (a session
// buffer of 256 messages that drops on overflow) except the message size
// limit, raised from 512 B to 1 MiB like the other peers.
//
//	melody -addr 127.0.0.1:8080   # ws://127.0.0.1:8080/parties/main/{room}?_pk=id
package main

import (
	"net/http"

	"github.com/olahol/melody"

	"party/bench/internal/peerserver"
)

// member is what each session carries under the key "member".
type member struct {
	room string
	id   string
}

func memberOf(s *melody.Session) member {
	return s.MustGet("member").(member)
}

// others selects the sessions in room other than except (nil: none excluded).
func others(room string, except *melody.Session) func(*melody.Session) bool {
	return func(s *melody.Session) bool {
		return s != except && memberOf(s).room == room
	}
}

func main() {
	m := melody.New()
	m.Config.MaxMessageSize = 1 << 20

	m.HandleConnect(func(s *melody.Session) {
		me := memberOf(s)
		s.Write([]byte("Welcome, " + me.id))
		m.BroadcastFilter([]byte("Heads up! "+me.id+" joined the party!"), others(me.room, s))
	})
	m.HandleMessage(func(s *melody.Session, msg []byte) {
		m.BroadcastFilter(msg, others(memberOf(s).room, s))
	})
	m.HandleMessageBinary(func(s *melody.Session, msg []byte) {
		m.BroadcastBinaryFilter(msg, others(memberOf(s).room, s))
	})
	m.HandleDisconnect(func(s *melody.Session) {
		me := memberOf(s)
		m.BroadcastFilter([]byte("So sad! "+me.id+" left the party!"), others(me.room, nil))
	})

	chat := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("_pk")
		if id == "" {
			id = r.RemoteAddr
		}
		m.HandleRequestWithKeys(w, r, map[string]any{"member": member{room: r.PathValue("room"), id: id}})
	})
	peerserver.Main("melody", chat)
}
