package storage

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// cutSeed seeds the random survivals of the power-cut tests (see
// survivals); every failure prints it.
const cutSeed = 16

// cutDir is the directory of the FileStores on a faultFS: its creation is
// among the steps cut.
const cutDir = "/data/store"

// cutModel is what a sequence of writes leaves in party "main": each room's
// entries and alarm.
type cutModel struct {
	kv     map[string]map[string]string
	alarms map[string]time.Time
}

// cutStep is one write of a power-cut scenario: do runs it, apply does it
// to the model.
type cutStep struct {
	name  string
	do    func(c *cutRun) error
	apply func(m *cutModel)
}

// cutRun is one run of a scenario: a FileStore on a faultFS, and the
// handles it opened, by room.
type cutRun struct {
	fs      *FileStore
	handles map[string]Storage
}

// handle returns the run's handle on room, opening it the first time.
func (c *cutRun) handle(room string) (Storage, error) {
	if s := c.handles[room]; s != nil {
		return s, nil
	}
	s, err := c.fs.Open("main", room)
	if err == nil {
		c.handles[room] = s
	}
	return s, err
}

func (c *cutRun) close() {
	for _, s := range c.handles {
		s.Close()
	}
}

// onRoom returns a step running write on room's handle.
func onRoom(name, room string, write func(s Storage) error, apply func(kv map[string]string)) cutStep {
	return cutStep{
		name: name,
		do: func(c *cutRun) error {
			s, err := c.handle(room)
			if err == nil {
				err = write(s)
			}
			return err
		},
		apply: func(m *cutModel) {
			if m.kv[room] == nil {
				m.kv[room] = map[string]string{}
			}
			apply(m.kv[room])
		},
	}
}

func cutPut(room, k, v string) cutStep {
	return onRoom(fmt.Sprintf("Put(%s, %s)", room, k), room,
		func(s Storage) error { return s.Put(k, []byte(v)) },
		func(kv map[string]string) { kv[k] = v })
}

func cutDelete(room, k string) cutStep {
	return onRoom(fmt.Sprintf("Delete(%s, %s)", room, k), room,
		func(s Storage) error { _, err := s.Delete(k); return err },
		func(kv map[string]string) { delete(kv, k) })
}

func cutDeleteAll(room string) cutStep {
	return onRoom("DeleteAll("+room+")", room,
		func(s Storage) error { return s.DeleteAll() },
		func(kv map[string]string) { clear(kv) })
}

// cutBatch returns a step writing one Batch of ops on room: "k=v" puts v
// under k, "-k" deletes k.
func cutBatch(room string, ops ...string) cutStep {
	return onRoom(fmt.Sprintf("Write(%s, %q)", room, ops), room,
		func(s Storage) error {
			var b Batch
			for _, op := range ops {
				if k, v, ok := strings.Cut(op, "="); ok {
					b.Put(k, []byte(v))
				} else {
					b.Delete(strings.TrimPrefix(op, "-"))
				}
			}
			return s.Write(&b)
		},
		func(kv map[string]string) {
			for _, op := range ops {
				if k, v, ok := strings.Cut(op, "="); ok {
					kv[k] = v
				} else {
					delete(kv, strings.TrimPrefix(op, "-"))
				}
			}
		})
}

// cutAlarm returns a step setting room's alarm to Unix second sec, or
// removing it if sec is 0.
func cutAlarm(room string, sec int64) cutStep {
	at := time.Time{}
	if sec != 0 {
		at = time.Unix(sec, 7)
	}
	return cutStep{
		name:  fmt.Sprintf("SetAlarm(%s, %d)", room, sec),
		do:    func(c *cutRun) error { return c.fs.SetAlarm("main", room, at) },
		apply: func(m *cutModel) { m.alarms[room] = at },
	}
}

// cutScenario is a sequence of writes to cut at every step.
type cutScenario struct {
	name       string
	rooms      []string // every room the steps write
	steps      []cutStep
	compactMin int64 // the store's compaction threshold; 0: the default
}

// modelOf returns the state steps leave, as stateOf prints it.
func (sc cutScenario) modelOf(steps []cutStep) string {
	m := &cutModel{kv: map[string]map[string]string{}, alarms: map[string]time.Time{}}
	for _, st := range steps {
		st.apply(m)
	}
	var b strings.Builder
	for _, room := range sc.rooms {
		fmt.Fprintf(&b, "room %s, alarm %s:\n%s", room, alarmString(m.alarms[room]), modelDump(m.kv[room]))
	}
	return b.String()
}

func alarmString(at time.Time) string {
	if at.IsZero() {
		return "none"
	}
	return at.UTC().Format(time.RFC3339Nano)
}

// openCutStore opens a FileStore on f as the scenario wants it.
func (sc cutScenario) openCutStore(f *faultFS) (*FileStore, error) {
	fs, err := openFileStore(f, cutDir)
	if err != nil {
		return nil, err
	}
	fs.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) // compactions cut short
	if sc.compactMin > 0 {
		fs.compactMin, fs.compactRatio = sc.compactMin, 2
	}
	return fs, nil
}

// run runs the scenario's steps on f and returns how many returned nil
// before the first that did not (all of them if none failed).
func (sc cutScenario) run(f *faultFS) int {
	fs, err := sc.openCutStore(f)
	if err != nil {
		return 0
	}
	c := &cutRun{fs: fs, handles: map[string]Storage{}}
	defer c.close()
	acked := -1
	for i, st := range sc.steps {
		if err := st.do(c); err != nil && acked < 0 {
			acked = i // the later steps run too, and fail: the power is out
		}
	}
	if acked < 0 {
		acked = len(sc.steps)
	}
	return acked
}

// stateOf opens sc's rooms in a FileStore on f and returns what they hold,
// as modelOf prints it; or an error if the store, a room or an alarm cannot
// be read, or Alarms disagrees with Alarm.
func (sc cutScenario) stateOf(f *faultFS) (string, error) {
	fs, err := sc.openCutStore(f)
	if err != nil {
		return "", fmt.Errorf("OpenFileStore: %w", err)
	}
	listed, err := fs.Alarms()
	if err != nil {
		return "", fmt.Errorf("Alarms: %w", err)
	}
	var b strings.Builder
	for _, room := range sc.rooms {
		s, err := fs.Open("main", room)
		if err != nil {
			return "", fmt.Errorf("Open(%s): %w", room, err)
		}
		at, err := fs.Alarm("main", room)
		if err != nil {
			return "", fmt.Errorf("Alarm(%s): %w", room, err)
		}
		var listedAt time.Time
		if i := slices.IndexFunc(listed, func(a RoomAlarm) bool { return a.Room == room }); i >= 0 {
			listedAt = listed[i].At
		}
		if !listedAt.Equal(at) {
			return "", fmt.Errorf("Alarms lists %v, Alarm(%s) returns %v", listed, room, at)
		}
		all, _ := s.List(ListOptions{})
		fmt.Fprintf(&b, "room %s, alarm %s:\n", room, alarmString(at))
		for _, kv := range all {
			fmt.Fprintf(&b, "%q=%q\n", kv.Key, kv.Value)
		}
		s.Close()
	}
	return b.String(), nil
}

// checkUsable checks that the survivor f takes writes and keeps them.
func (sc cutScenario) checkUsable(f *faultFS) error {
	fs, err := sc.openCutStore(f)
	if err != nil {
		return err
	}
	s, err := fs.Open("main", sc.rooms[0])
	if err != nil {
		return err
	}
	if err := s.Put("after the cut", []byte("kept")); err != nil {
		return fmt.Errorf("Put after the cut: %w", err)
	}
	s.Close()
	if err := fs.SetAlarm("main", sc.rooms[0], time.Unix(1e9, 0)); err != nil {
		return fmt.Errorf("SetAlarm after the cut: %w", err)
	}
	fs, err = sc.openCutStore(f.cut(survival{name: "nothing kept", data: "none"}))
	if err != nil {
		return err
	}
	s, err = fs.Open("main", sc.rooms[0])
	if err != nil {
		return fmt.Errorf("Open after a second cut: %w", err)
	}
	defer s.Close()
	if v, err := s.Get("after the cut"); err != nil || string(v) != "kept" {
		return fmt.Errorf("a Put after the cut, then a second cut: Get = %q, %v", v, err)
	}
	return nil
}

// cutScenarios are the representative sequences of writes cut at every
// step: a party's first log, Batches, Deletes, DeleteAll, alarms, a second
// room, and compactions.
func cutScenarios() []cutScenario {
	r := []string{"r"}
	return []cutScenario{
		{name: "first log of a party", rooms: r, steps: []cutStep{
			cutPut("r", "a", "1"), cutPut("r", "b", "2"), cutPut("r", "a", "3"),
		}},
		{name: "batches", rooms: r, steps: []cutStep{
			cutPut("r", "x", "0"),
			cutBatch("r", "a=1", "b=2", "-x", "a=11"),
			cutBatch("r", "-a", "c=3", "d="+strings.Repeat("D", 5000)),
		}},
		{name: "deletes", rooms: r, steps: []cutStep{
			cutPut("r", "a", "1"), cutPut("r", "b", "2"), cutDelete("r", "a"), cutDelete("r", "z"), cutPut("r", "a", "4"),
		}},
		{name: "delete all", rooms: r, steps: []cutStep{
			cutPut("r", "a", "1"), cutPut("r", "b", "2"), cutDeleteAll("r"), cutPut("r", "c", "3"),
			cutDeleteAll("r"), cutDeleteAll("r"), cutPut("r", "d", "4"),
		}},
		{name: "alarms", rooms: []string{"r", "q"}, steps: []cutStep{
			cutAlarm("r", 2e9), cutPut("r", "a", "1"), cutAlarm("r", 2e9+60), cutAlarm("q", 2e9+1),
			cutAlarm("r", 0), cutAlarm("r", 0), cutAlarm("q", 2e9+2),
		}},
		{name: "second room", rooms: []string{"r", "s"}, steps: []cutStep{
			cutPut("r", "a", "1"), cutPut("s", "b", "2"), cutBatch("s", "c=3", "-b"), cutPut("r", "d", "4"),
		}},
		{name: "compactions", rooms: r, compactMin: 300, steps: compactionSteps()},
	}
}

// compactionSteps overwrites two keys until the log has been compacted
// twice (with compactMin 300 and ratio 2).
func compactionSteps() []cutStep {
	var steps []cutStep
	for i := range 14 {
		steps = append(steps, cutPut("r", fmt.Sprint("k", i%2), fmt.Sprintf("%02d%s", i, strings.Repeat("v", 40))))
	}
	return append(steps, cutDelete("r", "k0"))
}

// TestFileStorePowerCut runs each scenario once to count its file-system
// steps, then again for every k, with the power cut after step k, and for
// each way a cut may leave what was not synced (see survivals), checks that
// a store opened on what survives opens without error and holds exactly the
// writes that returned nil, plus possibly the one in flight, whole; and
// that it takes writes again. The compaction scenario cuts every step of
// the compactions too: they must be invisible.
func TestFileStorePowerCut(t *testing.T) {
	for _, sc := range cutScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			f := newFaultFS()
			if acked := sc.run(f); acked != len(sc.steps) {
				t.Fatalf("without a cut, step %d (%s) failed; steps:\n%s", acked, sc.steps[acked].name, f.traceString())
			}
			total := f.steps
			if sc.compactMin > 0 {
				if n := strings.Count(f.traceString(), "rename "+cutDir+"/main/r.log.tmp"); n < 3 {
					t.Fatalf("%d renames over the log, want its creation and two compactions; steps:\n%s", n, f.traceString())
				}
			}
			cuts := 0
			for k := 0; k <= total; k++ {
				for _, sv := range survivals(cutSeed, k) {
					if err := sc.checkCut(k, sv); err != nil {
						t.Fatalf("seed %d, power cut after step %d of %d, %s: %v", cutSeed, k, total, sv.name, err)
					}
					cuts++
				}
			}
			t.Logf("%d steps, %d cuts checked", total, cuts)
		})
	}
}

// checkCut runs the scenario with the power cut after step k, and checks
// what survives as sv says.
func (sc cutScenario) checkCut(k int, sv survival) error {
	f := newFaultFS()
	f.limit = k
	acked := sc.run(f)
	survivor := f.cut(sv)
	got, err := sc.stateOf(survivor)
	whereAmI := func() string {
		inFlight := "none"
		if acked < len(sc.steps) {
			inFlight = sc.steps[acked].name
		}
		return fmt.Sprintf("%d writes returned nil, in flight: %s; steps:\n%s", acked, inFlight, f.traceString())
	}
	if err != nil {
		return fmt.Errorf("%v\n%s", err, whereAmI())
	}
	want := []string{sc.modelOf(sc.steps[:acked])}
	if acked < len(sc.steps) {
		want = append(want, sc.modelOf(sc.steps[:acked+1]))
	}
	if !slices.Contains(want, got) {
		return fmt.Errorf("reopened, the store holds\n%swant\n%s\n%s", got, strings.Join(want, "or\n"), whereAmI())
	}
	if err := sc.checkUsable(survivor); err != nil {
		return fmt.Errorf("%v\n%s", err, whereAmI())
	}
	return nil
}
