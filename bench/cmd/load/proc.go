package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// rssKiB returns the resident set size of process pid from /proc/PID/status,
// or 0 if pid is 0 or the file cannot be read.
func rssKiB(pid int) int64 {
	return procValue(pid, "status", "VmRSS:")
}

// readChars returns the bytes process pid has read with read(2) and
// readv(2), sockets included ("rchar" in /proc/PID/io), or 0 if unknown.
func readChars(pid int) int64 {
	return procValue(pid, "io", "rchar:")
}

// procValue returns the number after key in /proc/PID/file, or 0.
func procValue(pid int, file, key string) int64 {
	if pid == 0 {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				n, _ := strconv.ParseInt(fields[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// cpuSeconds returns the user+system CPU time of process pid from
// /proc/PID/stat, or 0 if unknown.
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; fields resume after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// selfCPUSeconds is the CPU time of this process and its waited-for children.
func selfCPUSeconds() float64 {
	return cpuSeconds(os.Getpid())
}

// serverStats is what the peers' GET /debug/stats returns.
type serverStats struct {
	Goroutines int    `json:"goroutines"`
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
}

var statsClient = &http.Client{Timeout: 10 * time.Second}

// fetchStats asks the server for its stats; method POST also forces a GC
// (url must then be the /debug/gc endpoint). It returns nil on any failure.
func fetchStats(method, url string) *serverStats {
	if url == "" {
		return nil
	}
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil
	}
	resp, err := statsClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var s serverStats
	if json.NewDecoder(resp.Body).Decode(&s) != nil {
		return nil
	}
	return &s
}
