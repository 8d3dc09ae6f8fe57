package partysocket

import (
	"context"
	"net/url"
	"strings"

	"github.com/rs/xid"
)

// newID returns a fresh random connection id.
func newID() string { return xid.New().String() }

// trimHost removes a leading scheme and one trailing slash from host, as
// partysocket does.
func trimHost(host string) string {
	for _, scheme := range []string{"http://", "https://", "ws://", "wss://"} {
		if strings.HasPrefix(host, scheme) {
			host = host[len(scheme):]
			break
		}
	}
	return strings.TrimSuffix(host, "/")
}

// plainHost reports whether partysocket connects to host without TLS: a
// loopback host with a port, or a private IPv4 address. The 172.x test
// compares the second label as a string, as partysocket does, so it also
// matches for example "172.2.0.1" and "172.200.0.1".
func plainHost(host string) bool {
	for _, p := range []string{"localhost:", "127.0.0.1:", "192.168.", "10.", "[::ffff:7f00:1]:"} {
		if strings.HasPrefix(host, p) {
			return true
		}
	}
	if strings.HasPrefix(host, "172.") {
		labels := strings.Split(host, ".")
		return labels[1] >= "16" && labels[1] <= "31"
	}
	return false
}

// roomPath returns the escaped path of the room's URL, starting with "/".
func roomPath(o Options) string {
	var p string
	if o.BasePath != "" {
		p = strings.TrimPrefix(o.BasePath, "/")
	} else {
		prefix, party := o.Prefix, o.Party
		if prefix == "" {
			prefix = DefaultPrefix
		}
		if party == "" {
			party = DefaultParty
		}
		p = prefix + "/" + party + "/" + o.Room
	}
	if o.Path != "" {
		p += "/" + o.Path
	}
	return "/" + escapePath(p)
}

// escapePath percent-encodes what a browser's URL parser encodes in a path
// (the WHATWG path percent-encode set: controls, space, non-ASCII bytes and
// "#<>?`{}), and leaves everything else, "/" and "%" included, as written,
// so that a Go client and a browser given the same room name reach the same
// room.
func escapePath(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && strings.IndexByte("\"#<>?`{}", c) < 0 {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+8), s[:i]...)
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	if b == nil {
		return s
	}
	return string(b)
}

// roomURL returns the room's URL without a query, with the given scheme
// family ("ws" or "http").
func (c *config) roomURL(family string) string {
	scheme := family
	if c.secure {
		scheme += "s"
	}
	return scheme + "://" + c.host + c.path
}

// url returns the URL of one connection attempt (family "ws", with _pk
// first) or one Fetch (family "http", without _pk), running QueryFunc.
func (c *config) url(ctx context.Context, family string) (string, error) {
	var q strings.Builder
	if family == "ws" {
		q.WriteString("_pk=")
		q.WriteString(url.QueryEscape(c.ID))
	}
	add := func(v url.Values) {
		if len(v) == 0 {
			return
		}
		if q.Len() > 0 {
			q.WriteByte('&')
		}
		q.WriteString(v.Encode())
	}
	add(c.Query)
	if c.QueryFunc != nil {
		v, err := c.QueryFunc(ctx)
		if err != nil {
			return "", err
		}
		add(v)
	}
	u := c.roomURL(family)
	if q.Len() > 0 {
		u += "?" + q.String()
	}
	return u, nil
}
