package ondisk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// writeTestLog writes a log of one record per element of records (each
// record one operation) and returns its bytes and the end of each record.
func writeTestLog(t *testing.T, path string, records []Op) ([]byte, []int64) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteLog(&b, nil); err != nil {
		t.Fatal(err)
	}
	var ends []int64
	for _, op := range records {
		b.Write(Seal(AppendOp(NewRecord(nil), op)))
		ends = append(ends, int64(b.Len()))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), ends
}

// replayFile replays the log at path, returning the operations applied, in
// order, and the length Replay returned.
func replayFile(t *testing.T, path string) ([]Op, int64, error) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []Op
	size, err := Replay(f, func(ops []Op) { got = append(got, ops...) })
	return got, size, err
}

func TestWriteLogReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var ops []Op
	for i := range 40 { // 40 values of 100 KiB: several records
		ops = append(ops, Op{Key: fmt.Sprint("k", i), Value: bytes.Repeat([]byte{byte(i)}, 100<<10)})
	}
	var b bytes.Buffer
	if err := WriteLog(&b, ops); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []Op
	records := 0
	size, err := Replay(f, func(rec []Op) { got = append(got, rec...); records++ })
	if err != nil || size != int64(b.Len()) {
		t.Fatalf("Replay = %d, %v; want %d, nil", size, err, b.Len())
	}
	if !reflect.DeepEqual(got, ops) {
		t.Fatalf("Replay applied %d operations, not the %d written", len(got), len(ops))
	}
	if records < 4 || records > 5 {
		t.Errorf("4 MiB of values in %d records, want records of about a MiB", records)
	}

	// An empty log replays to nothing.
	b.Reset()
	WriteLog(&b, nil)
	os.WriteFile(path, b.Bytes(), 0o644)
	if got, size, err := replayFile(t, path); err != nil || size != int64(len(LogMagic)) || len(got) != 0 {
		t.Errorf("empty log: Replay = %v, %d, %v", got, size, err)
	}
}

// TestReplayTornTail cuts the last record short at every length and garbles
// each of its bytes: Replay must drop it whole, truncate the file before it,
// and apply the records before.
func TestReplayTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	records := []Op{{Key: "a", Value: []byte("1")}, {Delete: true, Key: "b"}, {Key: "c", Value: []byte("three")}}
	whole, ends := writeTestLog(t, path, records)
	before := ends[1]
	var logs [][]byte
	for n := before; n < int64(len(whole)); n++ {
		logs = append(logs, whole[:n])
	}
	for i := before; i < int64(len(whole)); i++ {
		log := bytes.Clone(whole)
		log[i] ^= 0x20
		logs = append(logs, log)
	}
	logs = append(logs, append(bytes.Clone(whole[:len(whole)-1]), make([]byte, 100)...))
	for _, log := range logs {
		if err := os.WriteFile(path, log, 0o644); err != nil {
			t.Fatal(err)
		}
		got, size, err := replayFile(t, path)
		if err != nil || size != before || !reflect.DeepEqual(got, records[:2]) {
			t.Fatalf("log of %d bytes: Replay = %+v, %d, %v; want the first two records, %d", len(log), got, size, err, before)
		}
		if onDisk, _ := os.ReadFile(path); !bytes.Equal(onDisk, whole[:before]) {
			t.Fatalf("log of %d bytes: after Replay the file is %d bytes, want %d", len(log), len(onDisk), before)
		}
	}
}

// TestReplayCorrupt damages a log before its last record: Replay must report
// a *CorruptError and leave the file as it was.
func TestReplayCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	records := []Op{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}
	whole, ends := writeTestLog(t, path, records)
	badOps := []byte("Z\x01k")
	badRecord := Seal(append(NewRecord(nil), badOps...)) // a good CRC over a bad payload
	for _, c := range []struct {
		name string
		log  []byte
	}{
		{"magic", append([]byte("partylg2"), whole[len(LogMagic):]...)},
		{"short magic", whole[:4]},
		{"first record's length", flip(whole, len(LogMagic))},
		{"first record's CRC", flip(whole, len(LogMagic)+5)},
		{"first record's payload", flip(whole, int(ends[0])-1)},
		{"a record that does not parse", append(bytes.Clone(whole), badRecord...)},
	} {
		if err := os.WriteFile(path, c.log, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := replayFile(t, path)
		var corrupt *CorruptError
		if !errors.As(err, &corrupt) || corrupt.Path != path {
			t.Errorf("damaged %s: Replay: %v, want a *CorruptError naming %s", c.name, err, path)
		}
		if onDisk, _ := os.ReadFile(path); !bytes.Equal(onDisk, c.log) {
			t.Errorf("damaged %s: Replay changed the file", c.name)
		}
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x40
	return b
}
