// Command yjsserver serves party/yjs rooms for the interop tests in
// interop/yjs (y-websocket's WebsocketProvider against our Server): what
// party/internal/yjsapp serves, on one Host. It prints
// "listening on http://{addr}" once it accepts connections, and shuts down
// cleanly on SIGTERM or SIGINT.
//
//	ws://{addr}/parties/main/{room}   the y-websocket protocol (yjs.NewServer)
//	GET http://{addr}/doc/{room}      the room's merged document (Server.Document), as bytes
//
// Flags choose the data directory (a storage.FileStore; none keeps rooms in
// memory), the token that makes a connection read-only (?token=…), the
// persistence mode and the limits (yjsapp.Options.Flags).
package main

import (
	"flag"
	"log"

	"party/internal/graceful"
	"party/internal/yjsapp"
	"party/storage"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	data := flag.String("data", "", "directory of a FileStore for the rooms (empty: in memory)")
	var o yjsapp.Options
	o.Flags(flag.CommandLine)
	flag.Parse()

	a := yjsapp.New(o)
	if *data != "" {
		store, err := storage.OpenFileStore(*data)
		if err != nil {
			log.Fatal(err)
		}
		a.Host.Storage = store
	}
	if err := graceful.Serve(*addr, a.Handler, a.Host); err != nil {
		log.Fatal(err)
	}
}
