package soak

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is the server's state at one moment: its /metrics, and its
// connections as Redis and MariaDB count them.
type Sample struct {
	At         time.Time `json:"-"`
	Goroutines float64   `json:"goroutines"`
	HeapInuse  float64   `json:"heap_inuse_bytes"`
	RSS        float64   `json:"rss_bytes"`
	FDs        float64   `json:"open_fds"`
	// RedisConns and MySQLConns are counted by Redis (CLIENT LIST) and
	// MariaDB (PROCESSLIST); -1 when they could not be.
	RedisConns int `json:"redis_conns"`
	MySQLConns int `json:"mysql_conns"`
	// What the server says of its own connections.
	RedisGauge float64 `json:"redis_conns_gauge"`
	SQLOpen    float64 `json:"sql_open"`
	SQLInUse   float64 `json:"sql_in_use"`

	StreamsOpen float64 `json:"streams_open"`
	SSEOpen     float64 `json:"sse_open"`
	RowsSent    float64 `json:"rows_sent"`
	// Ended is eventsource_streams_ended_total as "kind/ending".
	Ended map[string]float64 `json:"ended"`
	// Refused is eventsource_requests_refused_total by reason.
	Refused map[string]float64 `json:"refused"`
	// Requests is eventsource_requests_total by kind.
	Requests map[string]float64 `json:"requests"`
	// Commits is eventsource_commit_notifications_total by outcome.
	Commits    map[string]float64 `json:"commit_notifications"`
	FeedLost   float64            `json:"sse_feed_lost"`
	ClaimsLost float64            `json:"claims_lost"`
	Supervisor float64            `json:"supervisor_events"`
	Orphaned   float64            `json:"orphaned_streams_ended"`
}

// scrape reads the admin listener's /metrics.
func scrape(ctx context.Context, admin string) (Sample, error) {
	s := Sample{At: time.Now(), RedisConns: -1, MySQLConns: -1, Ended: map[string]float64{}, Refused: map[string]float64{}, Commits: map[string]float64{}, Requests: map[string]float64{}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return s, fmt.Errorf("metrics: %w", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, fmt.Errorf("metrics: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return s, fmt.Errorf("metrics: %s", res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		return s, fmt.Errorf("metrics: parse: %w", err)
	}
	s.Goroutines = sum(families["go_goroutines"], nil)
	s.HeapInuse = sum(families["go_memstats_heap_inuse_bytes"], nil)
	s.RSS = sum(families["process_resident_memory_bytes"], nil)
	s.FDs = sum(families["process_open_fds"], nil)
	s.RedisGauge = sum(families["eventsource_redis_connections"], nil)
	ours := map[string]string{"db_name": "eventsource"}
	s.SQLOpen = sum(families["go_sql_open_connections"], ours)
	s.SQLInUse = sum(families["go_sql_in_use_connections"], ours)
	s.StreamsOpen = sum(families["eventsource_streams_open"], nil)
	s.SSEOpen = sum(families["eventsource_sse_streams_open"], nil)
	s.RowsSent = sum(families["eventsource_rows_sent_total"], nil)
	s.FeedLost = sum(families["eventsource_sse_feed_lost_total"], nil)
	s.ClaimsLost = sum(families["eventsource_claims_total"], map[string]string{"outcome": "lost"})
	s.Supervisor = sum(families["eventsource_supervisor_events_total"], nil)
	s.Orphaned = sum(families["eventsource_orphaned_streams_ended_total"], nil)
	for _, m := range metricsOf(families["eventsource_streams_ended_total"]) {
		s.Ended[label(m, "kind")+"/"+label(m, "ending")] += value(m)
	}
	for _, m := range metricsOf(families["eventsource_requests_total"]) {
		s.Requests[label(m, "kind")] += value(m)
	}
	for _, m := range metricsOf(families["eventsource_commit_notifications_total"]) {
		s.Commits[label(m, "outcome")] += value(m)
	}
	for _, m := range metricsOf(families["eventsource_requests_refused_total"]) {
		s.Refused[label(m, "reason")] += value(m)
	}
	return s, nil
}

func metricsOf(f *dto.MetricFamily) []*dto.Metric {
	if f == nil {
		return nil
	}
	return f.GetMetric()
}

// sum adds the values of f's series whose labels include want.
func sum(f *dto.MetricFamily, want map[string]string) float64 {
	var total float64
next:
	for _, m := range metricsOf(f) {
		for k, v := range want {
			if label(m, k) != v {
				continue next
			}
		}
		total += value(m)
	}
	return total
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// formatCounts prints a map of counts as "a 1, b 2", keys sorted, zeros
// left out; "none" when nothing is left.
func formatCounts[V int | int64 | float64](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "none"
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", k, count(int64(m[k])))
	}
	return b.String()
}
