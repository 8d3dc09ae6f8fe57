package cluster

import (
	"regexp"
	"strings"
	"testing"
)

var tokenRe = regexp.MustCompile(`^[-_=a-zA-Z0-9]+$`)

func TestEncodeName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "="},
		{"lobby", "lobby"},
		{"a b", "a=20b"},
		{"a.b/c", "a=2Eb=2Fc"},
		{"=", "=3D"},
		{"%C3%A9", "=25C3=25A9"},
		{"é", "=C3=A9"},
		{"A-z_9", "A-z_9"},
		{"\x00\xff", "=00=FF"},
	} {
		if got := EncodeName(c.in); got != c.want {
			t.Errorf("EncodeName(%q) = %q, want %q", c.in, got, c.want)
		}
		if back, err := DecodeName(c.want); err != nil || back != c.in {
			t.Errorf("DecodeName(%q) = %q, %v; want %q", c.want, back, err, c.in)
		}
	}
	for _, bad := range []string{"", "a.b", "=2", "=2e", "==", "a=", "=G0", "=70", "=2D", "a b", "*", ">", "=3D="} {
		if got, err := DecodeName(bad); err == nil {
			t.Errorf("DecodeName(%q) = %q, want an error", bad, got)
		}
	}
}

func TestRoomKey(t *testing.T) {
	k, err := roomKey("main", "my room")
	if err != nil || k != "main.my=20room" {
		t.Fatalf("roomKey = %q, %v", k, err)
	}
	p, r, err := splitRoomKey(k)
	if err != nil || p != "main" || r != "my room" {
		t.Fatalf("splitRoomKey(%q) = %q, %q, %v", k, p, r, err)
	}
	if _, err := roomKey("main", strings.Repeat("é", MaxKeyLen)); err == nil {
		t.Fatal("a room encoding over MaxKeyLen was accepted")
	}
}

// FuzzName checks that EncodeName makes valid key tokens and is injective
// (DecodeName inverts it), and that DecodeName accepts only its encodings.
func FuzzName(f *testing.F) {
	for _, s := range []string{"", "lobby", "a.b", "=", "=3D", "%E2%9C%93", "\xff", "a=20b"} {
		f.Add(s, s+"x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ea, eb := EncodeName(a), EncodeName(b)
		if !tokenRe.MatchString(ea) {
			t.Fatalf("EncodeName(%q) = %q, not a key token", a, ea)
		}
		if back, err := DecodeName(ea); err != nil || back != a {
			t.Fatalf("DecodeName(EncodeName(%q)) = %q, %v", a, back, err)
		}
		if (a == b) != (ea == eb) {
			t.Fatalf("EncodeName(%q) = %q and EncodeName(%q) = %q", a, ea, b, eb)
		}
		// Any token DecodeName accepts is the encoding of what it returns.
		if s, err := DecodeName(a); err == nil && EncodeName(s) != a {
			t.Fatalf("DecodeName(%q) = %q, which encodes as %q", a, s, EncodeName(s))
		}
		k, err := roomKey(a, b)
		if err == nil {
			p, r, err := splitRoomKey(k)
			if err != nil || p != a || r != b {
				t.Fatalf("splitRoomKey(roomKey(%q, %q)) = %q, %q, %v", a, b, p, r, err)
			}
		}
	})
}
