package main

import (
	"fmt"
	"io"
	"math"
	"slices"

	"party/bench/internal/table"
)

// printTable writes the Markdown report of results: medians per
// configuration, the ratios to one node and to the plain peer taken within
// each round, every run, and the target.
func printTable(w io.Writer, results []result, configs []int, header string, clients, senders, messages, size, window int) {
	fmt.Fprint(w, header)
	fmt.Fprintf(w, "\n**(a) fan-out: 1 room x %s clients spread round-robin over the nodes, %d senders x %d msgs of %d B, window %d, max rate**\n\n",
		group(int64(clients)), senders, messages, size, window)
	fmt.Fprintln(w, "Each figure is the median over the rounds (min–max in brackets for the ratios); lost/duplicated/misrouted and")
	fmt.Fprintln(w, "dropped are totals. Server CPU is user + system time of every server process over the sending phase: the nodes")
	fmt.Fprintln(w, "and natsd (party alone: its one process). n1 owns the room; \"other nodes\" relay to it. A ratio is taken within")
	fmt.Fprintln(w, "each round (this configuration's run over the other's in the same round), then its median.")
	fmt.Fprintln(w)

	by := map[int][]result{}
	for _, r := range results {
		by[r.Nodes] = append(by[r.Nodes], r)
	}
	fmt.Fprint(w, "| figure |")
	for _, k := range configs {
		fmt.Fprintf(w, " %s |", configName(k))
	}
	fmt.Fprint(w, "\n|---|")
	for range configs {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)

	row := func(name string, cell func(k int, rs []result) string) {
		fmt.Fprintf(w, "| %s |", name)
		for _, k := range configs {
			c := "—"
			if rs := by[k]; len(rs) > 0 {
				c = cell(k, rs)
			}
			fmt.Fprintf(w, " %s |", c)
		}
		fmt.Fprintln(w)
	}
	med := func(get func(r result) float64, format func(float64) string) func(int, []result) string {
		return func(_ int, rs []result) string {
			var vs []float64
			for _, r := range rs {
				vs = append(vs, get(r))
			}
			return format(table.Median(vs))
		}
	}
	cpu := func(part int) func(r result) float64 {
		return func(r result) float64 {
			t, o, x, n := r.cpuPerDelivery()
			return [4]float64{t, o, x, n}[part]
		}
	}
	clusterOnly := func(get func(r result) float64) func(int, []result) string {
		return func(k int, rs []result) string {
			if k == 0 {
				return ""
			}
			return med(get, us)(k, rs)
		}
	}
	ms := func(v float64) string { return fmt.Sprintf("%.2f ms", v) }
	row("deliveries/s ↑", med(func(r result) float64 { return r.DeliveriesPerS }, func(v float64) string { return group(int64(math.Round(v))) }))
	row("latency p50 ↓", med(func(r result) float64 { return r.LatencyMs.P50 }, ms))
	row("latency p99 ↓", med(func(r result) float64 { return r.LatencyMs.P99 }, ms))
	row("latency max ↓", med(func(r result) float64 { return r.LatencyMs.Max }, ms))
	row("**server CPU per delivery** (nodes + NATS) ↓", med(cpu(0), func(v float64) string { return "**" + us(v) + "**" }))
	row("  owner node (n1)", clusterOnly(cpu(1)))
	row("  other nodes, together", func(k int, rs []result) string {
		if k < 2 {
			return ""
		}
		return med(cpu(2), us)(k, rs)
	})
	row("  NATS server", clusterOnly(cpu(3)))
	row("**CPU per delivery / 1 node's** ↓", func(k int, rs []result) string { return pairedRatio(rs, by[1], cpu(0)) })
	row("CPU per delivery / party alone's ↓", func(k int, rs []result) string { return pairedRatio(rs, by[0], cpu(0)) })
	row("deliveries/s / 1 node's ↑", func(k int, rs []result) string {
		return pairedRatio(rs, by[1], func(r result) float64 { return r.DeliveriesPerS })
	})
	row("server write calls per delivery (socket writes, NATS's included)", med(func(r result) float64 {
		if r.Delivered == 0 {
			return 0
		}
		return float64(r.ServerWriteCalls) / float64(r.Delivered)
	}, func(v float64) string { return fmt.Sprintf("%.3f", v) }))
	row("load generator CPU per delivery", med(func(r result) float64 {
		if r.Delivered == 0 {
			return 0
		}
		return r.LoadCPUSeconds * 1e6 / float64(r.Delivered)
	}, us))
	row("lost / duplicated / misrouted", func(_ int, rs []result) string {
		var l, d, m int64
		for _, r := range rs {
			l, d, m = l+r.Lost, d+r.Duplicated, m+r.Unexpected
		}
		return fmt.Sprintf("%s / %s / %s", group(l), group(d), group(m))
	})
	row("clients dropped / connections failed", func(_ int, rs []result) string {
		var d, f int64
		for _, r := range rs {
			d, f = d+r.DroppedClients, f+int64(r.ConnectFailed)
		}
		return fmt.Sprintf("%s / %s", group(d), group(f))
	})
	row("runs", func(_ int, rs []result) string { return fmt.Sprint(len(rs)) })

	fmt.Fprintln(w, "\n**Every run**, in the order run (CPU in µs per delivery: total = owner + other nodes + NATS)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| round | configuration | deliveries/s | p50 | p99 | CPU total | owner | other nodes | NATS | writes per delivery | lost / dup / misrouted |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range results {
		t, o, x, n := r.cpuPerDelivery()
		writes := 0.0
		if r.Delivered > 0 {
			writes = float64(r.ServerWriteCalls) / float64(r.Delivered)
		}
		fmt.Fprintf(w, "| %d | %s | %s | %.2f ms | %.2f ms | %s | %s | %s | %s | %.3f | %d / %d / %d |\n", r.Round, configName(r.Nodes),
			group(int64(math.Round(r.DeliveriesPerS))), r.LatencyMs.P50, r.LatencyMs.P99, us(t), us(o), us(x), us(n), writes,
			r.Lost, r.Duplicated, r.Unexpected)
	}

	fmt.Fprintln(w, "\n**Target**")
	fmt.Fprintln(w)
	for _, k := range configs {
		if k < 2 || len(by[1]) == 0 || len(by[k]) == 0 {
			continue
		}
		v, _, _ := paired(by[k], by[1], cpu(0))
		verdict := "met"
		switch {
		case math.IsNaN(v):
			verdict = "not measured (no CPU time in the 1-node runs: too short a run)"
		case v > 2:
			verdict = "missed"
		}
		fmt.Fprintf(w, "- server CPU per delivery at %d nodes ≤ 2× one node's: %.2f×, %s\n", k, v, verdict)
	}
	var bad int64
	for _, r := range results {
		if !r.clean() {
			bad++
		}
	}
	if bad == 0 {
		fmt.Fprintln(w, "- zero lost, duplicated or misrouted deliveries, dropped clients or failed connections: met in every run")
	} else {
		fmt.Fprintf(w, "- zero lost, duplicated or misrouted deliveries, dropped clients or failed connections: missed in %d run(s)\n", bad)
	}
}

// paired returns the median, min and max over the rounds of get(a's run) /
// get(b's run in the same round).
func paired(a, b []result, get func(r result) float64) (med, lo, hi float64) {
	var vs []float64
	for _, x := range a {
		for _, y := range b {
			if x.Round == y.Round && get(y) != 0 {
				vs = append(vs, get(x)/get(y))
			}
		}
	}
	if len(vs) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	return table.Median(vs), slices.Min(vs), slices.Max(vs)
}

func pairedRatio(a, b []result, get func(r result) float64) string {
	med, lo, hi := paired(a, b, get)
	if math.IsNaN(med) {
		return ""
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", med, lo, hi)
}

func us(v float64) string { return fmt.Sprintf("%.3f µs", v) }

// group writes n with thousands separators.
func group(n int64) string { return table.Group(n) }
