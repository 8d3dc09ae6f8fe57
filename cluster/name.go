package cluster

import (
	"errors"
	"fmt"
	"strings"
)

// MaxKeyLen is the most bytes a room's encoded key (see [EncodeName]) may
// have: EncodeName(party) + "." + EncodeName(room). A room whose key is longer
// is refused with an error wrapping [ErrNameTooLong]. NATS has no fixed limit
// on subjects, but every key travels in a protocol line the server caps at
// 4 KiB, beside the bucket's prefix and headers.
const MaxKeyLen = 1024

// EncodeName encodes any string (a party name, a room id: any bytes, UTF-8 or
// not) as a non-empty NATS key-value key token, one that matches
// [-_=a-zA-Z0-9]+ and so holds no '.' (the token separator), '*', '>' or
// space, and is also a valid NATS subject token.
//
// The encoding: ASCII letters, digits, '-' and '_' stand for themselves;
// every other byte is '=' followed by its value in two upper-case hex digits
// ("a b" is "a=20b", "%C3%A9" is "=25C3=25A9"); the empty string is "=". The
// encoding is injective: '=' starts an escape and nothing else, an escape is
// always three bytes, and a lone '=' only encodes "". [DecodeName] inverts it.
func EncodeName(s string) string {
	if s == "" {
		return "="
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plainByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xF])
	}
	return b.String()
}

// errBadName is wrapped by DecodeName's errors.
var errBadName = errors.New("cluster: not an encoded name")

// DecodeName returns the string that [EncodeName] encoded as token, or an
// error if no string encodes as token: it refuses anything EncodeName would
// not write, such as an escape of a letter ("=70"), so that
// EncodeName(DecodeName(t)) == t for every t it accepts.
func DecodeName(token string) (string, error) {
	if token == "=" {
		return "", nil
	}
	if token == "" {
		return "", fmt.Errorf("%w: empty", errBadName)
	}
	out := make([]byte, 0, len(token))
	for i := 0; i < len(token); i++ {
		c := token[i]
		if plainByte(c) {
			out = append(out, c)
			continue
		}
		if c != '=' || i+2 >= len(token) {
			return "", fmt.Errorf("%w: byte %d of %q", errBadName, i, token)
		}
		hi, lo := unhex(token[i+1]), unhex(token[i+2])
		if hi < 0 || lo < 0 || plainByte(byte(hi<<4|lo)) {
			return "", fmt.Errorf("%w: escape at byte %d of %q", errBadName, i, token)
		}
		out = append(out, byte(hi<<4|lo))
		i += 2
	}
	return string(out), nil
}

// plainByte reports whether EncodeName keeps c as it is.
func plainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// unhex is the value of an upper-case hex digit, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// roomKey is the key of a room in the cluster's buckets and the last two
// tokens of its subjects: the party's token, '.', the room's token.
func roomKey(party, room string) (string, error) {
	k := EncodeName(party) + "." + EncodeName(room)
	if len(k) > MaxKeyLen {
		return "", fmt.Errorf("%w: room %.64q of party %.64q encodes to %d bytes, over %d", ErrNameTooLong, room, party, len(k), MaxKeyLen)
	}
	return k, nil
}

// splitRoomKey inverts roomKey.
func splitRoomKey(k string) (party, room string, err error) {
	p, r, ok := strings.Cut(k, ".")
	if !ok {
		return "", "", fmt.Errorf("%w: key %q has no '.'", errBadName, k)
	}
	if party, err = DecodeName(p); err != nil {
		return "", "", err
	}
	if room, err = DecodeName(r); err != nil {
		return "", "", err
	}
	return party, room, nil
}
