// Command chat is the PartyKit guide's broadcast chat (examples/guide),
// served with its own web page.
//
//	go run ./examples/chat
//
// Then open http://localhost:1999/?room=lobby in two tabs and talk. The room
// is named in the page's URL (?room=NAME, "lobby" if absent; ?name=NAME picks
// your name): tabs on the same ?room= share it, other rooms never see it. The
// page (package examples/chat/web) is a few lines of script (chat.js) over
// the browser's plain WebSocket, connected to /party/{room}; partysocket
// clients reach the same rooms at /parties/main/{room}.
//
// With -inspector, the live inspector (party's Host.Inspector) is served at
// /debug/party/: the rooms, their connections and the metrics. It shows
// connection ids and client addresses, so it is off by default; chat binds
// localhost unless -addr says otherwise.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"party"
	"party/examples/chat/web"
	"party/examples/guide"
)

// newMux serves the page and mounts h on both URL forms.
func newMux(h *party.Host) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/party/", h)       // the guide's URLs: /party/{room} (the page uses these)
	mux.Handle("/parties/", h)     // partysocket's URLs: /parties/main/{room}
	mux.Handle("/", web.Handler()) // the page: index.html and chat.js
	return mux
}

func main() {
	addr := flag.String("addr", "localhost:1999", "address to listen on")
	inspector := flag.Bool("inspector", false, "serve the live inspector at /debug/party/ (it shows connection ids and client addresses)")
	flag.Parse()

	h := party.Handler(guide.New)
	mux := newMux(h)
	if *inspector {
		mux.Handle("/debug/party/", h.Inspector())
	}
	srv := &http.Server{Handler: mux}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("chat: open http://%s/?room=lobby in two tabs", ln.Addr())
	if *inspector {
		log.Printf("chat: the inspector is at http://%s/debug/party/", ln.Addr())
	}
	go srv.Serve(ln)

	// On Ctrl-C (or SIGTERM): stop accepting, then close every WebSocket with
	// 1012 (service restart), which tells clients to reconnect.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	<-ctx.Done()
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	h.Shutdown(ctx)
}
