// Package table holds what the bench's drivers (compare, clusterbench)
// share to write their tables.
package table

import (
	"fmt"
	"strings"
)

// Group writes n with thousands separators: 1234567 as "1,234,567".
func Group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
