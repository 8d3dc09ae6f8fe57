package yjs

import (
	"bytes"
	"testing"
)

// The benchmark document: a ~1 MB text of 60,000 small edits (see
// interop/yjs/fixtures.mjs, writeBench).

// The stored state plus the last 1,000 edits, merged: what a server does to
// compact a room's history.
func BenchmarkMergeUpdates(b *testing.B) {
	final, base, _, edits := benchFrames(b)
	in := append([][]byte{base}, edits...)
	b.SetBytes(int64(len(final)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := MergeUpdates(in...); err != nil {
			b.Fatal(err)
		}
	}
}

// The final state against a state vector from halfway: what a server sends a
// client that answers sync step 1.
func BenchmarkDiffUpdate(b *testing.B) {
	final, _, half, _ := benchFrames(b)
	b.SetBytes(int64(len(final)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := DiffUpdate(final, half); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeUpdate(b *testing.B) {
	final, _, _, _ := benchFrames(b)
	b.SetBytes(int64(len(final)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := DecodeUpdate(final); err != nil {
			b.Fatal(err)
		}
	}
}

// The benchmark's data is what the benchmarks assume: the stored state plus
// the edits is the final state (same state vector, and the same bytes once
// diffed against nothing), and our operations on it decode.
func TestBenchData(t *testing.T) {
	final, base, half, edits := benchFrames(t)
	merged, err := MergeUpdates(append([][]byte{base}, edits...)...)
	if err != nil {
		t.Fatal(err)
	}
	svMerged, _ := EncodeStateVectorFromUpdate(merged)
	svFinal, _ := EncodeStateVectorFromUpdate(final)
	if !bytes.Equal(svMerged, svFinal) {
		t.Errorf("state vector of the merge %x, of the final state %x", svMerged, svFinal)
	}
	diff, err := DiffUpdate(final, half)
	if err != nil || ValidateUpdate(diff) != nil || len(diff) >= len(final) {
		t.Errorf("diff against halfway: %d bytes of %d, %v", len(diff), len(final), err)
	}
	if len(final) < 900_000 {
		t.Errorf("the final state is %d bytes, want about 1 MB", len(final))
	}
}
