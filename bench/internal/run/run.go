// Package run holds what the bench's drivers (compare, clusterbench) share
// to run the processes they measure.
package run

import (
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// WaitListening returns once something accepts TCP connections on addr, or
// an error after d.
func WaitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after %v", addr, d)
}

// RaiseFileLimit raises this process's open-file limit (inherited by what
// it starts) to its hard limit, and returns that limit (1024 if it cannot
// be read).
func RaiseFileLimit() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			log.Printf("raising the open-file limit: %v", err)
		}
	}
	return int(min(lim.Max, 1<<30))
}

// LoadAvg returns the machine's 1, 5 and 15 minute load averages, or
// "unknown".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
