package ondisk

import (
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAlarmCodec(t *testing.T) {
	for _, a := range []Alarm{
		{Party: "main", Room: "r1", At: time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC)},
		{Party: "", Room: "", At: time.Unix(-1, 999999999)},
		{Party: "Other Party", Room: string(make([]byte, 300)), At: time.Unix(1<<40, 1)},
	} {
		b := EncodeAlarm(a)
		got, ok := DecodeAlarm(b)
		if !ok || got.Party != a.Party || got.Room != a.Room || !got.At.Equal(a.At) {
			t.Errorf("DecodeAlarm(EncodeAlarm(%v)) = %v, %v", a, got, ok)
		}
		for i := range b { // every damaged byte is noticed
			d := append([]byte{}, b...)
			d[i] ^= 0x10
			if got, ok := DecodeAlarm(d); ok {
				t.Errorf("%v with byte %d damaged decodes as %v", a, i, got)
			}
		}
		for n := range len(b) { // and every cut
			if got, ok := DecodeAlarm(b[:n]); ok {
				t.Errorf("%v cut to %d bytes decodes as %v", a, n, got)
			}
		}
	}
}

// TestAlarmBytes pins the format: files written before must stay readable.
func TestAlarmBytes(t *testing.T) {
	b := EncodeAlarm(Alarm{Party: "p", Room: "rm", At: time.Unix(0x01020304, 5)})
	const want = "7061727479616c31" + // partyal1
		"ee61889f" + // CRC-32C of the rest (as the code before this package wrote it)
		"0000000001020304" + "00000005" + // seconds, nanoseconds
		"0170" + "02726d" // party, room
	if got := hex.EncodeToString(b); got != want {
		t.Errorf("alarm file = %s\nwant          %s", got, want)
	}
}

func TestReadAlarm(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.alarm")
	if _, err := ReadAlarm(OSFS{}, path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadAlarm of a missing file: %v, want fs.ErrNotExist", err)
	}
	a := Alarm{Party: "p", Room: "r", At: time.Unix(100, 5)}
	os.WriteFile(path, EncodeAlarm(a), 0o644)
	if got, err := ReadAlarm(OSFS{}, path); err != nil || !got.At.Equal(a.At) || got.Party != "p" || got.Room != "r" {
		t.Errorf("ReadAlarm = %v, %v; want %v", got, err, a)
	}
	os.WriteFile(path, []byte("partyal1 but damaged"), 0o644)
	var corrupt *CorruptError
	if _, err := ReadAlarm(OSFS{}, path); !errors.As(err, &corrupt) || corrupt.Path != path {
		t.Errorf("ReadAlarm of a damaged file: %v, want a *CorruptError naming it", err)
	}
}
