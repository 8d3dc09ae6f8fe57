// Command leasecost measures what room leases cost while they are held:
// it claims -rooms leases (cluster.Owners, TTL -ttl, so renewed every
// TTL/3) on a NATS server with JetStream, lets them settle for one TTL, and
// prints the memory the held leases take (goroutine stacks and heap, per
// lease), then the renewals per second and the CPU time per renewal of this
// process (the node's side) and of the NATS server (-natspid) over -for.
//
//	natsd -port 14292 &
//	leasecost -nats nats://127.0.0.1:14292 -natspid $! -rooms 3000 -ttl 3s
//
// The bucket is created with one replica (file storage) unless it exists.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"party/cluster"
)

func main() {
	url := flag.String("nats", "nats://127.0.0.1:4222", "URL of the NATS server")
	natsPid := flag.Int("natspid", 0, "the NATS server's process id, for its CPU time (0: not measured)")
	rooms := flag.Int("rooms", 3000, "leases to hold")
	ttl := flag.Duration("ttl", 3*time.Second, "the leases' TTL; each is renewed every TTL/3")
	dur := flag.Duration("for", 10*time.Second, "how long to measure")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("leasecost: ")

	nc, err := nats.Connect(*url)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := cluster.NewOwners(ctx, js, cluster.OwnersConfig{Node: "leasecost", TTL: *ttl, Bucket: "leasecost"})
	if err != nil {
		log.Fatal(err)
	}
	defer o.Close(ctx)
	for i := range *rooms {
		if _, err := o.Claim(ctx, "main", "r"+strconv.Itoa(i)); err != nil {
			log.Fatal(err)
		}
	}
	time.Sleep(*ttl) // every lease renewed at least once
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	fmt.Printf("%d leases held: %d goroutines; per lease %.1f KiB of goroutine stacks, %.1f KiB of heap in use (the whole process over -rooms)\n",
		*rooms, runtime.NumGoroutine(), float64(ms.StackInuse)/1024/float64(*rooms), float64(ms.HeapInuse)/1024/float64(*rooms))
	self := os.Getpid()
	c0, n0 := cpuSeconds(self), cpuSeconds(*natsPid)
	time.Sleep(*dur)
	c1, n1 := cpuSeconds(self), cpuSeconds(*natsPid)
	renewals := float64(*rooms) * dur.Seconds() / (ttl.Seconds() / 3)
	fmt.Printf("%d leases, TTL %v: %.0f renewals/s; node CPU %.2f s (%.1f µs per renewal), NATS server CPU %.2f s (%.1f µs per renewal)\n",
		*rooms, *ttl, renewals/dur.Seconds(), c1-c0, (c1-c0)*1e6/renewals, n1-n0, (n1-n0)*1e6/renewals)
}

// cpuSeconds returns the user + system CPU time of process pid from
// /proc/PID/stat, or 0.
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := bytes.LastIndexByte(b, ')')
	if err != nil || i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}
