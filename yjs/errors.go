package yjs

import (
	"errors"
	"fmt"
)

// ErrMalformed is matched (errors.Is) by every error this package returns for
// input it cannot accept: truncated bytes, values out of range, encodings yjs
// never produces, and structures that would make a later merge or diff wrong.
// The error's text says where (the byte offset and, for updates, the client
// and struct) and why.
var ErrMalformed = errors.New("yjs: malformed input")

// decodeError is a refusal of input: where it was found and why.
type decodeError struct {
	context string // what was being read, outermost first, each ending in ": "
	offset  int    // -1 when no single byte is to blame
	reason  string
}

func (e *decodeError) Error() string {
	if e.offset < 0 {
		return fmt.Sprintf("%v: %s%s", ErrMalformed, e.context, e.reason)
	}
	return fmt.Sprintf("%v: %sat byte %d: %s", ErrMalformed, e.context, e.offset, e.reason)
}

// Is reports whether target is ErrMalformed.
func (e *decodeError) Is(target error) bool { return target == ErrMalformed }

// malformed returns a refusal that no single byte is to blame for.
func malformed(format string, args ...any) error {
	return &decodeError{offset: -1, reason: fmt.Sprintf(format, args...)}
}

// within adds what was being read to a refusal's context; other errors and
// nil are returned as they are.
func within(err error, format string, args ...any) error {
	var de *decodeError
	if errors.As(err, &de) {
		de.context = fmt.Sprintf(format, args...) + ": " + de.context
	}
	return err
}

// Errors of the room Server ([Server]), given to Options.OnError and
// returned by [Server.Apply] and [Server.Document], wrapped with what was
// refused (test them with errors.Is). A message refused with ErrMalformed
// closes its connection with 1007 (StatusInvalidPayload).
var (
	// ErrTooLarge is wrapped by the refusal of an update over
	// Options.MaxUpdateBytes, or of one that would take the document past
	// Options.MaxDocumentBytes. A client's message refused so closes its
	// connection with 1009 (StatusMessageTooBig).
	ErrTooLarge = errors.New("yjs: too large")
	// ErrUnsupported is wrapped by the refusal of a message that is not part
	// of what a client sends in the y-websocket protocol: a text message, an
	// auth message, an unknown message or sync type. Its connection is
	// closed with 1003 (unsupported data).
	ErrUnsupported = errors.New("yjs: unsupported message")
	// ErrNotStarted is returned by a Server whose OnStart has not run or
	// failed: its document is not loaded yet.
	ErrNotStarted = errors.New("yjs: server not started (its OnStart has not run, or failed)")
)
