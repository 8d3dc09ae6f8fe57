// Package yjsapp is what yjs/internal/cmd/yjsserver serves for the interop
// tests in interop/yjs: party/yjs rooms for y-websocket's WebsocketProvider,
// and each room's document over HTTP. yjsserver serves it on one Host with
// a storage.FileStore; the cluster module's interopcluster command (-app
// yjs) serves it on every node of a cluster, its Host joined to the cluster,
// the rooms' storage on JetStream.
//
//	ws://{addr}/parties/main/{room}   the y-websocket protocol (yjs.NewServer)
//	GET http://{addr}/doc/{room}      the room's merged document (Server.Document), as bytes
//
// The document is read in the room's turn, through Host.Fetch and the
// room's OnRequest (which also answers a plain GET of
// /parties/main/{room}), so that on a cluster any node answers it from the
// room's owner.
package yjsapp

import (
	"flag"
	"fmt"
	"io"
	"net/http"

	"party"
	"party/yjs"
)

// Options configure [New]. The zero value serves every room writable, with
// party/yjs's and party's defaults.
type Options struct {
	// ReadOnlyToken, if not empty, makes a connection with ?token=VALUE
	// read-only (yjs.Options.ReadOnly).
	ReadOnlyToken string
	// Yjs are the rooms' options; New sets its ReadOnly from ReadOnlyToken.
	Yjs yjs.Options
	// ReadLimit is the Host's ReadLimit (zero: party's default).
	ReadLimit int64
}

// Flags defines the command-line flags that set o on fs: -readonly-token,
// -persist (snapshot or history), -max-update, -max-doc, -max-log-updates
// and -read-limit.
func (o *Options) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.ReadOnlyToken, "readonly-token", "", "connections with ?token=VALUE are read-only (empty: none)")
	fs.Func("persist", "persistence mode: snapshot (the default) or history", func(s string) error {
		switch s {
		case "snapshot":
			o.Yjs.Persistence = yjs.PersistSnapshot
		case "history":
			o.Yjs.Persistence = yjs.PersistHistory
		default:
			return fmt.Errorf("want snapshot or history, not %q", s)
		}
		return nil
	})
	fs.IntVar(&o.Yjs.MaxUpdateBytes, "max-update", 0, "Options.MaxUpdateBytes (0: the default)")
	fs.IntVar(&o.Yjs.MaxDocumentBytes, "max-doc", 0, "Options.MaxDocumentBytes (0: the default)")
	fs.IntVar(&o.Yjs.MaxLogUpdates, "max-log-updates", 0, "Options.MaxLogUpdates (0: the default)")
	fs.Int64Var(&o.ReadLimit, "read-limit", 0, "Host.ReadLimit (0: the default)")
}

// App is one instance of the server: its Host and the mux that routes to
// it.
type App struct {
	// Handler routes the URLs of the package documentation.
	Handler http.Handler
	// Host runs the rooms, of party.DefaultParty ("main"). It has no
	// Storage: set one (or join it to a cluster) before it serves.
	Host *party.Host
}

// New builds an App.
func New(o Options) *App {
	opts := o.Yjs
	if o.ReadOnlyToken != "" {
		opts.ReadOnly = func(c *party.Connection, r *http.Request) bool {
			return r.URL.Query().Get("token") == o.ReadOnlyToken
		}
	}
	h := party.Handler(func(r *party.Room) party.Server { return Room{yjs.NewServer(r, &opts)} })
	h.ReadLimit = o.ReadLimit

	mux := http.NewServeMux()
	mux.Handle("/parties/", h)
	mux.HandleFunc("GET /doc/{room}", func(w http.ResponseWriter, r *http.Request) {
		resp, err := h.Fetch(party.DefaultParty, r.PathValue("room"), r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	return &App{Handler: mux, Host: h}
}

// Room is a room's Server: party/yjs's, which it embeds, and an OnRequest
// that answers GET with the merged document.
type Room struct{ *yjs.Server }

var _ party.OnRequestHandler = Room{}

// OnRequest answers GET with the room's merged document (Server.Document),
// as bytes, and any other method with 405.
func (s Room) OnRequest(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	doc, err := s.Document()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(doc)
}
