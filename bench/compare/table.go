package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"

	"party/bench/internal/table"
)

// A figure is one row of a scenario's table.
type figure struct {
	name   string
	better int // +1 higher is better, -1 lower is better, 0 no ratio
	get    func(r result) float64
	format func(v float64) string
	text   func(rs []result) string // instead of get and format: a text cell over every round
}

func count(v float64) string { return group(int64(math.Round(v))) }
func ms(v float64) string    { return fmt.Sprintf("%.2f ms", v) }
func kib(v float64) string   { return fmt.Sprintf("%.1f KiB", v) }
func us(v float64) string    { return fmt.Sprintf("%.2f µs", v) }
func plain(v float64) string { return fmt.Sprintf("%.2f", v) }
func secs(v float64) string  { return fmt.Sprintf("%.1f s", v) }

// group writes n with thousands separators.
func group(n int64) string { return table.Group(n) }

var (
	fDeliveries  = figure{"deliveries/s ↑", +1, func(r result) float64 { return r.DeliveriesPerS }, count, nil}
	fP50         = figure{"latency p50 ↓", -1, func(r result) float64 { return r.LatencyMs.P50 }, ms, nil}
	fP99         = figure{"latency p99 ↓", -1, func(r result) float64 { return r.LatencyMs.P99 }, ms, nil}
	fP999        = figure{"latency p99.9 ↓", -1, func(r result) float64 { return r.LatencyMs.P999 }, ms, nil}
	fMax         = figure{"latency max ↓", -1, func(r result) float64 { return r.LatencyMs.Max }, ms, nil}
	fLost        = figure{"lost / duplicated / misrouted", 0, nil, nil, nil}
	fDropped     = figure{"clients dropped by the server", 0, func(r result) float64 { return float64(r.DroppedClients) }, count, nil}
	fCPU         = figure{"server CPU per delivery ↓", -1, func(r result) float64 { return r.ServerCPUUsPerDeliv }, us, nil}
	fRSS         = figure{"server RSS per connection ↓", -1, func(r result) float64 { return r.RSSPerConnKiB }, kib, nil}
	fRSSFresh    = figure{"server RSS per connection, 3 s after connecting ↓", -1, func(r result) float64 { return r.RSSPerConnKiB }, kib, nil}
	fHeap        = figure{"  Go heap in use per connection ↓", -1, func(r result) float64 { return r.HeapInuseKiBPerConn }, kib, nil}
	fStack       = figure{"  goroutine stacks per connection ↓", -1, func(r result) float64 { return r.StackKiBPerConn }, kib, nil}
	fRSSSteady   = figure{"server RSS per connection, after keepalive pings ↓", -1, func(r result) float64 { return r.RSSPerConnSteadyKiB }, kib, nil}
	fHeapSteady  = figure{"  Go heap in use per connection ↓", -1, func(r result) float64 { return r.HeapSteadyKiB }, kib, nil}
	fStackSteady = figure{"  goroutine stacks per connection ↓", -1, func(r result) float64 { return r.StackSteadyKiB }, kib, nil}
	fRSSGC       = figure{"  then after GC + FreeOSMemory ↓", -1, func(r result) float64 { return r.RSSPerConnGCKiB }, kib, nil}
	fGor         = figure{"goroutines per connection ↓", -1, func(r result) float64 { return r.GoroutinesPerConn }, plain, nil}
	fConnected   = figure{"connections held", 0, func(r result) float64 { return float64(r.Connected) }, count, nil}
	fConnectT    = figure{"time to connect all ↓", -1, func(r result) float64 { return r.ConnectSeconds }, secs, nil}
	fChurn       = figure{"connections/s ↑", +1, func(r result) float64 {
		if r.Churn == nil {
			return 0
		}
		return r.Churn.PerS
	}, count, nil}
	fChurnP50 = figure{"connect→welcome p50 ↓", -1, func(r result) float64 {
		if r.Churn == nil {
			return 0
		}
		return r.Churn.ConnectMs.P50
	}, ms, nil}
	fChurnP99 = figure{"connect→welcome p99 ↓", -1, func(r result) float64 {
		if r.Churn == nil {
			return 0
		}
		return r.Churn.ConnectMs.P99
	}, ms, nil}
	fChurnBad = figure{"failed connections / missed notices", 0, nil, nil, nil}
)

var scenarioFigures = map[string][]figure{
	"a": {fDeliveries, fP50, fP99, fMax, fCPU, fLost, fDropped},
	"b": {fP50, fP99, fP999, fMax, fDeliveries, fCPU, fLost, fDropped}, // every b@rate
	"c": {fDeliveries, fP50, fP99, fP999, fCPU, fRSS, fLost, fDropped},
	"d": {fRSSFresh, fHeap, fStack, fRSSSteady, fHeapSteady, fStackSteady, fRSSGC, fGor, fConnected, fConnectT},
	"e": {fChurn, fChurnP50, fChurnP99, fChurnBad},
	"f": floodFigures,
}

// cell is the text of a figure for one server's rounds.
func cell(f figure, rs []result) (string, float64) {
	if len(rs) == 0 {
		return "—", math.NaN()
	}
	if f.text != nil {
		return f.text(rs), math.NaN()
	}
	switch f.name {
	case fLost.name:
		var lost, dup, mis int64
		for _, r := range rs {
			lost += r.Lost
			dup += r.Duplicated
			mis += r.Unexpected
		}
		return fmt.Sprintf("%s / %s / %s", group(lost), group(dup), group(mis)), math.NaN()
	case fChurnBad.name:
		var failed, missed int64
		for _, r := range rs {
			if r.Churn != nil {
				failed += r.Churn.Failed
				missed += r.Churn.NoticesMissed
			}
		}
		return fmt.Sprintf("%s / %s", group(failed), group(missed)), math.NaN()
	}
	var vs []float64
	for _, r := range rs {
		vs = append(vs, f.get(r))
	}
	v := table.Median(vs)
	return f.format(v), v
}

// tableServers orders the servers seen: party, party at other revisions,
// the peers in allServers' order, then any other.
func tableServers(seen map[string]bool) []string {
	var revisions, others, servers []string
	for s := range seen {
		if strings.HasPrefix(s, "party-") {
			revisions = append(revisions, s)
		} else if !slices.Contains(allServers, s) {
			others = append(others, s)
		}
	}
	sort.Strings(revisions)
	sort.Strings(others)
	for _, s := range allServers {
		if seen[s] {
			servers = append(servers, s)
		}
		if s == "party" {
			servers = append(servers, revisions...)
		}
	}
	return append(servers, others...)
}

// title is a server's name in the table: "party at REV" for a build of
// party at another revision, installed as party-REV in the -bin directory.
func title(s string) string {
	if t, ok := serverTitle[s]; ok {
		return t
	}
	if rev, ok := strings.CutPrefix(s, "party-"); ok {
		return "party at " + rev
	}
	return s
}

func printTable(w io.Writer, rs []result, header string) {
	byKey := map[string]map[string][]result{}
	titles := map[string]string{}
	var order []string
	seenServer := map[string]bool{}
	rounds := 0
	for _, r := range rs {
		if byKey[r.Scenario] == nil {
			byKey[r.Scenario] = map[string][]result{}
			order = append(order, r.Scenario)
			titles[r.Scenario] = r.Label
		}
		byKey[r.Scenario][r.Server] = append(byKey[r.Scenario][r.Server], r)
		if !seenServer[r.Server] {
			seenServer[r.Server] = true
		}
		rounds = max(rounds, r.Round)
	}
	servers := tableServers(seenServer)
	fmt.Fprint(w, header)
	if rounds > 1 {
		fmt.Fprintf(w, "Each figure is the median of %d rounds; lost/duplicated counts are totals.\n", rounds)
	}
	fmt.Fprintln(w, "↑ higher is better, ↓ lower is better; a ratio is party's figure divided by the peer's.")
	peers := servers[min(1, len(servers)):]
	if len(servers) == 0 || servers[0] != "party" {
		peers = nil
	}
	for _, key := range order {
		fmt.Fprintf(w, "\n**%s**\n\n", titles[key])
		fmt.Fprint(w, "| figure |")
		for _, s := range servers {
			fmt.Fprintf(w, " %s |", title(s))
		}
		for _, p := range peers {
			fmt.Fprintf(w, " party/%s |", title(p))
		}
		fmt.Fprint(w, "\n|---|")
		for range servers {
			fmt.Fprint(w, "---:|")
		}
		for range peers {
			fmt.Fprint(w, "---:|")
		}
		fmt.Fprintln(w)
		for _, f := range scenarioFigures[strings.Split(key, "@")[0]] {
			fmt.Fprintf(w, "| %s |", f.name)
			vals := map[string]float64{}
			for _, s := range servers {
				text, v := cell(f, byKey[key][s])
				vals[s] = v
				fmt.Fprintf(w, " %s |", text)
			}
			for _, p := range peers {
				fmt.Fprintf(w, " %s |", ratio(f, vals["party"], vals[p]))
			}
			fmt.Fprintln(w)
		}
	}
	printTargets(w, byKey)
}

func ratio(f figure, party, peer float64) string {
	if f.better == 0 || math.IsNaN(party) || math.IsNaN(peer) || peer == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f×", party/peer)
}

// A target is one of the aims, checked against the medians.
type target struct {
	text string
	got  float64
	ok   func(float64) bool
	unit string
}

// printTargets checks the targets against the medians.
func printTargets(w io.Writer, byKey map[string]map[string][]result) {
	med := func(key, srv string, f figure) float64 {
		_, v := cell(f, byKey[key][srv])
		return v
	}
	var ts []target
	if byKey["a"] != nil {
		ts = append(ts,
			target{"(a) party deliveries/s ≥ 1.5× gorilla hub", med("a", "party", fDeliveries) / med("a", "gorillahub", fDeliveries), func(v float64) bool { return v >= 1.5 }, "×"},
			target{"(a) party deliveries/s ≥ 2× melody", med("a", "party", fDeliveries) / med("a", "melody", fDeliveries), func(v float64) bool { return v >= 2 }, "×"})
	}
	for key := range byKey {
		if rate, ok := strings.CutPrefix(key, "b@"); ok {
			ts = append(ts, target{"(b) at " + rate + " msgs/s in: party p99 ≤ 0.5× gorilla hub p99", med(key, "party", fP99) / med(key, "gorillahub", fP99), func(v float64) bool { return v <= 0.5 }, "×"})
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].text < ts[j].text })
	if byKey["d"] != nil {
		ts = append(ts,
			target{"(d) party RSS per idle connection ≤ 12 KiB, 3 s after connecting", med("d", "party", fRSSFresh), func(v float64) bool { return v <= 12 }, " KiB"},
			target{"(d) party RSS per idle connection ≤ 12 KiB, after keepalive pings", med("d", "party", fRSSSteady), func(v float64) bool { return v <= 12 }, " KiB"})
	}
	ts = append(ts, floodTargets(byKey)...)
	fmt.Fprint(w, "\n**Targets**\n\n")
	for _, t := range ts {
		verdict := "met"
		if math.IsNaN(t.got) || math.IsInf(t.got, 0) {
			verdict = "not measured"
		} else if !t.ok(t.got) {
			verdict = "missed"
		}
		fmt.Fprintf(w, "- %s: %.2f%s, %s\n", t.text, t.got, t.unit, verdict)
	}
	var bad []string
	for key, bySrv := range byKey {
		for srv, rs := range bySrv {
			for _, r := range rs {
				if !clean(r) {
					bad = append(bad, fmt.Sprintf("%s in (%s) round %d", title(srv), key, r.Round))
				}
			}
		}
	}
	if len(bad) == 0 {
		fmt.Fprintln(w, "- zero lost, duplicated or misrouted deliveries, dropped clients or failed connections: met by every server in every scenario")
	} else {
		fmt.Fprintf(w, "- zero lost, duplicated or misrouted deliveries, dropped clients or failed connections: not met by %s\n", strings.Join(bad, ", "))
	}
}
