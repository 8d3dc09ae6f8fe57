package party

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Fetch sends req to room id of the named party, in that room's turn,
// without going through the network, and returns the response (as
// PartyKit's room.context.parties[party].get(id).fetch). The room answers as
// it answers over HTTP: its OnRequest, 426 if it has none, 500 if OnRequest
// panics before writing. The room is created if needed; Fetch waits for its
// turn until req's context ends. Use it outside handlers; inside, use
// [Room.Fetch].
func (h *Host) Fetch(party, id string, req *http.Request) (*http.Response, error) {
	return h.fetch(nil, roomKey{party, id}, req)
}

// Fetch is [Host.Fetch] for use inside a handler of r, with the cycle
// detection of [Room.Call]. With a Host.Placer, cycles through other nodes
// are found too: a request to a room on another node carries the rooms
// waiting for it (in the Party-Call-Chain header), and a Fetch, there or
// further on, to a room among them returns ErrDeadlock. (Host.Fetch, which
// a Relay's node uses to answer, refuses such a request with ErrDeadlock
// too; a Relay answers that as 508 Loop Detected.)
func (r *Room) Fetch(party, id string, req *http.Request) (*http.Response, error) {
	return r.host.fetch(r, roomKey{party, id}, req)
}

// callChainHeader carries, on a Fetch from one room's handler to a room on
// another node, the rooms waiting for the answer: "party/id" entries, each
// part path-escaped, separated by spaces. Host.Fetch refuses a request to a
// room already in it; ServeHTTP removes it from what clients send.
const callChainHeader = "Party-Call-Chain"

func (h *Host) fetch(from *Room, key roomKey, req *http.Request) (*http.Response, error) {
	// The rooms the target's answer is awaited by: from and those waiting
	// for from; or, from another node, those the request names.
	// A room in it is waiting (maybe through another node), so a request to
	// it would close a cycle; but a room may call itself.
	var chain string
	if from == nil {
		chain = req.Header.Get(callChainHeader)
	} else {
		chain = strings.TrimSpace(from.callChain + " " + chainEntry(from.key))
	}
	if (from == nil || from.key != key) && chainHas(chain, key) {
		return nil, fmt.Errorf("%w (%s/%s waits, through another node, for the room that calls it)", ErrDeadlock, key.party, key.id)
	}
	w := &responseRecorder{header: make(http.Header)}
	// To another node, the chain goes with the request.
	forward := func(r *Room) {
		req = req.Clone(req.Context())
		if chain != "" {
			req.Header.Set(callChainHeader, chain)
		} else {
			req.Header.Del(callChainHeader)
		}
		r.serveRequest(w, req)
	}
	if r := h.placedRelay(key); r != nil {
		defer r.release(false)
		forward(r) // without the turn: see Relay
		return w.response(req), nil
	}
	err := h.inTurn(req.Context(), from, key, func(r *Room) error {
		if r.relay != nil { // placed just now
			forward(r)
			return nil
		}
		outer := r.callChain
		r.callChain = chain
		defer func() { r.callChain = outer }()
		r.serveRequest(w, req)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return w.response(req), nil
}

func chainEntry(k roomKey) string { return url.PathEscape(k.party) + "/" + url.PathEscape(k.id) }

// chainHas reports whether the call chain names room k.
func chainHas(chain string, k roomKey) bool {
	if chain == "" {
		return false
	}
	return slices.Contains(strings.Fields(chain), chainEntry(k))
}

// responseRecorder is the http.ResponseWriter of a Fetch: it keeps the
// status, header and body the room writes, and treats them as net/http's
// server does: the header is fixed when the status is written, and a body
// without a Content-Type gets one sniffed from its first bytes.
type responseRecorder struct {
	header http.Header
	status int
	sent   http.Header // the header as it was when the status was written; nil before
	wrote  bool        // the body has begun
	body   bytes.Buffer
}

func (w *responseRecorder) Header() http.Header { return w.header }

func (w *responseRecorder) WriteHeader(status int) {
	if w.sent == nil {
		w.status, w.sent = status, w.header.Clone()
	}
}

func (w *responseRecorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if !w.wrote {
		w.wrote = true
		if _, set := w.sent["Content-Type"]; !set {
			w.sent.Set("Content-Type", http.DetectContentType(p))
		}
	}
	return w.body.Write(p)
}

// response returns the recorded response to req, as a client would get it.
func (w *responseRecorder) response(req *http.Request) *http.Response {
	w.WriteHeader(http.StatusOK) // a handler that wrote nothing answered 200
	return &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()),
		Request:       req,
	}
}
