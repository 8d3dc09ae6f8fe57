// Command party is the guide's broadcast server (party/examples/guide) on
// the party package, for bench/compare: welcome the joiner, tell the others,
// relay every message to everyone but its sender, and announce who left.
//
//	party -addr 127.0.0.1:8080   # ws://127.0.0.1:8080/parties/main/{room}?_pk=id
package main

import (
	"party"
	"party/bench/internal/peerserver"
	"party/examples/guide"
)

func main() {
	host := party.Handler(guide.New)
	peerserver.Main("party", host)
}
