package partysocket

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"party/protocol"
)

// Defaults used for the Options fields whose zero value means "use the
// default". The reconnection defaults are the npm partysocket client's.
const (
	DefaultParty             = "main"
	DefaultPrefix            = "parties"
	DefaultMinReconnectDelay = 3 * time.Second
	DefaultMaxReconnectDelay = 10 * time.Second
	DefaultReconnectGrowth   = 1.3
	DefaultMinUptime         = 5 * time.Second
	DefaultConnectionTimeout = 4 * time.Second
	DefaultMaxQueued         = 1024
	DefaultReadLimit         = 16 << 20 // 16 MiB
)

// Options configures a Socket. Host, and Room or BasePath, are required;
// the zero value of every other field means its default. Options are read
// once, by New or Dial: changing them afterwards has no effect.
type Options struct {
	// Host is the server's host and port, for example "localhost:1999" or
	// "my-party.example.com". A leading "http://", "https://", "ws://" or
	// "wss://" and one trailing "/" are removed, as partysocket does: the
	// scheme comes from Protocol, not from Host.
	Host string

	// Protocol chooses the scheme: "ws" or "http" for plain connections,
	// "wss" or "https" for TLS (the socket uses ws/wss, Fetch http/https).
	// Empty means partysocket's rule: plain for hosts starting with
	// "localhost:", "127.0.0.1:", "[::ffff:7f00:1]:", "192.168.", "10." or
	// "172.16" to "172.31" (compared as strings, as partysocket does), TLS
	// for every other host.
	Protocol string

	// Room is the room to connect to. It is sent as written, except that
	// spaces, control and non-ASCII characters, and " # < > ? ` { } are
	// percent-encoded, as a browser's URL parser does, so a Go client and a
	// browser given the same name reach the same room. A "/" is not
	// encoded: it starts a sub-path, as with partysocket.
	Room string

	// Party is the party's name. Empty means "main".
	Party string

	// Prefix is the first path segment. Empty means "parties", giving
	// /parties/{party}/{room}.
	Prefix string

	// BasePath, if set, replaces the whole /{prefix}/{party}/{room} path
	// (for a server mounted on its own route). A leading "/" is optional.
	BasePath string

	// Path is appended to the room's path after a "/", for a sub-path the
	// server routes to the same room. It must not start with "/".
	Path string

	// ID is the connection id, sent as the first _pk query parameter and
	// kept across reconnects, so the server sees the same connection id
	// after every reconnect. Empty means a random id (an xid) chosen by
	// New, which Socket.ID returns.
	ID string

	// Query holds query parameters added after _pk to every connection URL
	// and to Fetch. A _pk given here comes second; the server reads the
	// first.
	Query url.Values

	// QueryFunc, if set, runs before every connection attempt (and every
	// Fetch) and its result is added after Query: the place to fetch a
	// fresh token. An error fails the attempt, which is retried like any
	// failed attempt. ctx ends when the Socket is closed.
	QueryFunc func(ctx context.Context) (url.Values, error)

	// Header holds HTTP headers sent with every WebSocket handshake and
	// Fetch (a Go client can set them; a browser cannot), for example an
	// Authorization header.
	Header http.Header

	// Subprotocols lists the WebSocket subprotocols offered to the server
	// (partysocket's protocols option, sent as Sec-WebSocket-Protocol).
	Subprotocols []string

	// HTTPClient makes the WebSocket handshakes and Fetch requests. Its
	// Timeout, if any, bounds each handshake. Nil means, for a Socket, a
	// client of its own (http.DefaultTransport's settings without
	// keep-alives), released by Close, and for Fetch http.DefaultClient.
	// A client given here may keep connections of refused handshakes
	// (and their goroutines) in its pool after Close.
	HTTPClient *http.Client

	// MinReconnectDelay is the wait before the first reconnection attempt
	// after a close; each further attempt waits ReconnectGrowth times
	// longer, up to MaxReconnectDelay: attempt n waits
	// min(MinReconnectDelay·ReconnectGrowth^(n-1), MaxReconnectDelay).
	// The first connection attempt does not wait. Zero means 3s and 10s;
	// a negative value means no wait (MinReconnectDelay) or no upper bound
	// (MaxReconnectDelay).
	MinReconnectDelay time.Duration
	MaxReconnectDelay time.Duration

	// ReconnectGrowth is the factor between consecutive reconnection
	// delays. Zero means 1.3; 1 keeps the delay constant; values below 1
	// are refused by New.
	ReconnectGrowth float64

	// MinUptime is how long a connection must stay open for the attempt
	// count to start again from the first (shortest) delay. A connection
	// that closes sooner counts as a failed attempt. Zero means 5s;
	// a negative value means every connection that opens resets the count.
	MinUptime time.Duration

	// ConnectionTimeout bounds each connection attempt, from the TCP
	// connection to the end of the WebSocket handshake. An attempt that
	// takes longer fails with an error wrapping ErrConnectionTimeout and is
	// retried. Zero means 4s; a negative value means no bound.
	ConnectionTimeout time.Duration

	// MaxRetries is how many attempts in a row the Socket makes after a
	// failed attempt or a close before it gives up and closes for good
	// (Done is closed). The count is the one the delays use: a connection
	// that closes before MinUptime does not end the row, one that stayed
	// open for MinUptime starts it again. Zero means no limit, partysocket's
	// default; a negative value means the Socket never reconnects (one
	// attempt only).
	MaxRetries int

	// ShouldReconnect, if set, decides after every close and every failed
	// attempt whether the Socket tries again; returning false closes it for
	// good (Done is closed). ev.Code and ev.Reason are the close frame's
	// (for example 4001 "unauthorized" sent by the server), or, with ev.Err
	// set, 1006 when the connection broke or could not be opened (a
	// refused handshake's ev.Err wraps a *HandshakeError) and 1009 after a
	// message over ReadLimit. Nil means always
	// reconnect, as partysocket does whatever the code. It is not called
	// after Close.
	ShouldReconnect func(ev CloseEvent) bool

	// MaxQueued bounds the messages accepted by Send and not yet written:
	// those sent while disconnected, kept for the next connection, and
	// those waiting for the socket while connected. Send returns
	// ErrQueueFull instead of passing it. Zero or less means 1024.
	MaxQueued int

	// ReadLimit is the largest message accepted from the server, in bytes;
	// a larger one closes the connection with 1009 (reported to OnError,
	// then OnClose) and the Socket reconnects. Zero means 16 MiB; a
	// negative value means no limit.
	ReadLimit int64

	// OnOpen, OnMessage, OnClose and OnError are called on the Socket's
	// goroutine, one at a time, in the order things happen: OnOpen when a
	// connection opens (after the messages queued while disconnected were
	// written), OnMessage for each message received on it, in order (text
	// and binary kept apart: see protocol.Message), then OnClose once when it
	// closes. OnError reports each failed connection attempt, and each
	// connection that failed rather than closed (it broke without a close
	// frame, or a message passed ReadLimit), just before its OnClose, whose
	// code is then 1006 or 1009. No callback runs after Close has been
	// called, so the close asked for by Close is not reported.
	//
	// The Socket reads nothing while a callback runs: a slow callback holds
	// up the messages behind it. Callbacks may call Send and Close. Each
	// receives the Socket, so it can reply (the variable Dial assigns to
	// is not set yet when the first callbacks run). Nil means ignore.
	OnOpen    func(s *Socket)
	OnMessage func(s *Socket, msg protocol.Message)
	OnClose   func(s *Socket, ev CloseEvent)
	OnError   func(s *Socket, err error)
}

// CloseEvent describes how a connection ended, for OnClose and
// ShouldReconnect.
type CloseEvent struct {
	// Code and Reason are those of the close frame the server sent, for
	// example 1012 (protocol.StatusServiceRestart) when the server shuts down
	// or 4409 (protocol.StatusReplaced) when another connection took the same
	// id. Code is 1006 (protocol.StatusAbnormalClosure) when the connection
	// broke or could not be opened, 1009 (protocol.StatusMessageTooBig) when
	// a message over Options.ReadLimit arrived, and 1005
	// (protocol.StatusNoStatus) when the close frame carried no code.
	Code   protocol.StatusCode
	Reason string

	// Err is the error that broke the connection or failed the attempt,
	// nil after a close frame.
	Err error
}

// config is Options with defaults applied and the URL parts prepared.
type config struct {
	Options
	host     string // without scheme or trailing slash
	secure   bool
	path     string // escaped, starting with "/"
	growth   float64
	maxQueue int
}

func (o Options) config() (*config, error) {
	c := &config{Options: o}
	if o.Host == "" {
		return nil, errors.New("partysocket: Options.Host is required")
	}
	if o.Room == "" && o.BasePath == "" {
		return nil, errors.New("partysocket: Options.Room (or BasePath) is required")
	}
	if strings.HasPrefix(o.Path, "/") {
		return nil, errors.New("partysocket: Options.Path must not start with a slash")
	}
	c.host = trimHost(o.Host)
	switch o.Protocol {
	case "":
		c.secure = !plainHost(c.host)
	case "ws", "http":
	case "wss", "https":
		c.secure = true
	default:
		return nil, errors.New("partysocket: Options.Protocol must be ws, wss, http or https, not " + o.Protocol)
	}
	c.path = roomPath(o)
	if _, err := url.Parse("http://" + c.host + c.path); err != nil {
		return nil, errors.New("partysocket: invalid room URL: " + err.Error())
	}
	if c.ID == "" {
		c.ID = newID()
	}
	switch {
	case c.MinReconnectDelay == 0:
		c.MinReconnectDelay = DefaultMinReconnectDelay
	case c.MinReconnectDelay < 0:
		c.MinReconnectDelay = 0
	}
	if c.MaxReconnectDelay == 0 {
		c.MaxReconnectDelay = DefaultMaxReconnectDelay
	}
	c.growth = o.ReconnectGrowth
	if c.growth == 0 {
		c.growth = DefaultReconnectGrowth
	}
	if !(c.growth >= 1) { // also refuses NaN
		return nil, errors.New("partysocket: Options.ReconnectGrowth must be at least 1")
	}
	if c.MinUptime == 0 {
		c.MinUptime = DefaultMinUptime
	}
	if c.ConnectionTimeout == 0 {
		c.ConnectionTimeout = DefaultConnectionTimeout
	}
	c.maxQueue = o.MaxQueued
	if c.maxQueue <= 0 {
		c.maxQueue = DefaultMaxQueued
	}
	if c.ReadLimit == 0 {
		c.ReadLimit = DefaultReadLimit
	}
	return c, nil
}
