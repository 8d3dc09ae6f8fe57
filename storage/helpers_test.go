package storage

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// store is what both MemoryStore and FileStore are.
type store interface {
	Provider
	AlarmStore
}

// storeKinds runs f once for each Storage implementation. restart returns a
// provider standing for the same store after a process restart: the same
// MemoryStore (which keeps data only while the process lives), or a new
// FileStore on the same directory.
func storeKinds(t *testing.T, f func(t *testing.T, p store, restart func() store)) {
	t.Run("memory", func(t *testing.T) {
		m := NewMemoryStore()
		f(t, m, func() store { return m })
	})
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		restart := func() store {
			fs, err := OpenFileStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			return fs
		}
		f(t, restart(), restart)
	})
}

func mustOpen(t testing.TB, p Provider, party, room string) Storage {
	t.Helper()
	s, err := p.Open(party, room)
	if err != nil {
		t.Fatalf("Open(%q, %q): %v", party, room, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustPut(t testing.TB, s Storage, key, value string) {
	t.Helper()
	if err := s.Put(key, []byte(value)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// dump returns every entry of s as "key=value" lines.
func dump(t testing.TB, s Storage) string {
	t.Helper()
	all, err := s.List(ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var b strings.Builder
	for _, kv := range all {
		fmt.Fprintf(&b, "%q=%q\n", kv.Key, kv.Value)
	}
	return b.String()
}

func keysOf(kvs []KeyValue) []string {
	keys := []string{}
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	return keys
}

func restartFile(t testing.TB, dir string) *FileStore {
	t.Helper()
	fs, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
