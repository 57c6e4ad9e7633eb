package bench

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteHTML writes the report as one self-contained HTML page: the figures
// table, and per scenario inline SVG charts of throughput, latency and the
// server's resources over time (one point per sample interval).
func WriteHTML(w io.Writer, r *Report) error {
	if err := pageTemplate.Execute(w, pageData(r)); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}

type htmlScenario struct {
	Name, Description, Error string
	Lines                    []string
	Charts                   []template.HTML
}

type htmlFigure struct {
	Figure
	Value, Baseline, Ratio, Met, Class string
}

func pageData(r *Report) map[string]any {
	var figs []htmlFigure
	for _, f := range r.Figures {
		h := htmlFigure{Figure: f, Value: num(f.Value) + " " + f.Unit, Met: "–"}
		if f.Baseline != nil {
			h.Baseline = num(*f.Baseline) + " (" + f.BaselineName + ")"
		}
		if f.Ratio != nil {
			h.Ratio = fmt.Sprintf("%.2f", *f.Ratio)
		}
		if f.Met != nil {
			h.Met, h.Class = "no", "miss"
			if *f.Met {
				h.Met, h.Class = "yes", "met"
			}
		}
		figs = append(figs, h)
	}
	var scens []htmlScenario
	for _, s := range r.Scenarios {
		scens = append(scens, scenarioHTML(s))
	}
	text := &strings.Builder{}
	_ = WriteText(text, r)
	return map[string]any{"R": r, "Figures": figs, "Scenarios": scens, "Text": text.String()}
}

// Colours of the series: eventsource solid, baseline dashed.
const (
	colServer   = "#1f6feb"
	colServer2  = "#8957e5"
	colBaseline = "#d1242f"
	colBase2    = "#bf8700"
	colOther    = "#1a7f37"
)

func scenarioHTML(s *ScenarioResult) htmlScenario {
	h := htmlScenario{Name: s.Spec.Name, Description: s.Spec.Description, Error: s.Error}
	for _, m := range append([]*Measure{s.Baseline, s.Server}, s.Legs...) {
		if m != nil {
			h.Lines = append(h.Lines, m.Label+": "+m.oneLine())
		}
	}
	if s.Spec.Kind == KindInstrumentCost {
		return h // its legs' timelines are other phases; the lines say it
	}
	if o := s.Open; o != nil {
		h.Lines = append(h.Lines, fmt.Sprintf("%d streams open in %.1fs; RSS %s before, %s open (%.1f KB per stream), %s after a GC (%.1f KB per stream); MySQL connections max %d, busy while open %d, Threads_connected +%d; probe %s rows/s; drain %.1fs, %s rows/s",
			o.Streams, o.OpenSeconds, mib(o.RSSBefore), mib(o.RSSOpen), o.RSSPerStream/1000, mib(o.RSSOpenSettled), o.RSSPerStreamSettled/1000,
			o.MySQLConnsMax, o.MySQLInUseWhileOpen, o.ThreadsConnectedDelta, num(o.ProbeRowsPerSec), o.DrainSeconds, num(o.DrainRowsPerSec)))
	}
	if f := s.Follow; f != nil {
		h.Lines = append(h.Lines, fmt.Sprintf("%d followers (window %d) on %d Redis connections, held by the server in %.1fs; idle: RSS %s before, %s idle (%.1f KB per follower), %s after a GC (%.1f KB per follower); MySQL connections %d open, %d busy at most, Threads_connected +%d",
			f.Followers, f.Window, f.Connections, f.OpenSeconds, mib(f.RSSBefore), mib(f.RSSIdle), f.RSSPerFollower/1000, mib(f.RSSIdleSettled), f.RSSPerFollowerSettled/1000,
			f.MySQLOpenIdle, f.MySQLInUseIdle, f.ThreadsConnectedDelta),
			fmt.Sprintf("%d events, %d deliveries (%d missing, %d repeated, %d out of order, %d errors); commit→delivery p50 %s, p99 %s, max %s; %d of %d released after \"end\"",
				f.Events, f.Deliveries, f.Missing, f.Repeated, f.OutOfOrder, f.Errors, durMicros(f.P50), durMicros(f.P99), durMicros(f.Max), f.Released, f.Followers))
	}
	srv, base := timeline(s.Server), timeline(s.Baseline)
	var markers []marker
	if o := s.Open; o != nil {
		markers = []marker{{o.OpenedAt, "all open"}, {o.ReleasedAt, "released"}}
	}
	baseName := "baseline"
	if s.Baseline != nil {
		baseName = strings.TrimPrefix(s.Baseline.Label, s.Spec.Name+" ")
	}
	switch s.Spec.Kind {
	case KindPersist:
		h.Charts = append(h.Charts,
			lineChart("persists/s", "", false, nil,
				series{"eventsource", colServer, false, pick(srv, func(x Sample) float64 { return x.PersistsPerSec })},
				series{baseName, colBaseline, true, pick(base, func(x Sample) float64 { return x.PersistsPerSec })}),
			lineChart("persist latency (µs, log scale)", "µs", true, nil,
				series{"eventsource p50", colServer, false, pick(srv, func(x Sample) float64 { return x.PersistP50 })},
				series{"eventsource p99", colServer2, false, pick(srv, func(x Sample) float64 { return x.PersistP99 })},
				series{baseName + " p50", colBaseline, true, pick(base, func(x Sample) float64 { return x.PersistP50 })},
				series{baseName + " p99", colBase2, true, pick(base, func(x Sample) float64 { return x.PersistP99 })}))
	default:
		thr := []series{
			{"eventsource rows/s", colServer, false, pick(srv, func(x Sample) float64 { return x.RowsPerSec })},
			{baseName + " rows/s", colBaseline, true, pick(base, func(x Sample) float64 { return x.RowsPerSec })},
		}
		if s.Spec.Kind == KindMix {
			thr = append(thr, series{"eventsource persists/s", colOther, false, pick(srv, func(x Sample) float64 { return x.PersistsPerSec })})
		}
		h.Charts = append(h.Charts,
			lineChart("throughput", "", false, markers, thr...),
			lineChart("per-row handshake latency (µs, log scale)", "µs", true, markers,
				series{"eventsource p50", colServer, false, pick(srv, func(x Sample) float64 { return x.P50 })},
				series{"eventsource p99", colServer2, false, pick(srv, func(x Sample) float64 { return x.P99 })},
				series{baseName + " p50", colBaseline, true, pick(base, func(x Sample) float64 { return x.P50 })},
				series{baseName + " p99", colBase2, true, pick(base, func(x Sample) float64 { return x.P99 })}))
	}
	h.Charts = append(h.Charts,
		lineChart("server process: CPU (cores)", "", false, markers,
			series{"eventsource", colServer, false, pick(srv, func(x Sample) float64 { return x.CPU })},
			series{baseName + " (same process)", colBaseline, true, pick(base, func(x Sample) float64 { return x.CPU })}),
		lineChart("server process: RSS (MiB)", "", false, markers,
			series{"eventsource", colServer, false, pick(srv, func(x Sample) float64 { return float64(x.RSS) / (1 << 20) })}),
		lineChart("server's MySQL connections", "", false, markers,
			series{"open", colServer, false, pick(srv, func(x Sample) float64 { return float64(x.MySQLConns) })},
			series{"busy", colOther, false, pick(srv, func(x Sample) float64 { return float64(x.MySQLInUse) })}))
	return h
}

func timeline(m *Measure) []Sample {
	if m == nil {
		return nil
	}
	return m.Timeline
}

type point struct{ x, y float64 }

type series struct {
	name   string
	color  string
	dashed bool
	points []point
}

type marker struct {
	x     float64
	label string
}

func pick(samples []Sample, f func(Sample) float64) []point {
	pts := make([]point, 0, len(samples))
	for _, s := range samples {
		pts = append(pts, point{s.T, f(s)})
	}
	return pts
}

// lineChart draws series as an inline SVG line chart: time in seconds
// across, values up (log10 when logY; points at or below zero are then
// left out).
func lineChart(title, unit string, logY bool, markers []marker, ss ...series) template.HTML {
	const W, H, left, right, top, bottom = 520.0, 244.0, 60.0, 12.0, 28.0, 48.0
	pw, ph := W-left-right, H-top-bottom
	xmax, ymin, ymax := 0.0, math.Inf(1), math.Inf(-1)
	has := false
	for _, s := range ss {
		for _, p := range s.points {
			if logY && p.y <= 0 {
				continue
			}
			has = true
			xmax = max(xmax, p.x)
			ymin, ymax = min(ymin, p.y), max(ymax, p.y)
		}
	}
	for _, m := range markers {
		xmax = max(xmax, m.x)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="%s">`, W, H, W, H, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%g" y="16" class="title">%s</text>`, left, html.EscapeString(title))
	if !has {
		fmt.Fprintf(&b, `<text x="%g" y="%g" class="empty">no data</text></svg>`, left+pw/2, top+ph/2)
		return template.HTML(b.String())
	}
	if xmax <= 0 {
		xmax = 1
	}
	var yTicks []float64
	var ty func(float64) float64
	if logY {
		lo, hi := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
		if hi <= lo {
			hi = lo + 1
		}
		for e := lo; e <= hi; e++ {
			yTicks = append(yTicks, math.Pow(10, e))
		}
		ty = func(v float64) float64 { return top + ph - (math.Log10(v)-lo)/(hi-lo)*ph }
	} else {
		ymin = 0
		yTicks = niceTicks(ymax)
		hi := yTicks[len(yTicks)-1]
		ty = func(v float64) float64 { return top + ph - v/hi*ph }
	}
	tx := func(v float64) float64 { return left + v/xmax*pw }
	step := 0.0
	if !logY && len(yTicks) > 1 {
		step = yTicks[1] - yTicks[0]
	}
	for _, v := range yTicks {
		y := ty(v)
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" class="grid"/><text x="%g" y="%.1f" class="ytick">%s</text>`,
			left, left+pw, y, y, left-6, y+4, tickLabel(v, step, unit))
	}
	for _, v := range niceTicks(xmax) {
		if v > xmax*1.0001 {
			break
		}
		x := tx(v)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%g" y2="%g" class="grid"/><text x="%.1f" y="%g" class="xtick">%gs</text>`,
			x, x, top, top+ph, x, top+ph+16, v)
	}
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" class="frame"/>`, left, top, pw, ph)
	for _, m := range markers {
		x := tx(m.x)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%g" y2="%g" class="marker"/><text x="%.1f" y="%g" class="mlabel">%s</text>`,
			x, x, top, top+ph, x+3, top+12, html.EscapeString(m.label))
	}
	lx, ly := left+8, H-18
	for _, s := range ss {
		var pts []string
		for _, p := range s.points {
			if logY && p.y <= 0 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", tx(p.x), ty(p.y)))
		}
		if len(pts) == 0 {
			continue
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 3"`
		}
		if len(pts) == 1 {
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`, strings.Split(pts[0], ",")[0], strings.Split(pts[0], ",")[1], s.color)
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.6"%s/>`, strings.Join(pts, " "), s.color, dash)
		width := 30 + 6.2*float64(len([]rune(s.name)))
		if lx+width > W && lx > left+8 {
			lx, ly = left+8, ly+14
		}
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%g" y2="%g" stroke="%s" stroke-width="2"%s/><text x="%.1f" y="%g" class="legend">%s</text>`,
			lx, lx+18, ly-4, ly-4, s.color, dash, lx+22, ly, html.EscapeString(s.name))
		lx += width
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceTicks returns 0 and up to about five round steps covering hi.
func niceTicks(hi float64) []float64 {
	if hi <= 0 {
		return []float64{0, 1}
	}
	raw := hi / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for v := 0.0; ; v += step {
		ticks = append(ticks, v)
		if v >= hi {
			break
		}
	}
	return ticks
}

// tickLabel formats a tick value with as many decimals as the step needs.
func tickLabel(v, step float64, unit string) string {
	switch {
	case unit == "µs":
		return durMicros(v)
	case v >= 1e4:
		return human(v)
	case step > 0 && step < 1:
		return strconv.FormatFloat(v, 'f', int(math.Ceil(-math.Log10(step))), 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>eventsource bench {{.R.Started.Format "2006-01-02 15:04"}}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1120px; color: #1f2328; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 12px 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; }
th { background: #f6f8fa; }
td.num { text-align: right; }
td.met { background: #dafbe1; } td.miss { background: #ffebe9; font-weight: bold; }
.note { color: #59636e; font-size: 12px; }
.err { color: #d1242f; }
.charts { display: flex; flex-wrap: wrap; gap: 8px 24px; }
svg { display: block; margin: 8px 0; background: #fff; }
svg .title { font-weight: 600; font-size: 13px; }
svg .grid { stroke: #eaeef2; }
svg .frame { fill: none; stroke: #d0d7de; }
svg .ytick { font-size: 11px; text-anchor: end; fill: #59636e; }
svg .xtick { font-size: 11px; text-anchor: middle; fill: #59636e; }
svg .legend { font-size: 11px; fill: #1f2328; }
svg .marker { stroke: #8c959f; stroke-dasharray: 2 2; }
svg .mlabel { font-size: 10px; fill: #59636e; }
svg .empty { font-size: 12px; fill: #8c959f; text-anchor: middle; }
pre { background: #f6f8fa; padding: 12px; overflow-x: auto; font-size: 12px; }
</style>
</head>
<body>
<h1>eventsource bench</h1>
<p>{{.R.Started.Format "2006-01-02 15:04:05 MST"}}, {{printf "%.0f" .R.Seconds}} s, {{.R.Host.CPUs}} CPUs, {{.R.Host.GoVersion}}.
Server: {{.R.Server.Mode}}{{if .R.Server.PID}} (pid {{.R.Server.PID}}){{end}}, database {{.R.Server.Database}}{{if .R.Server.MySQLPool}}, MySQL pool {{.R.Server.MySQLPool}}{{end}}.
{{.R.Server.Note}}.</p>
<p class="note">Every figure is a ratio to a baseline measured in the same run with the same shape: a pipelined Redis pub/sub ping-pong for streams, one raw INSERT per request for persists. Timelines sample every interval; dashed lines are baselines.</p>
<table>
<tr><th>scenario</th><th>figure</th><th>value</th><th>baseline</th><th>ratio</th><th>target</th><th>met</th><th>note</th></tr>
{{range .Figures}}<tr><td>{{.Scenario}}</td><td>{{.Name}}</td><td class="num">{{.Value}}</td><td>{{.Baseline}}</td><td class="num">{{.Ratio}}</td><td>{{.Target}}</td><td class="{{.Class}}">{{.Met}}</td><td class="note">{{.Note}}</td></tr>
{{end}}</table>
{{range .Scenarios}}
<h2 id="{{.Name}}">{{.Name}}</h2>
<p>{{.Description}}</p>
{{if .Error}}<p class="err">failed: {{.Error}}</p>{{end}}
<ul>{{range .Lines}}<li>{{.}}</li>{{end}}</ul>
<div class="charts">{{range .Charts}}{{.}}{{end}}</div>
{{end}}
<h2>text report</h2>
<pre>{{.Text}}</pre>
</body>
</html>
`))
