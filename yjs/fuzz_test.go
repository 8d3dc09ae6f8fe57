package yjs

import (
	"bytes"
	"errors"
	"testing"
)

// seedUpdates adds every update of the fixtures (yjs's, its merges and
// diffs) to a fuzz corpus through add.
func seedUpdates(f *testing.F, add func(b []byte)) {
	for _, fx := range fixtures(f) {
		for _, u := range fx.Updates {
			add(unb64(f, u))
		}
		add(unb64(f, fx.Merged))
		for _, d := range fx.Diffs {
			add(unb64(f, d.Diff))
		}
	}
}

// A decoded update encodes back to its input (this package refuses every
// encoding lib0 would not write, so decoding is one-to-one), and merging and
// diffing it never panic and give updates that decode. Anything refused is
// refused with ErrMalformed, by DecodeUpdate and by the operations alike.
func FuzzDecodeUpdate(f *testing.F) {
	seedUpdates(f, func(b []byte) { f.Add(b) })
	other := unb64(f, fixtures(f)[0].Merged)
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeUpdate(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeUpdate error %v does not wrap ErrMalformed", err)
			}
			if _, err := MergeUpdates(other, b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("MergeUpdates accepted what DecodeUpdate refuses: %v", err)
			}
			if _, err := DiffUpdate(b, []byte{0}); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DiffUpdate accepted what DecodeUpdate refuses: %v", err)
			}
			return
		}
		if got := u.Encode(); !bytes.Equal(got, b) {
			t.Fatalf("decoded and encoded\n %x\nas %x", b, got)
		}
		if err := u.Validate(); err != nil {
			t.Fatalf("Validate of a decoded update: %v", err)
		}
		sv, err := EncodeStateVectorFromUpdate(b)
		mustDecode(t, "state vector", sv, err, func(b []byte) error { _, err := DecodeStateVector(b); return err })
		for name, op := range map[string]func() ([]byte, error){
			"merge with another":    func() ([]byte, error) { return MergeUpdates(b, other) },
			"merge with itself":     func() ([]byte, error) { return MergeUpdates(b, b) },
			"merge another with it": func() ([]byte, error) { return MergeUpdates(other, b) },
			"diff against its own":  func() ([]byte, error) { return DiffUpdate(b, sv) },
			"diff against nothing":  func() ([]byte, error) { return DiffUpdate(b, []byte{0}) },
			"diff against clock 1":  func() ([]byte, error) { return DiffUpdate(b, shiftedStateVector(u.StateVector())) },
		} {
			out, err := op()
			mustDecode(t, name, out, err, ValidateUpdate)
		}
	})
}

// Merging two updates that decode gives one that decodes, holds each input's
// state vector, and diffs back to nothing against its own state vector.
func FuzzMergeUpdates(f *testing.F) {
	var seeds [][]byte
	seedUpdates(f, func(b []byte) { seeds = append(seeds, b) })
	for i := range seeds {
		f.Add(seeds[i], seeds[(i*7+3)%len(seeds)])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if ValidateUpdate(a) != nil || ValidateUpdate(b) != nil {
			return
		}
		merged, err := MergeUpdates(a, b)
		mustDecode(t, "merge", merged, err, ValidateUpdate)
		m, _ := DecodeUpdate(merged)
		for _, in := range [][]byte{a, b} {
			u, _ := DecodeUpdate(in)
			for _, c := range u.StateVector() {
				if got := m.StateVector().Clock(c.Client); got < c.Clock {
					t.Fatalf("merge holds client %d up to %d, an input up to %d", c.Client, got, c.Clock)
				}
			}
		}
		rest := m.Diff(m.StateVector())
		for _, c := range rest.Clients {
			if c.Clock < m.StateVector().Clock(c.Client) {
				t.Fatalf("diff against its own state vector starts client %d at %d", c.Client, c.Clock)
			}
		}
	})
}

// shiftedStateVector returns sv with every clock but the last lowered by one,
// so that diffs slice structs.
func shiftedStateVector(sv StateVector) []byte {
	out := make(StateVector, len(sv))
	for i, c := range sv {
		out[i] = c
		if c.Clock > 0 && i < len(sv)-1 {
			out[i].Clock--
		}
	}
	return out.Encode()
}

func mustDecode(t *testing.T, name string, out []byte, err error, decode func([]byte) error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s of an update that decodes: %v", name, err)
	}
	if err := decode(out); err != nil {
		t.Fatalf("%s gave %x, which does not decode: %v", name, out, err)
	}
}
