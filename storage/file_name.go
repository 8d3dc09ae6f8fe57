package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// fileName escapes a party or room name into a file name: bytes other than
// a-z, 0-9, '-' and '_' become %XX (upper-case hex), so that names differing
// only in case stay distinct on case-insensitive file systems, and no name is
// special ("", ".", "..", Windows' "con"). Names longer than 120 bytes once
// escaped keep 80 of them, then '~' and 32 hex digits of their SHA-256.
func fileName(s string) string {
	if s == "" {
		return "%"
	}
	var b strings.Builder
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	name := b.String()
	if windowsReserved(name) {
		name = "%" + strings.ToUpper(hex.EncodeToString([]byte(name[:1]))) + name[1:]
	}
	if len(name) > 120 {
		cut := 80
		if i := strings.LastIndexByte(name[:cut], '%'); i > cut-3 {
			cut = i // do not split an escape
		}
		sum := sha256.Sum256([]byte(s))
		name = name[:cut] + "~" + hex.EncodeToString(sum[:16])
	}
	return name
}

// windowsReserved reports whether name, in lower case, is a device name on
// Windows.
func windowsReserved(name string) bool {
	switch name {
	case "con", "prn", "aux", "nul":
		return true
	}
	return len(name) == 4 && (strings.HasPrefix(name, "com") || strings.HasPrefix(name, "lpt")) &&
		'0' <= name[3] && name[3] <= '9'
}
