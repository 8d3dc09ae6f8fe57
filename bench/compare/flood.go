package main

import (
	"flag"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Scenario f, the flood: one client sends 1 KiB messages back to back into
// a room where 5 others read as fast as they can, beside a room of 2 that
// exchange a message every 20 ms (cmd/load -flood). What "better" means
// differs by row: the flooder's rate is best at the readers' pace with
// every reader complete, not at its highest.

var floodFor = flag.Duration("flood", 5*time.Second, "scenario f: how long the flooder sends")

func floodScenario() scenario {
	return scenario{"f", fmt.Sprintf("(f) flood: 1 client sends 1 KiB messages back to back for %.0f s into a room where 5 read as fast as they can; "+
		"beside it, 2 clients exchange a message every 20 ms", floodFor.Seconds()), []string{
		"-flood", floodFor.String(), "-flood-readers", "5", "-size", "1024", "-pair-every", "20ms", "-drain", "3s"}}
}

// floodResult is cmd/load's flood report, the part the table uses.
type floodResult struct {
	AcceptedPerS    float64 `json:"accepted_per_s"`
	ReadersKept     int     `json:"readers_kept"`
	ReadersComplete int     `json:"readers_complete"`
	Readers         []struct {
		Received   int64 `json:"received"`
		ClosedCode int   `json:"closed_code"`
	} `json:"readers"`
	Lost         int64   `json:"lost"`
	Skipped      int64   `json:"skipped"`
	OutOfOrder   int64   `json:"out_of_order"`
	Duplicated   int64   `json:"duplicated"`
	DrainSeconds float64 `json:"drain_s"`
	Other        struct {
		Sent      int64 `json:"sent"`
		Lost      int64 `json:"lost"`
		LatencyMs struct {
			P50, P99, Max float64
		} `json:"latency_ms"`
	} `json:"other"`
	RSSPeakKiB   int64 `json:"rss_peak_kib"`
	RSSGrowthKiB int64 `json:"rss_growth_kib"`
}

func mib(v float64) string { return fmt.Sprintf("%.1f MiB", v/1024) }

// orNone formats NaN, a figure that does not apply, as "—".
func orNone(format func(float64) string) func(float64) string {
	return func(v float64) string {
		if math.IsNaN(v) {
			return "—"
		}
		return format(v)
	}
}

// floodFigure is a figure of scenario f: zero when a run has no flood report.
func floodFigure(name string, better int, get func(f *floodResult) float64, format func(float64) string) figure {
	return figure{name, better, func(r result) float64 {
		if r.Flood == nil {
			return 0
		}
		return get(r.Flood)
	}, format, nil}
}

// floodText is a text row of scenario f over every round.
func floodText(name string, text func(fs []*floodResult) string) figure {
	return figure{name: name, text: func(rs []result) string {
		var fs []*floodResult
		for _, r := range rs {
			if r.Flood != nil {
				fs = append(fs, r.Flood)
			}
		}
		if len(fs) == 0 {
			return "—"
		}
		return text(fs)
	}}
}

var floodFigures = []figure{
	floodFigure("flooder: messages the server read per s (best: the readers' pace, with every reader complete)", 0,
		func(f *floodResult) float64 { return f.AcceptedPerS }, count),
	floodFigure("readers kept, of 5 ↑", +1, func(f *floodResult) float64 { return float64(f.ReadersKept) }, count),
	floodFigure("readers complete (every message, once, in order), of 5 ↑", +1,
		func(f *floodResult) float64 { return float64(f.ReadersComplete) }, count),
	floodText("readers closed by the server: close codes", closeCodes),
	floodText("messages per reader, min – max", func(fs []*floodResult) string {
		lo, hi := int64(math.MaxInt64), int64(0)
		for _, f := range fs {
			for _, r := range f.Readers {
				lo, hi = min(lo, r.Received), max(hi, r.Received)
			}
		}
		return group(lo) + " – " + group(hi)
	}),
	floodText("lost, all readers (of which skipped while connected) / out of order / duplicated ↓", func(fs []*floodResult) string {
		var lost, skipped, ooo, dup int64
		for _, f := range fs {
			lost, skipped, ooo, dup = lost+f.Lost, skipped+f.Skipped, ooo+f.OutOfOrder, dup+f.Duplicated
		}
		return fmt.Sprintf("%s (%s) / %s / %s", group(lost), group(skipped), group(ooo), group(dup))
	}),
	floodFigure("readers' last message after the flood ended ↓", -1, func(f *floodResult) float64 {
		if f.ReadersKept == 0 {
			return math.NaN()
		}
		return f.DrainSeconds * 1000
	}, orNone(ms)),
	floodFigure("other room: latency p50 ↓", -1, func(f *floodResult) float64 { return f.Other.LatencyMs.P50 }, ms),
	floodFigure("other room: latency p99 ↓", -1, func(f *floodResult) float64 { return f.Other.LatencyMs.P99 }, ms),
	floodFigure("other room: latency max ↓", -1, func(f *floodResult) float64 { return f.Other.LatencyMs.Max }, ms),
	floodText("other room: lost / sent ↓", func(fs []*floodResult) string {
		var lost, sent int64
		for _, f := range fs {
			lost, sent = lost+f.Other.Lost, sent+f.Other.Sent
		}
		return group(lost) + " / " + group(sent)
	}),
	floodFigure("server RSS, peak ↓", -1, func(f *floodResult) float64 { return float64(f.RSSPeakKiB) }, mib),
	floodFigure("server RSS growth, peak − before the flood ↓", -1, func(f *floodResult) float64 { return float64(f.RSSGrowthKiB) }, mib),
}

// closeCodes counts the readers closed by the server, by code, over every
// round: "5 × 1005", or "none".
func closeCodes(fs []*floodResult) string {
	byCode := map[int]int{}
	for _, f := range fs {
		for _, r := range f.Readers {
			if r.ClosedCode != 0 {
				byCode[r.ClosedCode]++
			}
		}
	}
	if len(byCode) == 0 {
		return "none"
	}
	var parts []string
	for code, n := range byCode {
		parts = append(parts, fmt.Sprintf("%d × %d", n, code))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// floodTargets checks the aim for party: its room never emptied.
func floodTargets(byKey map[string]map[string][]result) []target {
	if byKey["f"] == nil {
		return nil
	}
	_, complete := cell(floodFigures[2], byKey["f"]["party"])
	return []target{{"(f) party keeps every reader of the flooded room, each with every message in order (of 5)", complete,
		func(v float64) bool { return v == 5 }, ""}}
}
