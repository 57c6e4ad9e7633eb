package metrics

import "github.com/prometheus/client_golang/prometheus"

// consumerMetrics follow durable consumers and the followed streams that
// serve them.
type consumerMetrics struct {
	lag        *prometheus.GaugeVec
	followRows prometheus.Counter
}

func newConsumerMetrics(reg *prometheus.Registry) *consumerMetrics {
	c := &consumerMetrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventsource_consumer_lag", Help: "Rows of a durable consumer's query after its position, counted up to 100000: set for the consumers this server holds every 15 s, and for all of them when GET /consumers is served.",
		}, []string{"consumer"}),
		followRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventsource_follow_rows_total", Help: "Rows delivered to followed streams.",
		}),
	}
	reg.MustRegister(c.lag, c.followRows)
	return c
}

// ConsumerLag sets the lag of one consumer.
func (m *Metrics) ConsumerLag(consumer string, lag int64) {
	if m != nil {
		m.consumers.lag.WithLabelValues(consumer).Set(float64(lag))
	}
}

// ConsumerLags sets the lag of every consumer there is, and forgets the
// consumers not among them (deleted ones).
func (m *Metrics) ConsumerLags(lags map[string]int64) {
	if m == nil {
		return
	}
	m.consumers.lag.Reset()
	for consumer, lag := range lags {
		m.consumers.lag.WithLabelValues(consumer).Set(float64(lag))
	}
}

// ForgetConsumer drops the lag of a consumer that is gone.
func (m *Metrics) ForgetConsumer(consumer string) {
	if m != nil {
		m.consumers.lag.DeleteLabelValues(consumer)
	}
}

// FollowRowSent counts a row delivered to a followed stream.
func (m *Metrics) FollowRowSent() {
	if m != nil {
		m.consumers.followRows.Inc()
	}
}
