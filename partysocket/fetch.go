package partysocket

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// NewRequest returns an HTTP request for the room's URL, as
// PartySocket.fetch builds it: http or https (by Options.Protocol or
// partysocket's host rule), the same path as the socket's (Path included),
// and Query and QueryFunc's parameters but no _pk. Options.Header is
// copied into it. Only the URL options matter: Host, Protocol, Room, Party,
// Prefix, BasePath, Path, Query, QueryFunc and Header.
func NewRequest(ctx context.Context, opts Options, method string, body io.Reader) (*http.Request, error) {
	cfg, err := opts.config()
	if err != nil {
		return nil, err
	}
	u, err := cfg.url(ctx, "http")
	if err != nil {
		return nil, fmt.Errorf("partysocket: %s: query: %w", cfg.roomURL("http"), err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range opts.Header {
		req.Header[k] = append([]string(nil), v...)
	}
	return req, nil
}

// Fetch sends an HTTP request to the room's URL (see NewRequest) with
// Options.HTTPClient and returns the response, which reaches the room's
// OnRequest on a party server. The caller must close the response body.
func Fetch(ctx context.Context, opts Options, method string, body io.Reader) (*http.Response, error) {
	req, err := NewRequest(ctx, opts, method, body)
	if err != nil {
		return nil, err
	}
	client := opts.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	return client.Do(req)
}
