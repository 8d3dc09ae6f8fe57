package yjs

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error this package returns for input it
// cannot accept: truncated bytes, values out of range, encodings yjs never
// produces, and structures that would make a later merge or diff wrong. The
// wrapping error says where (the byte offset and, for updates, the client and
// struct) and why. Test with errors.Is(err, ErrMalformed).
var ErrMalformed = errors.New("yjs: malformed input")

// malformed returns an error wrapping ErrMalformed.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
