package partysocket

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors returned by the package.
var (
	// ErrClosed is returned by Send once the Socket is closed: by Close,
	// or for good after ShouldReconnect returned false or MaxRetries was
	// reached.
	ErrClosed = errors.New("partysocket: socket closed")

	// ErrQueueFull is returned by the Send that would pass
	// Options.MaxQueued; the message is not queued.
	ErrQueueFull = errors.New("partysocket: send queue full")

	// ErrConnectionTimeout is wrapped by the error of a connection attempt
	// that took longer than Options.ConnectionTimeout.
	ErrConnectionTimeout = errors.New("partysocket: connection timeout")
)

// HandshakeError is wrapped by the error of a connection attempt that the
// server answered with an HTTP status other than 101 Switching Protocols:
// for example 401 from a party.Host's BeforeConnect, 404 for an unknown
// party, or 503 while the server shuts down.
type HandshakeError struct {
	StatusCode int    // the response's status code
	Body       string // the start of the response body (at most 1 KiB)
}

func (e *HandshakeError) Error() string {
	msg := fmt.Sprintf("partysocket: handshake refused: %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}
