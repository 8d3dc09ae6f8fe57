package storage

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// syncFault is an operation of the file system failing under one write of
// a FileStore.
type syncFault struct {
	name       string
	compactMin int64     // the store's compaction threshold; 0: the default
	setup      []cutStep // writes before the fault, which succeed
	faults     map[string]int
	write      cutStep // the write that meets the fault
	acked      bool    // the write returns nil all the same (a compaction's failure is only logged)
	broken     string  // what the error of every later write says; "" if later writes succeed
	reopenErr  string  // what the first reopening's error says, if it fails
}

func syncFaults() []syncFault {
	ab := []cutStep{cutPut("r", "a", "1"), cutPut("r", "b", "2")}
	const (
		logSync = "writes refused since an fsync of the log failed"
		dirSync = "writes refused since an fsync of its directory failed"
	)
	return []syncFault{
		{name: "fsync of the log", setup: ab, faults: map[string]int{"sync": 1},
			write: cutPut("r", "c", "3"), broken: logSync},
		{name: "fsync of the log, then the repair's", setup: ab, faults: map[string]int{"sync": 2},
			write: cutBatch("r", "c=3", "-a"), broken: logSync, reopenErr: "repairing a log after a failed fsync"},
		{name: "write of the log", setup: ab, faults: map[string]int{"write": 1},
			write: cutBatch("r", "c=3", "d="+strings.Repeat("d", 100))},
		{name: "write of the log, then its cutting off", setup: ab, faults: map[string]int{"write": 1, "truncate": 1},
			write: cutPut("r", "c", "3"), broken: "writes refused since cutting off a failed write failed"},
		{name: "fsync of the store's directory at a party's first write", faults: map[string]int{"syncdir": 1},
			write: cutPut("r", "a", "1")},
		{name: "fsync of the directory at a log's creation", setup: []cutStep{cutPut("r", "a", "1"), cutDeleteAll("r")},
			faults: map[string]int{"syncdir": 1}, write: cutPut("r", "b", "2"), broken: dirSync},
		{name: "fsync of the directory at DeleteAll", setup: ab, faults: map[string]int{"syncdir": 1},
			write: cutDeleteAll("r"), broken: dirSync},
		{name: "fsync of the directory after a compaction's rename", compactMin: 300, setup: compactionSteps()[:5],
			faults: map[string]int{"syncdir": 1}, write: compactionSteps()[5], acked: true, broken: dirSync},
		{name: "fsync of an alarm file", setup: ab, faults: map[string]int{"sync": 1}, write: cutAlarm("r", 2e9)},
	}
}

// TestFileStoreFailedSync makes one operation fail under a write, as a
// failing disk does, and checks that the write returns an error (but for a
// compaction's, which is only logged); that if the fault leaves the disk in
// doubt (a failed fsync), every later write fails with an error saying so,
// and otherwise later writes succeed; that reads still work and show what
// was acknowledged; that after a power cut the disk holds what was
// acknowledged (and maybe the failed write); and that once the room is
// opened again it takes writes that survive the next cut.
func TestFileStoreFailedSync(t *testing.T) {
	for _, c := range syncFaults() {
		t.Run(c.name, c.check)
	}
}

func (c syncFault) check(t *testing.T) {
	sc := cutScenario{rooms: []string{"r"}, compactMin: c.compactMin}
	f := newFaultFS()
	fs, err := sc.openCutStore(f)
	if err != nil {
		t.Fatal(err)
	}
	run := &cutRun{fs: fs, handles: map[string]Storage{}}
	defer run.close()
	for _, st := range c.setup {
		if err := st.do(run); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	for kind, n := range c.faults {
		f.failNext(kind, n)
	}
	err = c.write.do(run)
	if (err == nil) != c.acked {
		t.Fatalf("%s, meeting the fault: %v; steps:\n%s", c.write.name, err, f.traceString())
	}
	acked := c.setup
	if c.acked {
		acked = append(slices.Clip(acked), c.write)
	}
	c.checkLaterWrites(t, run, f)
	s, _ := run.handle("r")
	if got, want := "room r, alarm "+alarmString(mustAlarm(t, fs))+":\n"+dump(t, s), sc.modelOf(acked); got != want {
		t.Errorf("reads after the fault show\n%swant what was acknowledged\n%s", got, want)
	}
	c.checkCuts(t, sc, f, acked, "after the fault")

	// Opened again, the room takes writes, and they survive a cut.
	run.close()
	run = &cutRun{fs: fs, handles: map[string]Storage{}}
	defer run.close()
	if _, err := run.handle("r"); c.reopenErr != "" {
		if err == nil || !strings.Contains(err.Error(), c.reopenErr) {
			t.Fatalf("first reopening: %v, want an error saying %q", err, c.reopenErr)
		}
		if _, err := run.handle("r"); err != nil {
			t.Fatalf("second reopening: %v", err)
		}
	} else if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	if left := f.armed(); left != "" {
		t.Fatalf("faults never met: %s; steps:\n%s", left, f.traceString())
	}
	s, _ = run.handle("r")
	seen := "room r, alarm " + alarmString(mustAlarm(t, fs)) + ":\n" + dump(t, s)
	if seen != sc.modelOf(acked) {
		acked = append(slices.Clip(acked), c.write) // the failed write is there, whole
		if seen != sc.modelOf(acked) {
			t.Fatalf("reopened, the room holds\n%swant what was acknowledged, and maybe the failed write", seen)
		}
	}
	after := cutPut("r", "after", "reopened")
	if err := after.do(run); err != nil {
		t.Fatalf("a write after reopening: %v", err)
	}
	c.checkCuts(t, sc, f, append(acked, after), "after reopening and a write")
}

// checkLaterWrites checks the writes after the fault: refused with an error
// saying why if c.broken, or else successful.
func (c syncFault) checkLaterWrites(t *testing.T, run *cutRun, f *faultFS) {
	later := []cutStep{cutPut("r", "later", "x"), cutBatch("r", "l=1", "-a"), cutDelete("r", "b"), cutDeleteAll("r")}
	if c.broken == "" {
		if err := later[0].do(run); err != nil {
			t.Fatalf("%s after the fault: %v; steps:\n%s", later[0].name, err, f.traceString())
		}
		// Not acknowledged for the checks that follow: undo it.
		if err := cutDelete("r", "later").do(run); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, st := range later {
		err := st.do(run)
		if err == nil || !strings.Contains(err.Error(), c.broken) || !strings.Contains(err.Error(), "open it again") {
			t.Errorf("%s after the fault: %v, want an error saying %q and what to do", st.name, err, c.broken)
		}
	}
}

// checkCuts cuts the power on f (which is left as it was) in every way
// survivals lists, and checks that what survives holds the writes of
// acked, and maybe, if c's write was not acknowledged, that one too.
func (c syncFault) checkCuts(t *testing.T, sc cutScenario, f *faultFS, acked []cutStep, when string) {
	t.Helper()
	want := []string{sc.modelOf(acked)}
	if !c.acked {
		want = append(want, sc.modelOf(append(slices.Clip(acked), c.write)))
	}
	for _, sv := range survivals(cutSeed, len(acked)) {
		got, err := sc.stateOf(f.cut(sv))
		if err != nil {
			t.Fatalf("seed %d, power cut %s, %s: %v; steps:\n%s", cutSeed, when, sv.name, err, f.traceString())
		}
		if !slices.Contains(want, got) {
			t.Fatalf("seed %d, power cut %s, %s: the store holds\n%swant\n%s\nsteps:\n%s",
				cutSeed, when, sv.name, got, strings.Join(want, "or\n"), f.traceString())
		}
	}
}

func mustAlarm(t *testing.T, fs *FileStore) time.Time {
	t.Helper()
	at, err := fs.Alarm("main", "r")
	if err != nil {
		t.Fatal(err)
	}
	return at
}
