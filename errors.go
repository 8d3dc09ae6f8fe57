package party

import (
	"errors"
	"fmt"
)

// Errors returned by the package.
var (
	// ErrConnectionClosed is returned by Send on a connection that is closed
	// or closing.
	ErrConnectionClosed = errors.New("party: connection closed")
	// ErrSendQueueFull is returned by the Send that overflowed the
	// connection's send queue; the connection is then closed with
	// [StatusPolicyViolation].
	ErrSendQueueFull = errors.New("party: send queue full")
	// ErrHandlerPanic is wrapped by the error given to OnError when a handler
	// panicked, and by the error of a [Host.Call] whose function panicked.
	ErrHandlerPanic = errors.New("party: handler panicked")
	// ErrShutdown is returned when the Host is shut down.
	ErrShutdown = errors.New("party: host shut down")
	// ErrDeadlock is returned by [Room.Call] and [Room.Fetch] when waiting for
	// the target room would close a cycle of rooms waiting for each other
	// (room A's handler calls B while B's handler calls A). The call that
	// would close the cycle fails at once; the others proceed.
	ErrDeadlock = errors.New("party: call would deadlock: the rooms are waiting for each other")
	// ErrRoomGone is returned when a room that has been dropped (idle, or by
	// Shutdown), or has not started yet, is asked to do something that needs
	// it live.
	ErrRoomGone = errors.New("party: room is not live")
)

// Why a connection failed, given to OnError.
var (
	errInvalidUTF8 = errors.New("party: text message is not valid UTF-8")
	errKeepalive   = errors.New("party: keepalive timeout: no pong within Host.PingTimeout")
	errWriteStuck  = errors.New("party: write timeout: a write took longer than Host.WriteTimeout")
	errSlowClient  = errors.New("party: slow consumer: its send queue stayed over its high-water mark for Host.SlowClientTimeout")
)

// HTTPError refuses a request from [Host.BeforeConnect] or
// [Host.BeforeRequest] with the given status and message.
type HTTPError struct {
	Status  int    // HTTP status code, for example 401
	Message string // response body
}

func (e *HTTPError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }
