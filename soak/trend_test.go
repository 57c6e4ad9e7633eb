package soak

import (
	"testing"
	"time"
)

func TestTrend(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	series := func(g, h func(i int) float64) []Sample {
		var ss []Sample
		for i := range 60 {
			ss = append(ss, Sample{At: start.Add(time.Duration(i) * 10 * time.Second), Goroutines: g(i), HeapInuse: h(i)})
		}
		return ss
	}
	flat := func(v float64) func(int) float64 { return func(i int) float64 { return v + float64(i%3) } }
	for _, tc := range []struct {
		name    string
		samples []Sample
		broken  string
	}{
		{"steady", series(flat(250), flat(30<<20)), ""},
		{"noise", series(func(i int) float64 { return 250 + float64(i%7)*10 }, func(i int) float64 { return float64(30<<20 + (i%5)<<20) }), ""},
		{"goroutine leak", series(func(i int) float64 { return 250 + 10*float64(i) }, flat(30<<20)), VGoroutineGrowth},
		{"heap leak", series(flat(250), func(i int) float64 { return float64(30<<20 + i*(4<<20)) }), VHeapGrowth},
		{"modest growth", series(func(i int) float64 { return 250 + float64(i) }, flat(30<<20)), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLedger("x:")
			tr := trend(tc.samples, start.Add(time.Minute), start.Add(590*time.Second), time.Minute, l)
			if !tr.Judged {
				t.Fatalf("not judged: %s", tr.Note)
			}
			_, byKind, _ := l.report()
			switch {
			case tc.broken == "" && len(byKind) > 0:
				t.Errorf("violations %v for %s", byKind, tr.Note)
			case tc.broken != "" && byKind[tc.broken] != 1:
				t.Errorf("violations %v, want one %s", byKind, tc.broken)
			}
		})
	}
	l := newLedger("x:")
	if tr := trend(series(flat(1), flat(1))[:5], start, start.Add(40*time.Second), time.Minute, l); tr.Judged {
		t.Errorf("judged %d samples", 5)
	}
}

func TestTapKeyAndKind(t *testing.T) {
	tp := &tap{prefix: "es-soak:ab:r:"}
	for channel, want := range map[string]string{
		"es-soak:ab:r:f3:0123abcd:17": "f3:17",
		"es-soak:ab:r:h1:x:5":         "h1:5",
		"es-soak:ab:r:odd":            "odd",
	} {
		if got := tp.key(channel); got != want {
			t.Errorf("key(%q) = %q, want %q", channel, got, want)
		}
	}
	for payload, want := range map[string]string{
		`"accepted"`: "", `"end"`: "end", `"timeout"`: "timeout", `"error"`: "error",
		`{"error":"db","message":"x"}`: "error", `{"timestamp":"t","id":1}`: "row", `{"fieldCount":0}`: "row", `"what"`: "unknown",
	} {
		if got := kind(payload); got != want {
			t.Errorf("kind(%s) = %q, want %q", payload, got, want)
		}
	}
}
