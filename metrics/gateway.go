package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpMetrics are the HTTP gateway's: its requests, its SSE streams and
// what they were sent, and the commit feed behind the live ones.
type httpMetrics struct {
	requests    *prometheus.CounterVec
	sseOpen     *prometheus.GaugeVec
	sseMessages *prometheus.CounterVec
	feedLost    *prometheus.CounterVec
	limited     *prometheus.CounterVec
	commits     *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	h := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsource_http_requests_total", Help: "HTTP gateway requests, by route (the method and path pattern, e.g. \"POST /events\") and status code, counted when they end (an SSE stream when it closes).",
		}, []string{"route", "code"}),
		sseOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventsource_sse_streams_open", Help: "Server-Sent Events streams open, by kind (events: GET /events; session).",
		}, []string{"kind"}),
		sseMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsource_sse_messages_sent_total", Help: "Messages written to SSE streams (events replayed or live, session messages, last words), by kind.",
		}, []string{"kind"}),
		feedLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsource_sse_feed_lost_total", Help: "Holes in the live feed after which SSE clients are told to reconnect, by cause (slow_reader: per stream; notifications_dropped, redis_lost, read_failed, uncertain_commit: once for every live stream).",
		}, []string{"cause"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsource_http_limited_total",
			Help: "HTTP gateway requests refused or cut off by a fairness limit, by limit (global, streams, subject_streams, subject_requests: 429; read_body_timeout: 408).",
		}, []string{"limit"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsource_commit_notifications_total", Help: "Commit notifications the HTTP gateway heard, by outcome (read, skipped: no listener or another table, uncertain: a commit whose rows are not known, invalid, dropped: queue full, read_failed).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(h.requests, h.sseOpen, h.sseMessages, h.feedLost, h.limited, h.commits)
	// Known label values start at zero, so that a rate over them means
	// something from the first scrape on.
	for _, kind := range []string{"events", "session"} {
		h.sseOpen.WithLabelValues(kind)
		h.sseMessages.WithLabelValues(kind)
	}
	for _, cause := range []string{FeedSlowReader, FeedNotificationsDropped, FeedRedisLost, FeedReadFailed, FeedUncertainCommit} {
		h.feedLost.WithLabelValues(cause)
	}
	for _, outcome := range []string{"read", "skipped", "uncertain", "invalid", "dropped", "read_failed"} {
		h.commits.WithLabelValues(outcome)
	}
	for _, limit := range []string{HTTPLimitGlobal, HTTPLimitStreams, HTTPLimitSubjectStreams, HTTPLimitSubjectRequests, HTTPLimitBodyTimeout} {
		h.limited.WithLabelValues(limit)
	}
	return h
}

// The limits an HTTP request can meet (HTTPLimited).
const (
	HTTPLimitGlobal          = "global"            // --http-max-connections
	HTTPLimitStreams         = "streams"           // the streams' share of it
	HTTPLimitSubjectStreams  = "subject_streams"   // one subject's streams
	HTTPLimitSubjectRequests = "subject_requests"  // one subject's other requests
	HTTPLimitBodyTimeout     = "read_body_timeout" // a body not in within its timeout (408)
)

// HTTPLimited counts a request that met limit.
func (m *Metrics) HTTPLimited(limit string) {
	if m != nil {
		m.http.limited.WithLabelValues(limit).Inc()
	}
}

// Causes of a hole in the SSE live feed (FeedLost).
const (
	FeedSlowReader           = "slow_reader"
	FeedNotificationsDropped = "notifications_dropped"
	FeedRedisLost            = "redis_lost"
	FeedReadFailed           = "read_failed"
	FeedUncertainCommit      = "uncertain_commit"
)

// InstrumentRoute counts the requests h serves under the route pattern,
// which names the method already: the counter has no method label of its
// own (promhttp adds one only to a counter that has it).
func (m *Metrics) InstrumentRoute(route string, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	return promhttp.InstrumentHandlerCounter(m.http.requests.MustCurryWith(prometheus.Labels{"route": route}), h)
}

func (m *Metrics) SSEStreamOpened(kind string) {
	if m != nil {
		m.http.sseOpen.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) SSEStreamClosed(kind string) {
	if m != nil {
		m.http.sseOpen.WithLabelValues(kind).Dec()
	}
}

// SSEMessagesSent returns the counter of messages written to SSE streams
// of kind (nil when m is nil), for a stream to add to as it flushes.
func (m *Metrics) SSEMessagesSent(kind string) prometheus.Counter {
	if m == nil {
		return nil
	}
	return m.http.sseMessages.WithLabelValues(kind)
}

func (m *Metrics) FeedLost(cause string) {
	if m != nil {
		m.http.feedLost.WithLabelValues(cause).Inc()
	}
}

func (m *Metrics) CommitNotification(outcome string) {
	if m != nil {
		m.http.commits.WithLabelValues(outcome).Inc()
	}
}
