package metrics

import "github.com/prometheus/client_golang/prometheus"

// writeMetrics follow safe writes: retries answered from what is stored,
// and persists that failed, by reason (conflict, db).
type writeMetrics struct {
	duplicates prometheus.Counter
	failed     *prometheus.CounterVec
}

func newWriteMetrics(reg *prometheus.Registry) *writeMetrics {
	w := &writeMetrics{
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventsource_persist_duplicates_total", Help: "Persists whose event ids were all stored already with the same content: answered as retries, nothing stored twice.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsource_persists_failed_total", Help: "Persists answered \"error\" after they reached the database, by reason: conflict (expected version or event id) or db.",
		}, []string{"reason"}),
	}
	// Both reasons from the start, at zero: a rate over them needs no
	// first failure.
	w.failed.WithLabelValues("conflict")
	w.failed.WithLabelValues("db")
	reg.MustRegister(w.duplicates, w.failed)
	return w
}

// PersistDuplicate counts a persist answered as a retry.
func (m *Metrics) PersistDuplicate() {
	if m != nil {
		m.writes.duplicates.Inc()
	}
}

// PersistFailed counts a persist that failed for reason.
func (m *Metrics) PersistFailed(reason string) {
	if m != nil {
		m.writes.failed.WithLabelValues(reason).Inc()
	}
}
