// Package metrics holds the server's Prometheus metrics. Every method is
// safe on a nil *Metrics, which records nothing: that is how the server
// runs with instrumentation off.
package metrics

import (
	"database/sql"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the server's collectors, on a registry of their own (never
// the global one, so that tests and several servers in one process do not
// collide).
type Metrics struct {
	Registry *prometheus.Registry

	requests       *prometheus.CounterVec
	refused        *prometheus.CounterVec
	open           *prometheus.GaugeVec
	ended          *prometheus.CounterVec
	rows           prometheus.Counter
	acceptLatency  prometheus.Histogram
	persistLatency prometheus.Histogram
	batchSize      prometheus.Histogram
	supervisor     *prometheus.CounterVec
	mailbox        *prometheus.GaugeVec
	http           *httpMetrics
	redis          *redisMetrics
	replicas       *replicaMetrics
	faults         *faultMetrics
	writes         *writeMetrics
	consumers      *consumerMetrics
}

// New registers the collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsource_requests_total", Help: "Requests received, by request channel kind (fetch, persist, fetch_next).",
		}, []string{"kind"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsource_requests_refused_total", Help: "Requests refused, by reason.",
		}, []string{"reason"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventsource_streams_open", Help: "Streams and persists in progress, by kind.",
		}, []string{"kind"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsource_streams_ended_total", Help: "Streams and persists ended, by kind and how they ended (end, client_end, timeout, error, stopped: by an operator).",
		}, []string{"kind", "ending"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventsource_rows_sent_total", Help: "Rows published to clients.",
		}),
		acceptLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eventsource_accept_latency_seconds", Help: "Time from publishing a row to hearing its \"accepted\".",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
		persistLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eventsource_persist_duration_seconds", Help: "Time from a persist request to its commit.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eventsource_persist_batch_size", Help: "Persist requests committed per transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		supervisor: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsource_supervisor_events_total", Help: "Actor failures handled by a supervisor, by directive (stop, restart).",
		}, []string{"directive"}),
		mailbox: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventsource_mailbox_depth", Help: "Messages waiting in an actor's mailbox.",
		}, []string{"actor"}),
	}
	m.Registry.MustRegister(m.requests, m.refused, m.open, m.ended, m.rows, m.acceptLatency,
		m.persistLatency, m.batchSize, m.supervisor, m.mailbox,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.http = newHTTPMetrics(m.Registry)
	m.redis = newRedisMetrics(m.Registry)
	m.replicas = newReplicaMetrics(m.Registry)
	m.faults = newFaultMetrics(m.Registry)
	m.writes = newWriteMetrics(m.Registry)
	m.consumers = newConsumerMetrics(m.Registry)
	registerBuildInfo(m.Registry)
	return m
}

// WatchPool adds the MySQL connection pool statistics.
func (m *Metrics) WatchPool(db *sql.DB) {
	if m == nil {
		return
	}
	m.Registry.MustRegister(collectors.NewDBStatsCollector(db, "eventsource"))
}

func (m *Metrics) RequestReceived(kind string) {
	if m != nil {
		m.requests.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) RequestRefused(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) StreamOpened(kind string) {
	if m != nil {
		m.open.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) StreamEnded(kind, ending string) {
	if m != nil {
		m.open.WithLabelValues(kind).Dec()
		m.ended.WithLabelValues(kind, ending).Inc()
	}
}

func (m *Metrics) RowSent() {
	if m != nil {
		m.rows.Inc()
	}
}

func (m *Metrics) Accepted(latency time.Duration) {
	if m != nil {
		m.acceptLatency.Observe(latency.Seconds())
	}
}

func (m *Metrics) Persisted(latency time.Duration) {
	if m != nil {
		m.persistLatency.Observe(latency.Seconds())
	}
}

func (m *Metrics) BatchCommitted(requests int) {
	if m != nil {
		m.batchSize.Observe(float64(requests))
	}
}

func (m *Metrics) SupervisorEvent(directive string) {
	if m != nil {
		m.supervisor.WithLabelValues(directive).Inc()
	}
}

// MailboxDepth is a protoactor mailbox middleware that exports the depth of
// one actor's mailbox (protoactor's own gauge is never exported).
func (m *Metrics) MailboxDepth(actor string) *Depth {
	d := &Depth{}
	if m != nil {
		d.gauge = m.mailbox.WithLabelValues(actor)
	}
	return d
}

// Depth counts a mailbox's messages posted and not yet received.
type Depth struct {
	n     atomic.Int64
	gauge prometheus.Gauge
}

// Len is how many messages wait.
func (d *Depth) Len() int64 { return d.n.Load() }

func (d *Depth) MailboxStarted() {}
func (d *Depth) MessagePosted(any) {
	if n := d.n.Add(1); d.gauge != nil {
		d.gauge.Set(float64(n))
	}
}
func (d *Depth) MessageReceived(any) {
	if n := d.n.Add(-1); d.gauge != nil {
		d.gauge.Set(float64(n))
	}
}
func (d *Depth) MailboxEmpty() {}
