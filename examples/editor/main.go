// Command editor serves a collaborative text editor: CodeMirror 6 bound to a
// Yjs document (y-codemirror.next), kept in sync by y-partykit's provider
// with a room of this server, which runs party/yjs's Server and keeps every
// document in a FileStore, so a restart loses nothing.
//
//	go run ./examples/editor               # then open http://127.0.0.1:1999/?room=welcome in two tabs
//	go run ./examples/editor -data DIR     # where the documents are kept (default ./editor-data)
//	go run ./examples/editor -addr :8080   # another address
//
// Each document is a room of party main: the page's provider connects to
// ws://{host}/parties/main/{room}, so y-partykit's YPartyKitProvider needs
// only the host and the room, and y-websocket's WebsocketProvider reaches the
// same room with the server URL ws://{host}/parties/main. The page takes
// ?room=NAME (default "welcome") and ?name=NAME (the name the others see by
// your cursor).
//
// The page's script is static/editor.js, a bundle of web/main.js and its npm
// packages committed with this file and embedded in the binary: the page
// needs nothing but this server. web/build.sh rebuilds it.
package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"party"
	"party/storage"
	"party/yjs"
)

//go:embed index.html static
var files embed.FS

// newHost returns the editor's Host: every room a yjs.Server, its document
// kept in a FileStore under dir.
func newHost(dir string) (*party.Host, error) {
	store, err := storage.OpenFileStore(dir)
	if err != nil {
		return nil, err
	}
	h := party.Handler(func(r *party.Room) party.Server { return yjs.NewServer(r, nil) })
	h.Storage = store
	return h, nil
}

// newMux serves the page at /, its script and styles under /static/, and
// the rooms at /parties/main/{room}.
func newMux(h *party.Host) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/parties/", h)
	mux.Handle("GET /{$}", http.FileServerFS(files))
	mux.Handle("GET /static/", http.FileServerFS(files))
	return mux
}

func main() {
	addr := flag.String("addr", "127.0.0.1:1999", "address to listen on")
	dir := flag.String("data", "editor-data", "directory where the FileStore keeps the documents")
	flag.Parse()

	h, err := newHost(*dir)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: newMux(h), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	fmt.Printf("editor: open http://%s/?room=welcome in two tabs (documents in %s)\n", ln.Addr(), *dir)

	// On Ctrl-C (or SIGTERM): stop accepting, then close every WebSocket
	// with 1012 (service restart), which tells the providers to reconnect to
	// the next run. The rooms' last updates are already stored: the Server
	// stores each one before anyone else sees it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	<-ctx.Done()
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	h.Shutdown(ctx)
}
