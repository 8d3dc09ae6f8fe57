package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// A histogram counts durations in log-linear buckets: exact below 256 ns,
// then 128 buckets per power of two, so a reported percentile is within 1% of
// the true one. Histograms from several processes merge by adding buckets.
const histBuckets = 256 + 40*128

type histogram struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64
}

func bucketOf(ns int64) int {
	if ns < 0 {
		ns = 0
	}
	v := uint64(ns)
	if v < 256 {
		return int(v)
	}
	shift := bits.Len64(v) - 8 // v>>shift is in [128, 256)
	i := 256 + (shift-1)*128 + int(v>>shift) - 128
	if i >= histBuckets {
		i = histBuckets - 1
	}
	return i
}

// bucketValue is the middle of bucket i, in nanoseconds.
func bucketValue(i int) int64 {
	if i < 256 {
		return int64(i)
	}
	shift := (i-256)/128 + 1
	low := uint64((i-256)%128+128) << shift
	return int64(low + (uint64(1)<<shift)/2)
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(int64(d))].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// sparse returns the non-empty buckets, for sending to the parent process.
func (h *histogram) sparse() map[int]uint64 {
	out := make(map[int]uint64)
	for i := range h.counts {
		if n := h.counts[i].Load(); n > 0 {
			out[i] = n
		}
	}
	return out
}

// merged is a histogram summed from parts.
type merged struct {
	counts map[int]uint64
	total  uint64
	max    int64
}

func (m *merged) add(counts map[int]uint64, max int64) {
	if m.counts == nil {
		m.counts = make(map[int]uint64)
	}
	for i, n := range counts {
		m.counts[i] += n
		m.total += n
	}
	if max > m.max {
		m.max = max
	}
}

// quantile returns the q-quantile (0 < q <= 1) in nanoseconds, 0 if empty.
func (m *merged) quantile(q float64) int64 {
	if m.total == 0 {
		return 0
	}
	rank := uint64(q*float64(m.total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := 0; i < histBuckets; i++ {
		seen += m.counts[i]
		if seen >= rank {
			v := bucketValue(i)
			if v > m.max {
				v = m.max
			}
			return v
		}
	}
	return m.max
}
