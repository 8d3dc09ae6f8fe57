package storage

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"party/storage/internal/ondisk"
)

func TestFileStoreNames(t *testing.T) {
	names := []string{
		"", ".", "..", "a", "A", "con", "CON", "Con", "com1", "lpt9", "nul.txt", "a/b", "a%2Fb", "a%2fb",
		"%", "~", "-_", "\x00", "ü", "r~0123", strings.Repeat("a", 119), strings.Repeat("a", 121),
		strings.Repeat("a", 500), strings.Repeat("a", 499) + "b", strings.Repeat("Z", 300), strings.Repeat("%20", 100),
	}
	seen := map[string]string{}
	for _, n := range names {
		f := fileName(n)
		folded := strings.ToLower(f)
		if prev, ok := seen[folded]; ok {
			t.Errorf("fileName(%q) = %q and fileName(%q) are the same on a case-insensitive file system", n, f, prev)
		}
		seen[folded] = n
		if len(f) > 120 || f == "" || f == "." || f == ".." || windowsReserved(strings.ToLower(f)) {
			t.Errorf("fileName(%q) = %q is not a safe file name", n, f)
		}
		if strings.Trim(f, "abcdefghijklmnopqrstuvwxyz0123456789-_%ABCDEF~") != "" {
			t.Errorf("fileName(%q) = %q has unexpected characters", n, f)
		}
	}

	// And every one of them is a room of its own on the disk.
	dir := t.TempDir()
	fs, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		s := mustOpen(t, fs, n, n)
		mustPut(t, s, "name", n)
		s.Close()
	}
	fs, _ = OpenFileStore(dir)
	for _, n := range names {
		s := mustOpen(t, fs, n, n)
		if v, err := s.Get("name"); err != nil || string(v) != n {
			t.Errorf("room %q holds %q, %v", n, v, err)
		}
		s.Close()
	}
	if _, err := OpenFileStore(filepath.Join(dir, fileName("a"), fileName("a")+".log")); err == nil {
		t.Error("OpenFileStore of a file: no error")
	}
}

func TestFileStoreCompaction(t *testing.T) {
	dir := t.TempDir()
	fs, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	fs.compactMin = 8 << 10
	s := mustOpen(t, fs, "main", "compact")
	logPath := filepath.Join(dir, "main", "compact.log")
	model := map[string]string{}
	maxSize, compactions := int64(0), 0
	var last int64
	for i := range 400 {
		k := fmt.Sprintf("k%02d", i%30)
		if i%7 == 3 {
			if _, err := s.Delete(k); err != nil {
				t.Fatal(err)
			}
			delete(model, k)
		} else {
			v := fmt.Sprintf("%d-%s", i, strings.Repeat("v", 60))
			mustPut(t, s, k, v)
			model[k] = v
		}
		fi, err := os.Stat(logPath)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() < last {
			compactions++
		}
		last = fi.Size()
		maxSize = max(maxSize, fi.Size())
	}
	if compactions == 0 {
		t.Fatalf("the log never shrank (size %d)", last)
	}
	// live data is about 30*(70+28) bytes; the log stays under
	// max(compactMin, ratio*live) plus one record.
	if limit := int64(4*30*100 + 200); maxSize > limit {
		t.Errorf("log grew to %d bytes, over %d", maxSize, limit)
	}
	t.Logf("%d compactions, log at most %d bytes", compactions, maxSize)
	want := modelDump(model)
	if got := dump(t, s); got != want {
		t.Fatalf("after compactions:\n%s\nwant:\n%s", got, want)
	}
	s.Close()
	if got := dump(t, mustOpen(t, restartFile(t, dir), "main", "compact")); got != want {
		t.Fatalf("after compactions and restart:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(logPath + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

// TestFileStoreCompactionFailure makes every compaction fail (a directory
// stands where its temporary file goes) and checks that the failure is
// logged with the log's path, that the old log keeps every write, that
// writes go on, and that compaction works again once the obstacle is gone.
func TestFileStoreCompactionFailure(t *testing.T) {
	dir := t.TempDir()
	fs := restartFile(t, dir)
	fs.compactMin = 8 << 10
	var logged bytes.Buffer // written only by the writing goroutine: this one
	fs.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	s := mustOpen(t, fs, "main", "compact")
	logPath := filepath.Join(dir, "main", "compact.log")
	model := map[string]string{}
	write := func(i int) {
		k, v := fmt.Sprintf("k%02d", i%30), fmt.Sprintf("%d-%s", i, strings.Repeat("v", 60))
		mustPut(t, s, k, v)
		model[k] = v
	}
	write(0) // the log and the party's directory exist
	blocker := filepath.Join(ondisk.TempPath(logPath), "blocker")
	if err := os.MkdirAll(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	last := fileSize(t, logPath)
	for i := 1; i < 400; i++ {
		write(i)
		size := fileSize(t, logPath)
		if size < last {
			t.Fatalf("write %d: the log shrank from %d to %d bytes though compaction cannot write", i, last, size)
		}
		last = size
	}
	if last < 4*30*100 {
		t.Fatalf("the log is only %d bytes: compaction was never due", last)
	}
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if len(lines) == 0 || lines[0] == "" || len(lines) > 10 {
		t.Fatalf("%d lines logged, want 1 to 10 (failures logged, retries put off):\n%s", len(lines), logged.String())
	}
	t.Logf("%d failed compactions logged, the first:\n%s", len(lines), lines[0])
	for _, l := range lines {
		if !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "path="+logPath) || !strings.Contains(l, ondisk.TempPath(logPath)) {
			t.Errorf("logged %q, want an ERROR with path=%s and the failing temporary file", l, logPath)
		}
	}
	want := modelDump(model)
	if got := dump(t, s); got != want {
		t.Fatalf("after failed compactions:\n%s\nwant:\n%s", got, want)
	}

	// The obstacle gone, a later write compacts.
	if err := os.RemoveAll(ondisk.TempPath(logPath)); err != nil {
		t.Fatal(err)
	}
	shrank := false
	for i := 400; i < 800 && !shrank; i++ {
		write(i)
		size := fileSize(t, logPath)
		shrank = size < last
		last = size
	}
	if !shrank {
		t.Fatalf("the log never shrank once compaction could write (%d bytes)", last)
	}
	want = modelDump(model)
	s.Close()
	if got := dump(t, mustOpen(t, restartFile(t, dir), "main", "compact")); got != want {
		t.Fatalf("after a restart:\n%s\nwant:\n%s", got, want)
	}
}

// TestFileStoreSetAlarmConcurrent sets alarms from many goroutines at once,
// on the same room and on others: each write must succeed (none trips over
// another's temporary file) and the last one of each room must be what is
// read back.
func TestFileStoreSetAlarmConcurrent(t *testing.T) {
	dir := t.TempDir()
	fs := restartFile(t, dir)
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	const workers, writes = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*writes)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range writes {
				room := "shared"
				if i%2 == 1 {
					room = fmt.Sprint("own", w)
				}
				if err := fs.SetAlarm("main", room, base.Add(time.Duration(w*writes+i)*time.Second)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	alarms, err := restartFile(t, dir).Alarms()
	if err != nil || len(alarms) != workers+1 {
		t.Fatalf("Alarms = %v, %v; want %d alarms", alarms, err, workers+1)
	}
	for _, a := range alarms {
		var w int
		if _, err := fmt.Sscanf(a.Room, "own%d", &w); err == nil {
			if want := base.Add(time.Duration(w*writes+writes-1) * time.Second); !a.At.Equal(want) {
				t.Errorf("room %s: alarm %v, want its last one %v", a.Room, a.At, want)
			}
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "main", "*.tmp")); len(tmps) != 0 {
		t.Errorf("temporary files left: %q", tmps)
	}
	if err := os.WriteFile(filepath.Join(dir, "main", "shared.alarm"), []byte("partyal1 damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Alarm("main", "shared"); !errors.Is(err, ErrStorageCorrupt) {
		t.Errorf("Alarm of a damaged file: %v, want ErrStorageCorrupt", err)
	}
}
