//go:build !linux

package wire

import (
	"net"
	"syscall"
)

// rawConn returns nil: outside Linux, pings go through the writer goroutine
// and the read loop waits inside coder/websocket's Read.
func rawConn(conn net.Conn) syscall.RawConn { return nil }

func writeNonblocking(rc syscall.RawConn, p []byte) int { return 0 }
func waitReadable(rc syscall.RawConn) bool              { return false }
func readable(rc syscall.RawConn) bool                  { return true }
func takePong(rc syscall.RawConn) bool                  { return false }
