// Command writefloor measures the floor under scenario (b) at a low rate:
// what it costs to hand one small message to each of N loopback TCP
// sockets, one write(2) per socket, with no WebSocket library at all. Its
// clients run in a child process, one goroutine per socket, reading, as the
// load generator's do.
//
//	go run ./cmd/writefloor                   # 1000 sockets, 50 fan-outs/s, 10 s
//	go run ./cmd/writefloor -goroutines       # one goroutine per write, as a writer per connection does
//
// It prints the server's CPU per write (user+system, the kernel's loopback
// delivery included), how long one fan-out takes, and the clients' CPU.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

func main() {
	clients := flag.Int("clients", 1000, "sockets")
	rate := flag.Int("rate", 50, "fan-outs per second")
	dur := flag.Duration("duration", 10*time.Second, "how long")
	size := flag.Int("size", 72, "bytes per write (a 64 B message with its WebSocket header and our sequence stamp is about this)")
	perWrite := flag.Bool("goroutines", false, "write each socket from a goroutine of its own")
	client := flag.String("client", "", "internal: run the clients against this address")
	flag.Parse()
	if *client != "" {
		runClients(*client, *clients)
		return
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-client", ln.Addr().String(), "-clients", fmt.Sprint(*clients))
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	conns := make([]net.Conn, *clients)
	for i := range conns {
		if conns[i], err = ln.Accept(); err != nil {
			log.Fatal(err)
		}
	}

	msg := make([]byte, *size)
	interval := time.Second / time.Duration(*rate)
	rounds := int(*dur / interval)
	cpu0 := cpuTime()
	var busy time.Duration
	for range rounds {
		start := time.Now()
		if *perWrite {
			var wg sync.WaitGroup
			for _, c := range conns {
				wg.Add(1)
				go func() { defer wg.Done(); c.Write(msg) }()
			}
			wg.Wait()
		} else {
			for _, c := range conns {
				c.Write(msg)
			}
		}
		took := time.Since(start)
		busy += took
		time.Sleep(interval - took)
	}
	cpu := cpuTime() - cpu0
	writes := rounds * *clients
	fmt.Printf("server: %d fan-outs to %d sockets of %d B (goroutine per write: %v): %.2f µs CPU per write, %.2f ms per fan-out\n",
		rounds, *clients, *size, *perWrite, float64(cpu.Nanoseconds())/1e3/float64(writes), float64(busy.Nanoseconds())/1e6/float64(rounds))
	for _, c := range conns {
		c.Close()
	}
	cmd.Wait()
}

func runClients(addr string, n int) {
	var wg sync.WaitGroup
	var read sync.Mutex
	total := 0
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			log.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _ := io.Copy(io.Discard, c)
			read.Lock()
			total += int(k)
			read.Unlock()
		}()
	}
	wg.Wait()
	fmt.Printf("clients: %d bytes read, %.2f s CPU\n", total, cpuTime().Seconds())
}

func cpuTime() time.Duration {
	var r syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
