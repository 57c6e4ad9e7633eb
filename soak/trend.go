package soak

import (
	"fmt"
	"slices"
	"time"
)

// Trend compares the server's goroutines and heap in the first window of
// the load after warm-up with its last window (medians, so that one busy
// moment does not decide).
type Trend struct {
	Judged           bool    `json:"judged"`
	Note             string  `json:"note"`
	GoroutinesFirst  float64 `json:"goroutines_first"`
	GoroutinesLast   float64 `json:"goroutines_last"`
	HeapFirst        float64 `json:"heap_first_bytes"`
	HeapLast         float64 `json:"heap_last_bytes"`
	RSSFirst         float64 `json:"rss_first_bytes"`
	RSSLast          float64 `json:"rss_last_bytes"`
	GoroutinesPerMin float64 `json:"goroutines_per_minute"`
	HeapPerMin       float64 `json:"heap_bytes_per_minute"`
}

// Growth past both bounds fails the soak; growth under them is reported.
const (
	goroutineGrowthFactor = 1.5
	goroutineGrowthMin    = 100
	heapGrowthFactor      = 2.0
	heapGrowthMin         = 64 << 20
)

// trend judges samples taken from warm to end (the load's end).
func trend(samples []Sample, warm, end time.Time, window time.Duration, l *ledger) Trend {
	var load []Sample
	for _, s := range samples {
		if !s.At.Before(warm) && !s.At.After(end) {
			load = append(load, s)
		}
	}
	if len(load) < 6 || end.Sub(warm) < 2*window {
		return Trend{Note: fmt.Sprintf("too short to judge: %d samples over %s after warm-up, want two windows of %s", len(load), end.Sub(warm).Round(time.Second), window)}
	}
	var first, last []Sample
	for _, s := range load {
		if s.At.Before(warm.Add(window)) {
			first = append(first, s)
		}
		if s.At.After(end.Add(-window)) {
			last = append(last, s)
		}
	}
	if len(first) < 3 {
		first = load[:3]
	}
	if len(last) < 3 {
		last = load[len(load)-3:]
	}
	med := func(ss []Sample, f func(Sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	t := Trend{Judged: true,
		GoroutinesFirst: med(first, func(s Sample) float64 { return s.Goroutines }),
		GoroutinesLast:  med(last, func(s Sample) float64 { return s.Goroutines }),
		HeapFirst:       med(first, func(s Sample) float64 { return s.HeapInuse }),
		HeapLast:        med(last, func(s Sample) float64 { return s.HeapInuse }),
		RSSFirst:        med(first, func(s Sample) float64 { return s.RSS }),
		RSSLast:         med(last, func(s Sample) float64 { return s.RSS }),
	}
	minutes := last[len(last)/2].At.Sub(first[len(first)/2].At).Minutes()
	if minutes > 0 {
		t.GoroutinesPerMin = (t.GoroutinesLast - t.GoroutinesFirst) / minutes
		t.HeapPerMin = (t.HeapLast - t.HeapFirst) / minutes
	}
	g := t.GoroutinesLast - t.GoroutinesFirst
	h := t.HeapLast - t.HeapFirst
	switch {
	case t.GoroutinesLast > goroutineGrowthFactor*t.GoroutinesFirst && g > goroutineGrowthMin:
		l.violate(VGoroutineGrowth, "goroutines %.0f → %.0f (%+.0f/min) from the first window after warm-up to the last", t.GoroutinesFirst, t.GoroutinesLast, t.GoroutinesPerMin)
	case t.HeapLast > heapGrowthFactor*t.HeapFirst && h > heapGrowthMin:
		l.violate(VHeapGrowth, "heap in use %s → %s (%s/min) from the first window after warm-up to the last", sizeOf(t.HeapFirst), sizeOf(t.HeapLast), sizeOf(t.HeapPerMin))
	}
	t.Note = fmt.Sprintf("goroutines %s, heap %s", growth(t.GoroutinesFirst, t.GoroutinesLast, 0.10), growth(t.HeapFirst, t.HeapLast, 0.25))
	return t
}

// growth says how a value moved, calling a change under noise stable.
func growth(first, last, noise float64) string {
	if first <= 0 {
		return "unknown"
	}
	r := last/first - 1
	switch {
	case r > noise:
		return fmt.Sprintf("grew %+.0f%% (within bounds, noted)", 100*r)
	case r < -noise:
		return fmt.Sprintf("shrank %+.0f%%", 100*r)
	}
	return fmt.Sprintf("stable (%+.0f%%)", 100*r)
}
