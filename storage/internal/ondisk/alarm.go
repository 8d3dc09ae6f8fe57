package ondisk

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"time"
)

// AlarmMagic is the first 8 bytes of every alarm file.
const AlarmMagic = "partyal1"

// Alarm is the content of an alarm file: the time set for one room.
type Alarm struct {
	Party, Room string
	At          time.Time
}

// EncodeAlarm returns the content of the alarm file of a. Only a.At's instant
// is kept, to the nanosecond.
func EncodeAlarm(a Alarm) []byte {
	h := len(AlarmMagic) + 4
	b := make([]byte, h, h+12+2*binary.MaxVarintLen64+len(a.Party)+len(a.Room))
	copy(b, AlarmMagic)
	b = binary.BigEndian.AppendUint64(b, uint64(a.At.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(a.At.Nanosecond()))
	for _, name := range []string{a.Party, a.Room} {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
	}
	binary.BigEndian.PutUint32(b[len(AlarmMagic):], crc32.Checksum(b[h:], crcTable))
	return b
}

// DecodeAlarm parses the content of an alarm file; At is in the local time
// zone. It reports false if b is not a whole, undamaged alarm file.
func DecodeAlarm(b []byte) (Alarm, bool) {
	h := len(AlarmMagic) + 4
	if len(b) < h+12 || !bytes.HasPrefix(b, []byte(AlarmMagic)) ||
		crc32.Checksum(b[h:], crcTable) != binary.BigEndian.Uint32(b[len(AlarmMagic):]) {
		return Alarm{}, false
	}
	sec := int64(binary.BigEndian.Uint64(b[h:]))
	nsec := int64(binary.BigEndian.Uint32(b[h+8:]))
	p := b[h+12:]
	var names [2]string
	for i := range names {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return Alarm{}, false
		}
		names[i] = string(p[k : k+int(n)])
		p = p[k+int(n):]
	}
	return Alarm{Party: names[0], Room: names[1], At: time.Unix(sec, nsec)}, true
}

// ReadAlarm reads the alarm file at path of fsys. It returns fsys's error
// if the file cannot be read (one wrapping fs.ErrNotExist if there is none),
// and a [*CorruptError] if it is damaged.
func ReadAlarm(fsys FS, path string) (Alarm, error) {
	b, err := fsys.ReadFile(path)
	if err != nil {
		return Alarm{}, err
	}
	a, ok := DecodeAlarm(b)
	if !ok {
		return Alarm{}, &CorruptError{Path: path, Detail: "bad alarm file"}
	}
	return a, nil
}
