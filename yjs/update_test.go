package yjs

import (
	"bytes"
	"errors"
	"testing"
)

// Every update yjs wrote (the cases' updates, yjs's merges and diffs) decodes,
// and encodes back to the same bytes.
func TestDecodeEncodeFixtures(t *testing.T) {
	for _, f := range fixtures(t) {
		t.Run(f.Name, func(t *testing.T) {
			all := map[string]string{"merged": f.Merged}
			for i, u := range f.Updates {
				all["update "+itoa(i)] = u
			}
			for i, d := range f.Diffs {
				all["diff "+itoa(i)] = d.Diff
			}
			for name, s := range all {
				b := unb64(t, s)
				u, err := DecodeUpdate(b)
				if err != nil {
					t.Fatalf("%s: DecodeUpdate: %v", name, err)
				}
				if got := u.Encode(); !bytes.Equal(got, b) {
					t.Errorf("%s: Encode differs from the input\n got %x\nwant %x", name, got, b)
				}
				if err := u.Validate(); err != nil {
					t.Errorf("%s: Validate: %v", name, err)
				}
			}
		})
	}
}

// Our state vector of every update, and of yjs's merge, is yjs's byte for byte.
func TestStateVectorFixtures(t *testing.T) {
	for _, f := range fixtures(t) {
		t.Run(f.Name, func(t *testing.T) {
			check := func(name, update, want string) {
				got, err := EncodeStateVectorFromUpdate(unb64(t, update))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !bytes.Equal(got, unb64(t, want)) {
					t.Errorf("%s: state vector %x, yjs says %x", name, got, unb64(t, want))
				}
				sv, err := DecodeStateVector(got)
				if err != nil || !bytes.Equal(sv.Encode(), got) {
					t.Errorf("%s: state vector does not round-trip: %v", name, err)
				}
			}
			for i, u := range f.Updates {
				check("update "+itoa(i), u, f.StateVectors[i])
			}
			check("merged", f.Merged, f.MergedStateVector)
		})
	}
}

// Our merge and diff of every case decode, have yjs's state vector, and are
// mostly yjs's bytes; that they are the same document is checked with yjs by
// interop/yjs/check.test.mjs.
func TestMergeDiffFixtures(t *testing.T) {
	same, total := 0, 0
	for _, f := range fixtures(t) {
		t.Run(f.Name, func(t *testing.T) {
			merged, err := MergeUpdates(f.updates(t)...)
			if err != nil {
				t.Fatalf("MergeUpdates: %v", err)
			}
			if err := ValidateUpdate(merged); err != nil {
				t.Fatalf("our merge does not decode: %v", err)
			}
			sv, _ := EncodeStateVectorFromUpdate(merged)
			if !bytes.Equal(sv, unb64(t, f.MergedStateVector)) {
				t.Errorf("state vector of our merge %x, of yjs's %x", sv, unb64(t, f.MergedStateVector))
			}
			total++
			if bytes.Equal(merged, unb64(t, f.Merged)) {
				same++
			} else {
				t.Logf("merge differs from yjs's bytes")
			}
			for i, d := range f.Diffs {
				src := unb64(t, f.Merged)
				if d.Of >= 0 {
					src = unb64(t, f.Updates[d.Of])
				}
				got, err := DiffUpdate(src, unb64(t, d.SV))
				if err != nil {
					t.Fatalf("diff %d: %v", i, err)
				}
				total++
				if bytes.Equal(got, unb64(t, d.Diff)) {
					same++
				} else {
					t.Errorf("diff %d differs from yjs's\n got %x\nwant %x", i, got, unb64(t, d.Diff))
				}
			}
		})
	}
	t.Logf("%d of %d merges and diffs are yjs's bytes", same, total)
}

func TestMergeOneUpdateIsACopy(t *testing.T) {
	b := unb64(t, fixtures(t)[0].Updates[0])
	got, err := MergeUpdates(b)
	if err != nil || !bytes.Equal(got, b) || &got[0] == &b[0] {
		t.Fatalf("MergeUpdates(one) = %x, %v; want a copy of %x", got, err, b)
	}
	if _, err := MergeUpdates(b, []byte{1}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("MergeUpdates with a truncated update: %v, want ErrMalformed", err)
	}
}

func itoa(i int) string {
	return string(rune('0'+i/100%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}
