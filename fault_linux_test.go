package party_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"party"
)

// Running out of file descriptors: the server stops accepting (the client's
// handshake goes unanswered), logs it, backs off instead of spinning, keeps
// serving the connections it has, and accepts again once descriptors are
// free. The server runs in a child process (this test binary, re-executed)
// whose RLIMIT_NOFILE is lowered to a few descriptors above what it holds, so
// that the test's own clients are not limited with it.
//
// The accept loop is net/http's: on EMFILE it logs "http: Accept error" to
// the http.Server's ErrorLog and retries after 5 ms, doubling up to 1 s. The
// Host needs no descriptor of its own beyond the connection's socket, so
// nothing in it fails or leaks when accept does: once the child has shut its
// Host and server down, every descriptor and goroutine they used is gone
// (the child checks, and fails with what is left).
func TestFileDescriptorExhaustion(t *testing.T) {
	if os.Getenv("PARTY_FD_CHILD") == "1" {
		fdChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileDescriptorExhaustion$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PARTY_FD_CHILD=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr logBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	var addr string
	var limit int
	for lines.Scan() {
		if _, err := fmt.Sscanf(lines.Text(), "READY %s %d", &addr, &limit); err == nil {
			break
		}
	}
	if addr == "" {
		t.Fatalf("the child server did not start: %s", stderr.String())
	}
	var report logBuffer // the child's test output after READY: its verdict
	copied := make(chan struct{})
	go func() {
		io.Copy(&report, stdout)
		close(copied)
	}()
	url := "ws://" + addr + "/party/fd"

	// Fill the child's descriptor table.
	var held []*client
	defer func() {
		for _, c := range held {
			c.conn.CloseNow()
		}
	}()
	exhausted := func() bool { return strings.Contains(stderr.String(), "Accept error") }
	for i := 0; !exhausted(); i++ {
		if i == 64 {
			t.Fatalf("64 handshakes tried with RLIMIT_NOFILE %d and no accept error logged", limit)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, _, err := websocket.Dial(ctx, fmt.Sprintf("%s?_pk=c%d", url, i), nil)
		cancel()
		if err == nil {
			held = append(held, &client{t: t, conn: conn})
		}
	}
	if len(held) < 2 {
		t.Fatalf("only %d connections before descriptors ran out", len(held))
	}
	// Connections already open keep working.
	for i, c := range held {
		roundTripOK(t, c, fmt.Sprint("still served ", i))
	}

	// While out of descriptors, the child backs off: few log lines, little CPU.
	pending := make(chan error, 1)
	go func() { // waits in the listen backlog until a descriptor is free
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, url+"?_pk=patient", nil)
		if err == nil {
			conn.Close(websocket.StatusNormalClosure, "")
		}
		pending <- err
	}()
	const window = 2 * time.Second
	cpu0, logs0 := cpuTicks(t, cmd.Process.Pid), strings.Count(stderr.String(), "Accept error")
	time.Sleep(window)
	cpu1, logs1 := cpuTicks(t, cmd.Process.Pid), strings.Count(stderr.String(), "Accept error")
	select {
	case err := <-pending:
		// Possible only if a handshake that timed out on our side had been
		// accepted and its descriptor has just been freed.
		t.Logf("the waiting handshake was served early (%v)", err)
		pending <- err
	default:
	}
	cpu := float64(cpu1-cpu0) / 100 / window.Seconds() // clock ticks are 1/100 s
	t.Logf("RLIMIT_NOFILE %d: %d connections served, the next handshake unanswered; over %v out of descriptors the server used %.0f%% of a core and logged %d accept errors (%d in all)",
		limit, len(held), window, 100*cpu, logs1-logs0, logs1)
	if logs1 == 0 {
		t.Errorf("no accept error logged: %s", stderr.String())
	}
	if logs1-logs0 > 20 || cpu > 0.5 {
		t.Errorf("the accept loop spins: %d accept errors logged and %.0f%% CPU in %v", logs1-logs0, 100*cpu, window)
	}

	// Free descriptors: the waiting handshake is served, and new ones too.
	for _, c := range held[:len(held)/2] {
		c.close()
	}
	held = held[len(held)/2:]
	recovered := time.Now()
	if err := <-pending; err != nil {
		t.Fatalf("the waiting handshake failed after descriptors were freed: %v", err)
	}
	fresh := dial(t, url+"?_pk=fresh")
	roundTripOK(t, fresh, "served again")
	fresh.close()
	t.Logf("served again %v after descriptors were freed", time.Since(recovered).Round(time.Millisecond))
	for _, c := range held {
		roundTripOK(t, c, "unaffected")
		c.close()
	}
	held = nil

	stdin.Close() // the child shuts its Host down, checks for leaks and exits
	<-copied      // before Wait, which closes the pipe
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s\n%s", err, report.String(), stderr.String())
	}
}

// fdChild serves an echo Host with a descriptor limit a few above what the
// process holds, until its stdin closes; then it shuts down and fails t if
// a descriptor or goroutine of the server is left.
func fdChild(t *testing.T) {
	leaks := startLeakCheck(t)
	holdGC(t)
	h := party.Handler(func(*party.Room) party.Server { return &echo{} })
	h.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	mux := http.NewServeMux()
	mux.Handle("/party/", h)
	srv := &http.Server{Handler: mux, ErrorLog: log.New(os.Stderr, "", 0)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		log.Fatal(err)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		log.Fatal(err)
	}
	rl.Cur = uint64(len(fds) + 6)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	fmt.Printf("READY %s %d\n", ln.Addr(), rl.Cur)
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	srv.Close()
	leaks.check(t)
}

// cpuTicks returns the user and system CPU time of process pid, in clock
// ticks.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3, utime 14, stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return utime + stime
}
