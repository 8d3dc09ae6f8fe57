package party

import (
	"log/slog"
	"net/http"
	"reflect"
	"strings"
)

// Server is the value that drives one room. Any value is a valid Server: a
// struct with no methods accepts connections and stays silent. Its powers come
// from the optional interfaces it implements ([OnStartHandler],
// [OnConnectHandler], [OnMessageHandler], [OnCloseHandler], [OnErrorHandler],
// [OnRequestHandler], [OnAlarmHandler], [ConnectionTagger]), discovered once
// when the room is built.
//
// A method with a handler's name but another signature (say
// OnMessage(string, *party.Connection)) implements nothing and is never
// called. The first time a party builds a room, each such method is logged
// at Error level, naming the type, the method, the signature found and the
// one expected. A compile-time check catches it earlier:
//
//	var _ party.OnMessageHandler = (*Chat)(nil)
//
// A handler must return, or panic (a panic is recovered, logged and reported
// as each handler's documentation says). A handler that calls
// runtime.Goexit (t.FailNow or t.Fatal inside a handler, in a test) takes
// its room's turn with it: the room handles nothing more. That is logged at
// Error level, naming the room and the handler.
type Server any

// OnStartHandler is implemented by a Server that prepares itself before its
// room handles anything. OnStart runs once per room, before any other handler.
// If it returns an error (or panics), the request that started the room fails
// (a WebSocket is closed with 1011 and the error as reason, an HTTP request
// gets 500) and the next request for the room calls OnStart again.
type OnStartHandler interface {
	OnStart() error
}

// OnConnectHandler is implemented by a Server that greets new connections.
// OnConnect runs after the WebSocket upgrade and after c has joined the room
// (so a Broadcast without exclusions reaches c too), and before c's first
// message is read. r is the upgrade request, or the request returned by
// [Host.BeforeConnect]. Messages sent to c in OnConnect reach it before any
// message sent later. To refuse the connection, call c.Close.
type OnConnectHandler interface {
	OnConnect(c *Connection, r *http.Request)
}

// OnMessageHandler is implemented by a Server that reads messages. msg belongs
// to the handler: it may keep or forward it (see [Message] for ownership).
type OnMessageHandler interface {
	OnMessage(msg Message, sender *Connection)
}

// OnCloseHandler is implemented by a Server that wants to know when a
// connection leaves. OnClose runs exactly once for every connection that
// joined the room, after it has left the room's connection set; c.CloseStatus
// reports the close code and reason.
type OnCloseHandler interface {
	OnClose(c *Connection)
}

// OnErrorHandler is implemented by a Server that wants to see connection
// errors: a panic in OnMessage or OnClose (the error wraps [ErrHandlerPanic];
// the connection stays open after an OnMessage panic), and a connection that
// fails rather than closing cleanly (a message over the read limit, invalid
// UTF-8, a full send queue, a missed keepalive, a broken socket), just before
// its OnClose.
type OnErrorHandler interface {
	OnError(c *Connection, err error)
}

// OnRequestHandler is implemented by a Server that answers plain HTTP requests
// to its room's URL (partysocket's PartySocket.fetch, and [Host.Fetch]).
// Without it, such requests get 426 Upgrade Required.
type OnRequestHandler interface {
	OnRequest(w http.ResponseWriter, r *http.Request)
}

// OnAlarmHandler is implemented by a Server that wakes up on a timer, as
// PartyKit's onAlarm (see [Room.SetAlarm]). OnAlarm runs in the room's turn,
// like every handler, after OnStart.
type OnAlarmHandler interface {
	OnAlarm()
}

// ConnectionTagger is implemented by a Server that tags connections. Tags are
// computed before OnConnect; the connection's id is always its first tag.
// [Room.GetConnections] filters by tag.
type ConnectionTagger interface {
	ConnectionTags(c *Connection, r *http.Request) []string
}

// handlers are the optional interfaces of a room's Server, found once when
// the room is built; nil where the Server does not implement one.
type handlers struct {
	start   OnStartHandler
	connect OnConnectHandler
	message OnMessageHandler
	close   OnCloseHandler
	error   OnErrorHandler
	request OnRequestHandler
	alarm   OnAlarmHandler
	tagger  ConnectionTagger
}

// handlerID names a handler, in logs and in the counters kept per handler.
// handlerCall is a function given to Call.
type handlerID uint8

const (
	handlerOnStart handlerID = iota
	handlerOnConnect
	handlerOnMessage
	handlerOnClose
	handlerOnError
	handlerOnRequest
	handlerOnAlarm
	handlerConnectionTags
	handlerCall

	numHandlers handlerID = iota
)

func (id handlerID) String() string {
	return [numHandlers]string{"OnStart", "OnConnect", "OnMessage", "OnClose", "OnError", "OnRequest",
		"OnAlarm", "ConnectionTags", "Call"}[id]
}

func discover(s Server) handlers {
	var hs handlers
	hs.start, _ = s.(OnStartHandler)
	hs.connect, _ = s.(OnConnectHandler)
	hs.message, _ = s.(OnMessageHandler)
	hs.close, _ = s.(OnCloseHandler)
	hs.error, _ = s.(OnErrorHandler)
	hs.request, _ = s.(OnRequestHandler)
	hs.alarm, _ = s.(OnAlarmHandler)
	hs.tagger, _ = s.(ConnectionTagger)
	return hs
}

// handlerInterfaces lists each handler method's name with its interface,
// for reportMismatches.
var handlerInterfaces = []struct {
	method string
	iface  reflect.Type
}{
	{"OnStart", reflect.TypeFor[OnStartHandler]()},
	{"OnConnect", reflect.TypeFor[OnConnectHandler]()},
	{"OnMessage", reflect.TypeFor[OnMessageHandler]()},
	{"OnClose", reflect.TypeFor[OnCloseHandler]()},
	{"OnError", reflect.TypeFor[OnErrorHandler]()},
	{"OnRequest", reflect.TypeFor[OnRequestHandler]()},
	{"OnAlarm", reflect.TypeFor[OnAlarmHandler]()},
	{"ConnectionTags", reflect.TypeFor[ConnectionTagger]()},
}

// reportMismatches logs, at Error level, each method of s named like a
// handler that does not implement the handler's interface, and each handler
// method that only s's pointer type has (a factory returning a struct value
// whose methods have pointer receivers): neither is ever called.
func reportMismatches(log *slog.Logger, party string, s Server) {
	t := reflect.TypeOf(s)
	if t == nil {
		return
	}
	for _, h := range handlerInterfaces {
		name, iface := h.method, h.iface
		want := iface.Method(0).Type
		if m, ok := t.MethodByName(name); ok {
			if !t.Implements(iface) {
				log.Error("party: a method named like a handler has the wrong signature: it is never called",
					"party", party, "type", t.String(), "method", name,
					"found", signature(m.Type, 1), "expected", signature(want, 0))
			}
			continue
		}
		if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(iface) {
			log.Error("party: a handler has a pointer receiver but the factory returns a value: it is never called",
				"party", party, "type", t.String(), "method", name,
				"found", "on "+reflect.PointerTo(t).String(), "expected", "return &"+t.Name()+"{...} from the factory")
		}
	}
}

// signature formats a function type as it reads in source, skipping the
// first skip parameters (a method's receiver).
func signature(f reflect.Type, skip int) string {
	var in, out []string
	for i := skip; i < f.NumIn(); i++ {
		in = append(in, typeName(f.In(i)))
	}
	for i := range f.NumOut() {
		out = append(out, typeName(f.Out(i)))
	}
	s := "func(" + strings.Join(in, ", ") + ")"
	switch len(out) {
	case 0:
	case 1:
		s += " " + out[0]
	default:
		s += " (" + strings.Join(out, ", ") + ")"
	}
	return s
}

// typeName names t as a user of this package writes it: party.Message, not
// the protocol.Message it is an alias of.
func typeName(t reflect.Type) string {
	if t.PkgPath() == "party/protocol" {
		return "party." + t.Name()
	}
	return t.String()
}
