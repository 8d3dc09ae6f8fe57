// Package web is the chat page of examples/chat: index.html and its script
// chat.js, embedded, so that every chat example serves the same page
// (party/cluster's examples/chat serves it from three nodes).
//
// The page talks to the guide's server (party/examples/guide) over the
// browser's plain WebSocket, at /party/{room} on the page's own host: mount
// the Host at /party/ beside Handler.
package web

import (
	"embed"
	"net/http"
)

//go:embed index.html chat.js
var files embed.FS

// Handler serves the page at / (?room=NAME picks the room, "lobby" if
// absent; ?name=NAME the connection id) and its script at /chat.js.
func Handler() http.Handler { return http.FileServerFS(files) }
