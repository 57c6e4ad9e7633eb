package metrics

import "github.com/prometheus/client_golang/prometheus"

// redisMetrics follow the server's own Redis connections: the subscriber's
// and each publishing worker's (redisbus.Observer).
type redisMetrics struct {
	open  *prometheus.GaugeVec
	dials *prometheus.CounterVec
}

// The roles of the connections, as redisbus names them.
var redisRoles = []string{"subscriber", "publisher"}

func newRedisMetrics(reg *prometheus.Registry) *redisMetrics {
	r := &redisMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventsource_redis_connections", Help: "The server's own Redis connections open, by role (subscriber, publisher).",
		}, []string{"role"}),
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsource_redis_dials_total", Help: "Dials of the server's own Redis connections, by role and outcome (ok, failed); more than one ok per connection is a reconnect.",
		}, []string{"role", "outcome"}),
	}
	reg.MustRegister(r.open, r.dials)
	// Known label values start at 0, so a rate sees the first one.
	for _, role := range redisRoles {
		r.open.WithLabelValues(role)
		r.dials.WithLabelValues(role, "ok")
		r.dials.WithLabelValues(role, "failed")
	}
	return r
}

// RedisDialed counts a dial of one of the server's own Redis connections.
func (m *Metrics) RedisDialed(role string, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.redis.dials.WithLabelValues(role, "failed").Inc()
		return
	}
	m.redis.dials.WithLabelValues(role, "ok").Inc()
	m.redis.open.WithLabelValues(role).Inc()
}

// RedisClosed counts one of them closed, or lost.
func (m *Metrics) RedisClosed(role string) {
	if m != nil {
		m.redis.open.WithLabelValues(role).Dec()
	}
}
