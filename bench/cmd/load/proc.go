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

// rssKiB returns the resident set size of the processes pids, summed, from
// /proc/PID/status; one whose file cannot be read (or 0) counts 0.
func rssKiB(pids ...int) int64 {
	var sum int64
	for _, pid := range pids {
		sum += procValue(pid, "status", "VmRSS:")
	}
	return sum
}

// parsePIDs reads -pid: empty, or comma-separated process ids.
func parsePIDs(s string) ([]int, error) {
	var pids []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" || f == "0" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid < 0 {
			return nil, fmt.Errorf("-pid: %q is not a process id", f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// readChars returns the bytes process pid has read with read(2) and
// readv(2), sockets included ("rchar" in /proc/PID/io), or 0 if unknown.
func readChars(pid int) int64 {
	return procValue(pid, "io", "rchar:")
}

// writeCalls returns the write(2)-like system calls (writev and sendmsg
// included) of the processes pids, summed ("syscw" in /proc/PID/io).
func writeCalls(pids ...int) int64 {
	var sum int64
	for _, pid := range pids {
		sum += procValue(pid, "io", "syscw:")
	}
	return sum
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

// cpuSeconds returns the user+system CPU time of the processes pids, summed,
// from /proc/PID/stat; one that is unknown counts 0.
func cpuSeconds(pids ...int) float64 {
	var sum float64
	for _, pid := range pids {
		sum += cpuSecondsOf(pid)
	}
	return sum
}

func cpuSecondsOf(pid int) float64 {
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
