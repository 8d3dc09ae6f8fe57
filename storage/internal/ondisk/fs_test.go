package ondisk

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestMkdirAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "c")
	if err := MkdirAll(OSFS{}, dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("after MkdirAll: %v, %v; want a directory", fi, err)
	}
	if err := MkdirAll(OSFS{}, dir); err != nil {
		t.Errorf("MkdirAll of an existing directory: %v", err)
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, filepath.Join(file, "d")} {
		if err := MkdirAll(OSFS{}, p); err == nil {
			t.Errorf("MkdirAll(%s) through a file: no error", p)
		}
	}
}

// TestOSFSOpenMissing: a failed OpenFile returns a nil File, not a nil
// *os.File in a File that is not nil.
func TestOSFSOpenMissing(t *testing.T) {
	f, err := OSFS{}.OpenFile(filepath.Join(t.TempDir(), "none"), os.O_RDWR, 0)
	if !errors.Is(err, fs.ErrNotExist) || f != nil {
		t.Errorf("OpenFile of a missing file = %v, %v; want nil, fs.ErrNotExist", f, err)
	}
}
