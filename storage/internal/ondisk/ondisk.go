// Package ondisk holds the formats of a storage.FileStore's files, each
// written once here and nowhere else, and the one way those files are
// replaced whole.
//
// # Log
//
// A room's log is the 8 bytes [LogMagic], then records one after another. A
// record is a header of [HeaderLen] bytes, a 4-byte little-endian payload
// length (at least 1, at most [MaxRecord]) and a 4-byte little-endian
// CRC-32C (Castagnoli) of those four length bytes followed by the payload,
// then the payload: one or more operations ([Op]). A Put is the byte 'P', the
// key's length as a uvarint, the key, the value's length as a uvarint and the
// value; a Delete is the byte 'D', the key's length as a uvarint and the key.
// A record is the unit of atomicity: [Replay] applies it whole or not at all.
// A log is only ever appended to, or replaced whole by [WriteFile] with one
// that [WriteLog] wrote.
//
// # Alarm file
//
// An alarm file is the 8 bytes [AlarmMagic], a 4-byte big-endian CRC-32C of
// everything after it, the alarm's seconds since 1970 (8 bytes, big-endian,
// two's complement) and nanoseconds (4 bytes, big-endian), then the party's
// name and the room's name, each as a uvarint length and the bytes.
//
// # Replacing a file
//
// [WriteFile] writes a file's new content into path+".tmp" ([TempPath]),
// fsyncs it and renames it over path, so that path holds its old content or
// its new content, whole; [FS.SyncDir] then makes the rename durable.
//
// # File system
//
// Every file operation goes through an [FS]: [OSFS] in production, a double
// in tests that loses what was not synced at a simulated power cut. Errors
// from the file system are returned as the os package returns them (they
// name the file); damage to a file's content is a [*CorruptError].
package ondisk

import "hash/crc32"

// crcTable is the CRC-32C table of every checksum in these formats; it is
// never written after it is made.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// CorruptError reports a file whose content is damaged otherwise than by a
// torn last write: it cannot be read, and it is left as it was.
type CorruptError struct {
	Path   string // the file
	Detail string // what is wrong, and where
}

// Error returns the file's path and what is wrong with it.
func (e *CorruptError) Error() string { return e.Path + ": " + e.Detail }
