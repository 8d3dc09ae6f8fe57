package party_test

import (
	"context"
	"strings"
	"testing"

	"party"
)

// misnamed has handler names with the wrong signatures: compiled, vetted,
// and never called.
type misnamed struct{}

func (*misnamed) OnMessage(msg string, c *party.Connection) {}
func (*misnamed) OnStart()                                  {}
func (*misnamed) OnConnect(c *party.Connection)             {} // the correct OnClose below is not reported

func (*misnamed) OnClose(c *party.Connection) {}

// valueServer's handler has a pointer receiver, but its factory returns a
// value: the value's method set has no OnMessage.
type valueServer struct{}

func (*valueServer) OnMessage(msg party.Message, c *party.Connection) {}

// TestWrongSignaturesAreLogged builds rooms of parties whose Servers have
// methods named like handlers that implement nothing, and checks that each
// is logged at Error level once per party, with the type, the method, the
// signature found and the one expected; a Server whose handlers are right
// logs nothing.
func TestWrongSignaturesAreLogged(t *testing.T) {
	var logs logBuffer
	h := party.Handler(newChat)
	h.Logger = logs.logger()
	h.Party("misnamed", func(*party.Room) party.Server { return &misnamed{} })
	h.Party("value", func(*party.Room) party.Server { return valueServer{} })
	serve(t, h)
	for _, p := range []string{"main", "misnamed", "value"} {
		for _, room := range []string{"a", "b"} { // the second room is not reported again
			if err := h.Call(context.Background(), p, room, func(party.Server) error { return nil }); err != nil {
				t.Fatalf("building %s/%s: %v", p, room, err)
			}
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []string{
		`level=ERROR msg="party: a method named like a handler has the wrong signature: it is never called" party=misnamed type=*party_test.misnamed method=OnStart found=func() expected="func() error"`,
		`level=ERROR msg="party: a method named like a handler has the wrong signature: it is never called" party=misnamed type=*party_test.misnamed method=OnConnect found=func(*party.Connection) expected="func(*party.Connection, *http.Request)"`,
		`level=ERROR msg="party: a method named like a handler has the wrong signature: it is never called" party=misnamed type=*party_test.misnamed method=OnMessage found="func(string, *party.Connection)" expected="func(party.Message, *party.Connection)"`,
		`level=ERROR msg="party: a handler has a pointer receiver but the factory returns a value: it is never called" party=value type=party_test.valueServer method=OnMessage found="on *party_test.valueServer" expected="return &valueServer{...} from the factory"`,
	}
	var got []string
	for _, l := range lines {
		if _, rest, ok := strings.Cut(l, " level="); ok { // drop the time
			got = append(got, "level="+rest)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
