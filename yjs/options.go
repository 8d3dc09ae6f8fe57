package yjs

import (
	"math"
	"net/http"
	"time"

	"party"
	"party/storage"
)

// Persistence says when a room's update log is compacted into its snapshot
// (see [Options.Persistence]). Neither mode collects garbage: without a
// document model, deleted content stays in the merged document (as
// Y.mergeUpdates keeps it).
type Persistence uint8

const (
	// PersistSnapshot compacts the log when the last connection leaves the
	// room, and whenever it passes Options.MaxLogUpdates or
	// Options.MaxLogBytes: y-partykit's {mode: "snapshot"}. It is the zero
	// value, and the default.
	PersistSnapshot Persistence = iota
	// PersistHistory keeps every update in the log until the log passes
	// Options.MaxLogUpdates or Options.MaxLogBytes: y-partykit's
	// {mode: "history", maxUpdates, maxBytes}, except that y-partykit
	// compacts only when the last connection leaves, and this as soon as
	// the log passes a limit.
	PersistHistory
)

// Defaults for the [Options] fields whose zero value means "use the default".
const (
	DefaultMaxUpdateBytes   = storage.MaxValueLen // 16 MiB: the Host's ReadLimit (1 MiB by default) binds first
	DefaultMaxDocumentBytes = 32 << 20            // 32 MiB
	DefaultMaxLogUpdates    = 1000                // updates logged before a compaction
	DefaultMaxLogBytes      = 10_000_000          // 10 MB, y-partykit's largest maxBytes
	DefaultOnChangeWait     = 2 * time.Second     // y-partykit's callback debounceWait
	DefaultOnChangeMaxWait  = 10 * time.Second    // y-partykit's callback debounceMaxWait

	// MaxDocumentBytesLimit is the largest MaxDocumentBytes: a compacted
	// document must fit in one storage.Batch. Larger values are lowered to it.
	MaxDocumentBytesLimit = 48 << 20
)

// Options configure a [Server]. The zero value of every field means its
// default; a nil *Options means all defaults.
type Options struct {
	// ReadOnly, if set, is asked once per connection, before anything is
	// sent to it, whether the connection may only read: its sync step 1 is
	// answered, it receives every change and awareness state and may send
	// its own awareness, but its sync step 2 and updates are dropped. The
	// first time it sends a change the document lacks, it gets the
	// y-protocols auth message "permission denied" with a reason
	// (y-websocket's provider logs it; y-partykit drops silently). r is the
	// upgrade request (or the one Host.BeforeConnect returned). It runs in
	// the room's turn. Nil means every connection may write.
	ReadOnly func(c *party.Connection, r *http.Request) bool

	// Load, if set, gives the initial document of a room whose storage
	// holds none, as an encoded v1 update (Y.encodeStateAsUpdate of a
	// document); nil or empty means none. It runs in OnStart, in the room's
	// turn. What it returns is validated and stored as the room's snapshot,
	// so it is called once per room, not once per start; an error fails
	// OnStart (and so the request that started the room; the next retries).
	Load func() ([]byte, error)

	// OnChange, if set, is called with the merged document (an encoded v1
	// update the callee owns) after changes: once changes have paused for
	// OnChangeWait, and at least every OnChangeMaxWait while they go on, as
	// y-partykit's callback. It runs on a goroutine of its own, not in the
	// room's turn (it may take its time, and may call Document or Apply),
	// never two at a time for one room, each call seeing the document at
	// least as new as the one before. When the last connection leaves the
	// room, a pending call is made at once, and OnClose waits for it, so
	// that Host.Shutdown does not return before it. A change made while no
	// connection is open (Apply through Host.Call) is reported by the
	// timer, after the room may have been dropped.
	OnChange func(doc []byte)
	// OnChangeWait and OnChangeMaxWait time OnChange. Zero means
	// DefaultOnChangeWait (2s) and DefaultOnChangeMaxWait (10s).
	OnChangeWait, OnChangeMaxWait time.Duration

	// OnError, if set, receives what the Server refuses or fails at: a
	// client's message refused (c is its connection, which is being closed;
	// the error wraps ErrMalformed, ErrTooLarge or ErrUnsupported) or not
	// stored (the error wraps the Storage's), and a compaction or OnChange
	// merge that failed (c is nil; the document is intact). It runs outside
	// the Server's lock, in the room's turn when c is not nil. Nil means
	// such errors are logged with slog.Default at Warn level.
	OnError func(c *party.Connection, err error)

	// Persistence chooses when the update log is compacted: PersistSnapshot
	// (the default) or PersistHistory.
	Persistence Persistence
	// MaxLogUpdates and MaxLogBytes bound the update log: the update that
	// takes it past either is followed by a compaction. Zero means
	// DefaultMaxLogUpdates (1000) and DefaultMaxLogBytes (10 MB).
	MaxLogUpdates int
	MaxLogBytes   int

	// MaxUpdateBytes is the largest update accepted, in bytes, from a
	// client (a sync step 2 or update) or from Apply. A larger one is
	// refused with ErrTooLarge (a client's connection is closed with 1009).
	// Zero means DefaultMaxUpdateBytes; larger than storage.MaxValueLen
	// means storage.MaxValueLen. Messages over Host.ReadLimit never reach
	// the Server: the Host closes their connections with 1009 itself.
	MaxUpdateBytes int
	// MaxDocumentBytes bounds the document: an update that would take it
	// past the limit is refused with ErrTooLarge (a client's connection is
	// closed with 1009). The document's size is that of its merge, counting
	// the updates accepted since the last merge at their own sizes; before
	// refusing, the Server merges them to measure exactly. A stored
	// document already larger (the limit was lowered) is served, and takes
	// no more updates. Zero means DefaultMaxDocumentBytes (32 MiB); larger
	// than MaxDocumentBytesLimit means MaxDocumentBytesLimit.
	MaxDocumentBytes int

	clock clock // time for OnChange; tests set a fake
}

// withDefaults returns a copy of o (which may be nil) with defaults filled in.
func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	set := func(v *int, def, limit int) {
		if *v <= 0 {
			*v = def
		}
		*v = min(*v, limit)
	}
	set(&out.MaxUpdateBytes, DefaultMaxUpdateBytes, storage.MaxValueLen)
	set(&out.MaxDocumentBytes, DefaultMaxDocumentBytes, MaxDocumentBytesLimit)
	set(&out.MaxLogUpdates, DefaultMaxLogUpdates, math.MaxInt)
	set(&out.MaxLogBytes, DefaultMaxLogBytes, math.MaxInt)
	if out.OnChangeWait <= 0 {
		out.OnChangeWait = DefaultOnChangeWait
	}
	if out.OnChangeMaxWait <= 0 {
		out.OnChangeMaxWait = DefaultOnChangeMaxWait
	}
	if out.clock == nil {
		out.clock = realClock{}
	}
	return out
}
