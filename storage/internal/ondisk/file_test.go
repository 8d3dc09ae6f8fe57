package ondisk

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func writeAll(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	check := func(what string, want []byte) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: file holds %q, %v; want %q", what, got, err, want)
		}
		if _, err := os.Stat(TempPath(path)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: the temporary file is left: %v", what, err)
		}
	}
	if err := WriteFile(OSFS{}, path, writeAll([]byte("old"))); err != nil {
		t.Fatal(err)
	}
	check("created", []byte("old"))
	if err := (OSFS{}).SyncDir(dir); err != nil {
		t.Fatal(err)
	}

	// A writer failing halfway leaves the old content.
	boom := errors.New("boom")
	err := WriteFile(OSFS{}, path, func(w io.Writer) error {
		w.Write(bytes.Repeat([]byte("new"), 10000))
		return boom
	})
	if err != boom {
		t.Fatalf("WriteFile with a failing writer: %v, want the writer's error", err)
	}
	check("after a failed write", []byte("old"))

	// So does a temporary file that cannot be created; nothing of it is
	// removed.
	if err := os.MkdirAll(filepath.Join(TempPath(path), "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(OSFS{}, path, writeAll([]byte("new"))); err == nil {
		t.Fatal("WriteFile with a directory at the temporary path: no error")
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Fatalf("after a failed create: %q, want old", got)
	}
	if _, err := os.Stat(filepath.Join(TempPath(path), "x")); err != nil {
		t.Fatalf("WriteFile removed what it did not create: %v", err)
	}
	os.RemoveAll(TempPath(path))

	if err := WriteFile(OSFS{}, path, writeAll([]byte("new"))); err != nil {
		t.Fatal(err)
	}
	check("replaced", []byte("new"))
	if err := (OSFS{}).SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("SyncDir of a missing directory: no error")
	}
}

// TestWriteFileNeverMixed rewrites a file over and over between two contents
// of different lengths while readers read it: every read must be one of the
// two, whole.
func TestWriteFileNeverMixed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	a, b := bytes.Repeat([]byte("a"), 64<<10), bytes.Repeat([]byte("b"), 100<<10)
	if err := WriteFile(OSFS{}, path, writeAll(a)); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				got, err := os.ReadFile(path)
				if err != nil {
					t.Errorf("read during rewrites: %v", err)
					return
				}
				if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
					t.Errorf("read %d bytes that are neither content whole", len(got))
					return
				}
				reads.Add(1)
			}
		}()
	}
	for i := range 200 {
		content := a
		if i%2 == 0 {
			content = b
		}
		// Written in small pieces, so a reader of a file written in
		// place would catch it half done.
		err := WriteFile(OSFS{}, path, func(w io.Writer) error {
			for p := content; len(p) > 0; p = p[min(len(p), 1000):] {
				if _, err := w.Write(p[:min(len(p), 1000)]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d reads during 200 rewrites", reads.Load())
}
