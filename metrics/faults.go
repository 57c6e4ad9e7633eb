package metrics

import "github.com/prometheus/client_golang/prometheus"

// faultMetrics follow how the server rides out faults: a slow or absent
// Redis, clients that flood a stream, slow reads.
type faultMetrics struct {
	paused          prometheus.Counter
	controlsDropped prometheus.Counter
	terminalsDrop   prometheus.Counter
	readDeadlines   prometheus.Counter
}

func newFaultMetrics(reg *prometheus.Registry) *faultMetrics {
	f := &faultMetrics{
		paused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventsource_publish_paused_total", Help: "Times a stream held its rows because the publisher's queue was full (Redis slow or away).",
		}),
		controlsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventsource_controls_dropped_total", Help: "\"accepted\" messages dropped because their stream had too many waiting already (a client sending more than its window).",
		}),
		terminalsDrop: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventsource_terminals_dropped_total", Help: "Terminals given up on: Redis did not take them within the terminal retry time, or too many waited.",
		}),
		readDeadlines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventsource_read_deadlines_total", Help: "Reads of a stream's rows that ran past --mysql-read-timeout (the stream ends with \"error\").",
		}),
	}
	reg.MustRegister(f.paused, f.controlsDropped, f.terminalsDrop, f.readDeadlines)
	return f
}

// PublishPaused counts a stream holding its rows for a full publish queue.
func (m *Metrics) PublishPaused() {
	if m != nil {
		m.faults.paused.Inc()
	}
}

// ControlDropped counts an "accepted" dropped for a flooded stream.
func (m *Metrics) ControlDropped() {
	if m != nil {
		m.faults.controlsDropped.Inc()
	}
}

// TerminalDropped counts a terminal given up on.
func (m *Metrics) TerminalDropped() {
	if m != nil {
		m.faults.terminalsDrop.Inc()
	}
}

// ReadDeadline counts a read that ran past its deadline.
func (m *Metrics) ReadDeadline() {
	if m != nil {
		m.faults.readDeadlines.Inc()
	}
}

// WatchTerminals exports how many terminals wait to go again, as waiting
// says.
func (m *Metrics) WatchTerminals(waiting func() int) {
	if m == nil {
		return
	}
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventsource_terminals_waiting", Help: "Terminals waiting for Redis to take them (after an outage or a lost connection).",
	}, func() float64 { return float64(waiting()) }))
}
