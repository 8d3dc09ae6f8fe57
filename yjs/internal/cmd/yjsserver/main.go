// Command yjsserver serves party/yjs rooms for the interop tests in
// interop/yjs (y-websocket's WebsocketProvider against our Server). It
// prints "listening on http://{addr}" once it accepts connections, and shuts
// down cleanly on SIGTERM or SIGINT.
//
//	ws://{addr}/parties/main/{room}   the y-websocket protocol (yjs.NewServer)
//	GET http://{addr}/doc/{room}      the room's merged document (Server.Document), as bytes
//
// Flags choose the data directory (a storage.FileStore; none keeps rooms in
// memory), the token that makes a connection read-only (?token=…), the
// persistence mode and the limits.
package main

import (
	"flag"
	"log"
	"net/http"

	"party"
	"party/internal/graceful"
	"party/storage"
	"party/yjs"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	data := flag.String("data", "", "directory of a FileStore for the rooms (empty: in memory)")
	readOnly := flag.String("readonly-token", "", "connections with ?token=VALUE are read-only (empty: none)")
	persist := flag.String("persist", "snapshot", "persistence mode: snapshot or history")
	opts := &yjs.Options{}
	flag.IntVar(&opts.MaxUpdateBytes, "max-update", 0, "Options.MaxUpdateBytes (0: the default)")
	flag.IntVar(&opts.MaxDocumentBytes, "max-doc", 0, "Options.MaxDocumentBytes (0: the default)")
	flag.IntVar(&opts.MaxLogUpdates, "max-log-updates", 0, "Options.MaxLogUpdates (0: the default)")
	readLimit := flag.Int64("read-limit", 0, "Host.ReadLimit (0: the default)")
	flag.Parse()

	switch *persist {
	case "snapshot":
	case "history":
		opts.Persistence = yjs.PersistHistory
	default:
		log.Fatalf("-persist %q: want snapshot or history", *persist)
	}
	if *readOnly != "" {
		opts.ReadOnly = func(c *party.Connection, r *http.Request) bool { return r.URL.Query().Get("token") == *readOnly }
	}
	h := party.Handler(func(r *party.Room) party.Server { return yjs.NewServer(r, opts) })
	h.ReadLimit = *readLimit
	if *data != "" {
		store, err := storage.OpenFileStore(*data)
		if err != nil {
			log.Fatal(err)
		}
		h.Storage = store
	}

	mux := http.NewServeMux()
	mux.Handle("/parties/", h)
	mux.HandleFunc("GET /doc/{room}", func(w http.ResponseWriter, r *http.Request) {
		var doc []byte
		err := h.Call(r.Context(), party.DefaultParty, r.PathValue("room"), func(s party.Server) (err error) {
			doc, err = s.(*yjs.Server).Document()
			return err
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(doc)
	})
	if err := graceful.Serve(*addr, mux, h); err != nil {
		log.Fatal(err)
	}
}
