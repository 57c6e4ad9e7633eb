package gateway_test

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/eventsource/eventsource/server"
)

// scrape reads the server's metrics (its admin listener must be on) as
// name{labels} -> value.
func (h *harness) scrape() map[string]float64 {
	h.t.Helper()
	res, err := http.Get("http://" + h.srv.AdminAddr().String() + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.LastIndexByte(line, ' '); strings.HasPrefix(line, "eventsource_") && i > 0 {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out
}

func withAdmin(c *server.Config) { c.Admin = "127.0.0.1:0" }

// TestMetricsCountTheGateway: one SSE stream hears one POST of two events
// and closes, and a bad request is refused; the metrics say exactly that.
func TestMetricsCountTheGateway(t *testing.T) {
	t.Parallel()
	h := start(t, withAdmin)
	before := h.scrape()
	const open = `eventsource_sse_streams_open{kind="events"}`

	s := h.open("/events?domain=metrics", nil)
	eventually(t, "the stream to go live", func() bool { return s.last() != "" })
	if got := h.scrape()[open]; got != before[open]+1 {
		t.Errorf("%s = %v while the stream is open, want %v", open, got, before[open]+1)
	}
	h.post(event("metrics", "a", "p", 1), event("metrics", "b", "p", 2))
	s.expect("a")
	s.expect("b")
	if status, _ := h.do("GET", "/events", "", ""); status != http.StatusBadRequest {
		t.Fatalf("GET /events without a domain: %d", status)
	}
	s.close()
	var after map[string]float64
	// The stream's request is counted once its handler returned.
	const streamed = `eventsource_http_requests_total{code="200",route="GET /events"}`
	eventually(t, "the stream to close", func() bool {
		after = h.scrape()
		return after[open] == before[open] && after[streamed] > before[streamed]
	})

	for name, want := range map[string]float64{
		`eventsource_http_requests_total{code="201",route="POST /events"}`: 1,
		streamed: 1,
		`eventsource_http_requests_total{code="400",route="GET /events"}`: 1,
		`eventsource_sse_messages_sent_total{kind="events"}`:              2,
		`eventsource_commit_notifications_total{outcome="read"}`:          1,
	} {
		if got := after[name] - before[name]; got != want {
			t.Errorf("%s changed by %v, want %v", name, got, want)
		}
	}
	// The route names the method ("POST /events"): no label repeats it.
	for k := range after {
		if strings.HasPrefix(k, "eventsource_http_requests_total{") && strings.Contains(k, "method=") {
			t.Errorf("%s: the method is in the route already", k)
		}
	}
	if t.Failed() {
		for k, v := range after {
			if strings.HasPrefix(k, "eventsource_http") || strings.HasPrefix(k, "eventsource_sse") || strings.HasPrefix(k, "eventsource_commit") {
				t.Logf("%s %v", k, v)
			}
		}
	}
}
