package party

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
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
// detection of [Room.Call].
func (r *Room) Fetch(party, id string, req *http.Request) (*http.Response, error) {
	return r.host.fetch(r, roomKey{party, id}, req)
}

func (h *Host) fetch(from *Room, key roomKey, req *http.Request) (*http.Response, error) {
	w := &responseRecorder{header: make(http.Header)}
	err := h.inTurn(req.Context(), from, key, func(r *Room) error {
		r.serveRequest(w, req)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return w.response(req), nil
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
