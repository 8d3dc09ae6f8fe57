package partysocket

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		ws   string // the connection URL
		http string // the Fetch URL
	}{
		{"guide", Options{Host: "localhost:1999", Room: "my-room"},
			"ws://localhost:1999/parties/main/my-room?_pk=ID", "http://localhost:1999/parties/main/my-room"},
		{"scheme and slash stripped", Options{Host: "https://localhost:1999/", Room: "r"},
			"ws://localhost:1999/parties/main/r?_pk=ID", "http://localhost:1999/parties/main/r"},
		{"ws scheme stripped", Options{Host: "ws://example.com", Room: "r"},
			"wss://example.com/parties/main/r?_pk=ID", "https://example.com/parties/main/r"},
		{"public host", Options{Host: "my-party.example.com", Room: "r"},
			"wss://my-party.example.com/parties/main/r?_pk=ID", "https://my-party.example.com/parties/main/r"},
		{"localhost needs a port", Options{Host: "localhost", Room: "r"},
			"wss://localhost/parties/main/r?_pk=ID", "https://localhost/parties/main/r"},
		{"127.0.0.1 with port", Options{Host: "127.0.0.1:8080", Room: "r"},
			"ws://127.0.0.1:8080/parties/main/r?_pk=ID", "http://127.0.0.1:8080/parties/main/r"},
		{"127.0.0.1 without port", Options{Host: "127.0.0.1", Room: "r"},
			"wss://127.0.0.1/parties/main/r?_pk=ID", "https://127.0.0.1/parties/main/r"},
		{"192.168", Options{Host: "192.168.1.5", Room: "r"},
			"ws://192.168.1.5/parties/main/r?_pk=ID", "http://192.168.1.5/parties/main/r"},
		{"10.", Options{Host: "10.0.0.1:80", Room: "r"},
			"ws://10.0.0.1:80/parties/main/r?_pk=ID", "http://10.0.0.1:80/parties/main/r"},
		{"172.16", Options{Host: "172.16.0.1", Room: "r"},
			"ws://172.16.0.1/parties/main/r?_pk=ID", "http://172.16.0.1/parties/main/r"},
		{"172.31", Options{Host: "172.31.255.1:1", Room: "r"},
			"ws://172.31.255.1:1/parties/main/r?_pk=ID", "http://172.31.255.1:1/parties/main/r"},
		{"172.15", Options{Host: "172.15.0.1", Room: "r"},
			"wss://172.15.0.1/parties/main/r?_pk=ID", "https://172.15.0.1/parties/main/r"},
		{"172.32", Options{Host: "172.32.0.1", Room: "r"},
			"wss://172.32.0.1/parties/main/r?_pk=ID", "https://172.32.0.1/parties/main/r"},
		{"172.2 compares as a string", Options{Host: "172.2.0.1", Room: "r"},
			"ws://172.2.0.1/parties/main/r?_pk=ID", "http://172.2.0.1/parties/main/r"},
		{"IPv4-mapped loopback", Options{Host: "[::ffff:7f00:1]:1999", Room: "r"},
			"ws://[::ffff:7f00:1]:1999/parties/main/r?_pk=ID", "http://[::ffff:7f00:1]:1999/parties/main/r"},
		{"IPv6 loopback is not on the list", Options{Host: "[::1]:1999", Room: "r"},
			"wss://[::1]:1999/parties/main/r?_pk=ID", "https://[::1]:1999/parties/main/r"},
		{"Protocol ws", Options{Host: "example.com", Room: "r", Protocol: "ws"},
			"ws://example.com/parties/main/r?_pk=ID", "http://example.com/parties/main/r"},
		{"Protocol https", Options{Host: "localhost:1", Room: "r", Protocol: "https"},
			"wss://localhost:1/parties/main/r?_pk=ID", "https://localhost:1/parties/main/r"},
		{"party and prefix", Options{Host: "localhost:1", Room: "r", Party: "docs", Prefix: "rooms"},
			"ws://localhost:1/rooms/docs/r?_pk=ID", "http://localhost:1/rooms/docs/r"},
		{"path", Options{Host: "localhost:1", Room: "r", Path: "items/1"},
			"ws://localhost:1/parties/main/r/items/1?_pk=ID", "http://localhost:1/parties/main/r/items/1"},
		{"base path", Options{Host: "localhost:1", BasePath: "custom/r", Party: "ignored", Path: "x"},
			"ws://localhost:1/custom/r/x?_pk=ID", "http://localhost:1/custom/r/x"},
		{"base path with slash", Options{Host: "localhost:1", BasePath: "/custom"},
			"ws://localhost:1/custom?_pk=ID", "http://localhost:1/custom"},
		{"names encoded as a browser does", Options{Host: "localhost:1", Room: `my room/é?#"<>{}` + "`", Party: "p q"},
			"ws://localhost:1/parties/p%20q/my%20room/%C3%A9%3F%23%22%3C%3E%7B%7D%60?_pk=ID",
			"http://localhost:1/parties/p%20q/my%20room/%C3%A9%3F%23%22%3C%3E%7B%7D%60"},
		{"escapes and sub-delims left alone", Options{Host: "localhost:1", Room: "a%2Fb!$&'()*+,;=:@"},
			"ws://localhost:1/parties/main/a%2Fb!$&'()*+,;=:@?_pk=ID", "http://localhost:1/parties/main/a%2Fb!$&'()*+,;=:@"},
		{"id escaped, _pk first, then Query, then QueryFunc",
			Options{Host: "localhost:1", Room: "r", ID: "a b&c", Query: url.Values{"z": {"1"}, "_pk": {"2nd"}, "a": {"x y"}},
				QueryFunc: func(context.Context) (url.Values, error) { return url.Values{"token": {"t"}}, nil }},
			"ws://localhost:1/parties/main/r?_pk=a+b%26c&_pk=2nd&a=x+y&z=1&token=t",
			"http://localhost:1/parties/main/r?_pk=2nd&a=x+y&z=1&token=t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.o.config()
			if err != nil {
				t.Fatal(err)
			}
			ws, err := c.url(context.Background(), "ws")
			if err != nil {
				t.Fatal(err)
			}
			if tc.o.ID == "" {
				ws = strings.Replace(ws, "_pk="+c.ID, "_pk=ID", 1)
			}
			if ws != tc.ws {
				t.Errorf("connection URL\n got %s\nwant %s", ws, tc.ws)
			}
			if _, err := url.Parse(ws); err != nil {
				t.Errorf("connection URL does not parse: %v", err)
			}
			h, err := c.url(context.Background(), "http")
			if err != nil {
				t.Fatal(err)
			}
			if h != tc.http {
				t.Errorf("Fetch URL\n got %s\nwant %s", h, tc.http)
			}
		})
	}
}

func TestIDIsRandomAndStable(t *testing.T) {
	a, _ := Options{Host: "h", Room: "r"}.config()
	b, _ := Options{Host: "h", Room: "r"}.config()
	if a.ID == "" || a.ID == b.ID {
		t.Errorf("ids %q and %q, want two different non-empty ids", a.ID, b.ID)
	}
	u1, _ := a.url(context.Background(), "ws")
	u2, _ := a.url(context.Background(), "ws")
	if u1 != u2 {
		t.Errorf("the id changed between connections: %s, %s", u1, u2)
	}
}

func TestQueryFuncError(t *testing.T) {
	boom := errors.New("no token")
	c, _ := Options{Host: "h", Room: "r", QueryFunc: func(context.Context) (url.Values, error) { return nil, boom }}.config()
	if _, err := c.url(context.Background(), "ws"); !errors.Is(err, boom) {
		t.Errorf("got %v, want %v", err, boom)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Room: "r"}, "Host"},
		{Options{Host: "h"}, "Room"},
		{Options{Host: "h", Room: "r", Path: "/x"}, "Path"},
		{Options{Host: "h", Room: "r", Protocol: "ftp"}, "Protocol"},
		{Options{Host: "h", Room: "r", ReconnectGrowth: 0.5}, "ReconnectGrowth"},
		{Options{Host: "h", Room: "100%zz"}, "invalid room URL"},
	} {
		if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error about %s", tc.o, err, tc.want)
		}
	}
}
