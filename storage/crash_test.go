package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeTornTestLog writes a log of three records into room main/torn of fs:
// two Puts, then a Batch. It returns the log's path and bytes, and the end of
// the first and of the second record.
func writeTornTestLog(t *testing.T, fs *FileStore) (logPath string, whole []byte, firstEnd, before int64) {
	logPath = filepath.Join(fs.Dir(), "main", "torn.log")
	s := mustOpen(t, fs, "main", "torn")
	mustPut(t, s, "k1", "one")
	firstEnd = fileSize(t, logPath)
	mustPut(t, s, "k2", "two")
	before = fileSize(t, logPath)
	var b Batch // the last write: a batch, dropped all or nothing
	b.Put("k3", []byte("three"))
	b.Put("k1", []byte("ONE"))
	b.Delete("k2")
	if err := s.Write(&b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	whole, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	return logPath, whole, firstEnd, before
}

// TestFileStoreTornTail damages the last record of a log in every way a
// crash can (cut short anywhere, a byte garbled anywhere, junk appended) and
// checks that Open drops that record whole, returns nothing of it, truncates
// the log, and goes on appending.
func TestFileStoreTornTail(t *testing.T) {
	fs := restartFile(t, t.TempDir())
	logPath, whole, _, before := writeTornTestLog(t, fs)
	after := int64(len(whole))
	const (
		withLast    = `"k1"="ONE"` + "\n" + `"k3"="three"` + "\n"
		withoutLast = `"k1"="one"` + "\n" + `"k2"="two"` + "\n"
	)

	type damage struct {
		name     string
		log      []byte
		want     string // what Open must return
		wantSize int64  // the log's size after Open
	}
	var cases []damage
	for n := before; n < after; n++ {
		cases = append(cases, damage{fmt.Sprintf("cut at %d of %d", n, after), whole[:n], withoutLast, before})
	}
	for i := before; i < after; i++ {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			log := bytes.Clone(whole)
			log[i] ^= mask
			cases = append(cases, damage{fmt.Sprintf("byte %d of %d xor %#x", i, after, mask), log, withoutLast, before})
		}
	}
	cut := bytes.Clone(whole[:after-3])
	cases = append(cases,
		damage{"cut short then zeros", append(cut, make([]byte, 64)...), withoutLast, before},
		damage{"zeros appended", append(bytes.Clone(whole), make([]byte, 4096)...), withLast, after},
		damage{"junk appended", append(bytes.Clone(whole), "\x17\x00\x00\x00junk"...), withLast, after},
		damage{"one byte appended", append(bytes.Clone(whole), 1), withLast, after},
		damage{"undamaged", whole, withLast, after},
	)
	for _, c := range cases {
		if err := os.WriteFile(logPath, c.log, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := fs.Open("main", "torn")
		if err != nil {
			t.Fatalf("%s: Open: %v", c.name, err)
		}
		if got := dump(t, s); got != c.want {
			t.Fatalf("%s: Open returned\n%s\nwant\n%s", c.name, got, c.want)
		}
		if got := fileSize(t, logPath); got != c.wantSize {
			t.Fatalf("%s: log is %d bytes after Open, want %d", c.name, got, c.wantSize)
		}
		// Appending goes on after the cut.
		mustPut(t, s, "k4", "four")
		s.Close()
		s = mustOpen(t, fs, "main", "torn")
		if got, want := dump(t, s), c.want+`"k4"="four"`+"\n"; got != want {
			t.Fatalf("%s: after a new write and reopen\n%s\nwant\n%s", c.name, got, want)
		}
		s.Close()
	}
	t.Logf("%d damaged tails dropped", len(cases))
}

// TestFileStoreCorrupt damages a log before its last record, which is not a
// torn write: Open must report corruption and leave the file alone. A
// damaged alarm file is reported too.
func TestFileStoreCorrupt(t *testing.T) {
	dir := t.TempDir()
	fs := restartFile(t, dir)
	logPath, whole, firstEnd, _ := writeTornTestLog(t, fs)
	for _, c := range []struct {
		name string
		at   int64
	}{
		{"header", 2},
		{"first record's length", 8},
		{"first record's payload", firstEnd - 1},
		{"second record's CRC", firstEnd + 5},
	} {
		log := bytes.Clone(whole)
		log[c.at] ^= 0x40
		if err := os.WriteFile(logPath, log, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := fs.Open("main", "torn")
		if !errors.Is(err, ErrStorageCorrupt) {
			if err == nil {
				s.Close()
			}
			t.Errorf("damaged %s: Open: %v, want ErrStorageCorrupt", c.name, err)
		}
		if got, _ := os.ReadFile(logPath); !bytes.Equal(got, log) {
			t.Errorf("damaged %s: Open changed the file", c.name)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "main", "torn.alarm"), []byte("partyal1 garbage that is long enough"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Alarms(); !errors.Is(err, ErrStorageCorrupt) {
		t.Errorf("Alarms with a damaged alarm file: %v, want ErrStorageCorrupt", err)
	}
	if _, err := fs.Alarm("main", "torn"); !errors.Is(err, ErrStorageCorrupt) {
		t.Errorf("Alarm of a damaged alarm file: %v, want ErrStorageCorrupt", err)
	}
}

const crashDirEnv = "PARTY_STORAGE_CRASH_DIR"

// crashValue is the value a crash-test worker stores under key number i.
func crashValue(i int) string {
	return fmt.Sprintf("%d:%s", i, strings.Repeat(string(rune('a'+i%26)), 80))
}

// TestStorageCrashChild is the process TestStorageCrash kills: writers that
// loop until killed, printing "ack {worker} {i}" after each write returned
// nil. Each write is a batch: seq = i, k{i} = crashValue(i), and delete
// k{i-100}, so a consistent room holds seq = S and exactly k{S-99}..k{S}.
func TestStorageCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestStorageCrash")
	}
	fs, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	fs.compactMin, fs.compactRatio = 4<<10, 2 // compact every hundred writes or so
	var out sync.Mutex
	for w := range 2 {
		go func() {
			s, err := fs.Open("crash", fmt.Sprint("room", w))
			if err != nil {
				panic(err)
			}
			seq := -1
			if err := GetJSON(s, "seq", &seq); err != nil && !errors.Is(err, ErrKeyNotFound) {
				panic(err)
			}
			for i := seq + 1; ; i++ {
				var b Batch
				b.Put("seq", []byte(fmt.Sprint(i)))
				b.Put(fmt.Sprintf("k%08d", i), []byte(crashValue(i)))
				b.Delete(fmt.Sprintf("k%08d", i-100))
				if err := s.Write(&b); err != nil {
					panic(err)
				}
				out.Lock()
				fmt.Printf("ack %d %d\n", w, i)
				out.Unlock()
			}
		}()
	}
	time.Sleep(time.Minute) // killed long before
	t.Fatal("not killed")
}

// TestStorageCrash kills a process writing to a FileStore with SIGKILL at a
// random moment, three times over, and checks after each that every write
// that returned nil is there and that every batch is there whole or not at
// all.
func TestStorageCrash(t *testing.T) {
	dir := t.TempDir()
	acked := [2]int{-1, -1}
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStorageCrashChild$", "-test.count=1", "-test.timeout=2m")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		killAt := 100 + rand.IntN(400)
		n, killed := 0, false
		// A bounded wait: a writer that hangs is killed, and the test fails.
		var timedOut atomic.Bool
		watchdog := time.AfterFunc(time.Minute, func() { timedOut.Store(true); cmd.Process.Kill() })
		for line := range lines {
			var w, i int
			if _, err := fmt.Sscanf(line, "ack %d %d", &w, &i); err != nil {
				continue // the test framework's own output
			}
			if i != acked[w]+1 {
				t.Fatalf("round %d: worker %d acknowledged write %d after %d", round, w, i, acked[w])
			}
			acked[w] = i
			n++
			if n == killAt {
				cmd.Process.Kill() // SIGKILL; acks already in the pipe still count
				killed = true
			}
		}
		err = cmd.Wait()
		watchdog.Stop()
		if timedOut.Load() {
			t.Fatalf("round %d: %d writes acknowledged in a minute, waiting for %d\n%s", round, n, killAt, stderr.String())
		}
		if !killed {
			t.Fatalf("round %d: the writer exited before being killed: %v\n%s", round, err, stderr.String())
		}

		tmps, _ := filepath.Glob(filepath.Join(dir, "crash", "*.tmp")) // killed while compacting
		fs := restartFile(t, dir)
		inFlight := 0 // writes killed before returning that reached the file
		for w := range 2 {
			seq := checkCrashRoom(t, fs, round, w, acked[w])
			if seq > acked[w] {
				inFlight++
			}
			acked[w] = seq // the next round goes on from what is there
		}
		t.Logf("round %d: killed after %d acknowledged writes, %d unacknowledged write(s) found whole, %d compaction(s) cut short; seq %v", round, n, inFlight, len(tmps), acked)
	}
}

// checkCrashRoom checks the room of worker w after a crash: it holds the
// writes acknowledged (up to acked) and maybe the one in flight, each whole.
// It returns the room's seq.
func checkCrashRoom(t *testing.T, fs *FileStore, round, w, acked int) int {
	t.Helper()
	s := mustOpen(t, fs, "crash", fmt.Sprint("room", w))
	defer s.Close()
	seq := -1
	if err := GetJSON(s, "seq", &seq); err != nil {
		t.Fatalf("round %d, worker %d: seq: %v", round, w, err)
	}
	// The write in flight when killed may have reached the file.
	if seq < acked || seq > acked+1 {
		t.Fatalf("round %d, worker %d: seq %d after %d acknowledged writes", round, w, seq, acked)
	}
	keys, err := s.List(ListOptions{Prefix: "k"})
	if err != nil {
		t.Fatal(err)
	}
	first := max(0, seq-99)
	if len(keys) != seq-first+1 {
		t.Fatalf("round %d, worker %d: %d keys at seq %d, want %d", round, w, len(keys), seq, seq-first+1)
	}
	for j, kv := range keys {
		i := first + j
		if kv.Key != fmt.Sprintf("k%08d", i) || string(kv.Value) != crashValue(i) {
			t.Fatalf("round %d, worker %d: entry %d is %q=%q, want k%08d=%q", round, w, j, kv.Key, kv.Value, i, crashValue(i))
		}
	}
	return seq
}
