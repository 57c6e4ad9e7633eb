package metrics

import "github.com/prometheus/client_golang/prometheus"

// replicaMetrics follow what several servers on one Redis decide together
// (replicas.Keeper): who answers each request, and who ends a dead
// server's streams.
type replicaMetrics struct {
	claims      *prometheus.CounterVec
	fullRefused prometheus.Counter
	orphans     prometheus.Counter
}

func newReplicaMetrics(reg *prometheus.Registry) *replicaMetrics {
	r := &replicaMetrics{
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsource_claims_total", Help: "Claims of response channels this server asked for, by outcome (won: it answers; lost: another server does).",
		}, []string{"outcome"}),
		fullRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventsource_requests_refused_everywhere_total", Help: "Requests this server refused because it was full and no other server had taken them (every server was full).",
		}),
		orphans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventsource_orphaned_streams_ended_total", Help: "Streams of dead servers this server ended with \"error\".",
		}),
	}
	reg.MustRegister(r.claims, r.fullRefused, r.orphans)
	r.claims.WithLabelValues("won")
	r.claims.WithLabelValues("lost")
	return r
}

// Claimed counts a claim by outcome ("won", "lost").
func (m *Metrics) Claimed(outcome string) {
	if m != nil {
		m.replicas.claims.WithLabelValues(outcome).Inc()
	}
}

// ClusterRefused counts a request refused because every server was full.
func (m *Metrics) ClusterRefused() {
	if m != nil {
		m.replicas.fullRefused.Inc()
	}
}

// OrphansEnded counts the streams of a dead server this one ended.
func (m *Metrics) OrphansEnded(n int) {
	if m != nil {
		m.replicas.orphans.Add(float64(n))
	}
}
