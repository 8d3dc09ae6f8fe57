package yjs

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"sync"
	"testing"
)

// fixture is one case of testdata/fixtures.json, written by
// interop/yjs/fixtures.mjs with the npm yjs package.
type fixture struct {
	Name              string
	GC                bool
	Updates           []string
	StateVectors      []string
	Merged            string
	MergedStateVector string
	Diffs             []struct {
		Of       int // index into Updates, -1 for Merged
		SV, Diff string
	}
}

var loadFixtures = sync.OnceValues(func() ([]fixture, error) {
	b, err := os.ReadFile("testdata/fixtures.json")
	if err != nil {
		return nil, err
	}
	var f struct{ Cases []fixture }
	err = json.Unmarshal(b, &f)
	return f.Cases, err
})

func fixtures(t testing.TB) []fixture {
	t.Helper()
	cases, err := loadFixtures()
	if err != nil {
		t.Fatalf("testdata/fixtures.json: %v (regenerate with: cd interop && node yjs/fixtures.mjs)", err)
	}
	return cases
}

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %.20q: %v", s, err)
	}
	return b
}

// updates returns the case's updates decoded from base64.
func (f fixture) updates(t testing.TB) [][]byte {
	out := make([][]byte, len(f.Updates))
	for i, s := range f.Updates {
		out[i] = unb64(t, s)
	}
	return out
}

// benchFrames returns the frames of testdata/bench-text.bin.gz: the final
// state (~1 MB), the state before the last 1000 edits, a state vector from
// halfway, and the last 1000 edits' updates.
func benchFrames(t testing.TB) (final, base, half []byte, edits [][]byte) {
	f, err := os.Open("testdata/bench-text.bin.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(raw)
	var frames [][]byte
	for d.Remaining() > 0 {
		b, err := d.ReadVarBytes()
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, bytes.Clone(b))
	}
	if len(frames) < 4 {
		t.Fatalf("bench-text.bin.gz has %d frames, want at least 4", len(frames))
	}
	return frames[0], frames[1], frames[2], frames[3:]
}
