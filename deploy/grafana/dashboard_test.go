// Package grafana_test checks the Grafana dashboard eventsource.json
// against what a real server exports: every query names a metric and
// labels that exist, and every eventsource_* and go_sql_* metric has a
// panel.
package grafana_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/server"
)

type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	SchemaVersion int    `json:"schemaVersion"`
	Title         string `json:"title"`
	UID           string `json:"uid"`
	Templating    struct {
		List []struct {
			Name       string     `json:"name"`
			Datasource datasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("eventsource.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatal("eventsource.json is not valid JSON")
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

const dsRef = "${DS_PROMETHEUS}"

// TestDashboardShape checks what Grafana's import needs: the datasource
// input, panels with unique ids on the 24-column grid without overlaps,
// and every query on the input's datasource.
func TestDashboardShape(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	if d.SchemaVersion < 36 || d.Title == "" || d.UID == "" {
		t.Errorf("schemaVersion %d, title %q, uid %q", d.SchemaVersion, d.Title, d.UID)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs %+v, want the one DS_PROMETHEUS datasource", d.Inputs)
	}
	for _, v := range d.Templating.List {
		if v.Datasource.UID != dsRef {
			t.Errorf("variable %s uses datasource %+v", v.Name, v.Datasource)
		}
	}
	ids := map[int]bool{}
	cells := map[[2]int]int{}
	for _, p := range d.Panels {
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d is zero or taken", p.Title, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("panel %q: gridPos %+v is off the grid", p.Title, g)
		}
		for y := g.Y; y < g.Y+g.H; y++ {
			for x := g.X; x < g.X+g.W; x++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Fatalf("panels %d and %d (%q) overlap at %d,%d", other, p.ID, p.Title, x, y)
				}
				cells[[2]int{x, y}] = p.ID
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != dsRef || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %+v, %d queries", p.Title, p.Datasource, len(p.Targets))
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.Expr == "" || q.RefID == "" || refs[q.RefID] || q.Datasource == nil || q.Datasource.UID != dsRef {
				t.Errorf("panel %q: query %+v lacks an expr, a unique refId or the datasource", p.Title, q)
			}
			refs[q.RefID] = true
			if strings.Count(q.Expr, "(") != strings.Count(q.Expr, ")") || strings.Count(q.Expr, "{") != strings.Count(q.Expr, "}") {
				t.Errorf("panel %q: unbalanced brackets in %s", p.Title, q.Expr)
			}
		}
	}
}

var (
	// identRE finds PromQL identifiers; those with our prefixes are
	// metric names (no function or keyword has one).
	identRE    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	metricName = regexp.MustCompile(`^(eventsource|go|process)_`)
	byRE       = regexp.MustCompile(`\bby \(([^)]*)\)`)
	matcherRE  = regexp.MustCompile(`\{([^}]*)\}`)
	labelRE    = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)`)
	// targetLabels are added by Prometheus when it scrapes, so no /metrics
	// shows them.
	targetLabels = []string{"instance", "job"}
)

// TestDashboardMatchesMetrics runs a server, gives it a workload that
// touches every metric (a persist, a fetch to its end, a refused request,
// a stream that panics), scrapes /metrics, and checks the dashboard
// against it both ways.
func TestDashboardMatchesMetrics(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	scraped := scrapeAfterWorkload(t)

	// series name -> label names, including a histogram's _bucket, _sum
	// and _count.
	labels := map[string]map[string]bool{}
	for name, mf := range scraped {
		series := []string{name}
		if mf.GetType().String() == "HISTOGRAM" {
			series = []string{name + "_bucket", name + "_sum", name + "_count"}
		}
		for _, s := range series {
			ls := map[string]bool{}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					ls[l.GetName()] = true
				}
			}
			if strings.HasSuffix(s, "_bucket") {
				ls["le"] = true
			}
			for _, l := range targetLabels {
				ls[l] = true
			}
			labels[s] = ls
		}
	}

	used := map[string]bool{}
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			var names []string
			for _, id := range identRE.FindAllString(q.Expr, -1) {
				if metricName.MatchString(id) {
					names = append(names, id)
				}
			}
			if len(names) == 0 {
				t.Errorf("panel %q: %s names no metric", p.Title, q.Expr)
			}
			known := map[string]bool{}
			for _, n := range names {
				ls, ok := labels[n]
				if !ok {
					t.Errorf("panel %q: %s is not among the server's metrics", p.Title, n)
					continue
				}
				used[n] = true
				for l := range ls {
					known[l] = true
				}
			}
			var want []string
			for _, m := range byRE.FindAllStringSubmatch(q.Expr, -1) {
				for l := range strings.SplitSeq(m[1], ",") {
					want = append(want, strings.TrimSpace(l))
				}
			}
			for _, m := range matcherRE.FindAllStringSubmatch(q.Expr, -1) {
				for _, l := range labelRE.FindAllStringSubmatch(m[1], -1) {
					want = append(want, l[1])
				}
			}
			for _, l := range want {
				if !known[l] {
					t.Errorf("panel %q: label %q is on none of the metrics of %s", p.Title, l, q.Expr)
				}
			}
		}
	}

	// Every metric of ours and of the MySQL pool has a panel.
	var missing []string
	for name, mf := range scraped {
		if !strings.HasPrefix(name, "eventsource_") && !strings.HasPrefix(name, "go_sql_") {
			continue
		}
		found := used[name]
		if mf.GetType().String() == "HISTOGRAM" {
			found = used[name+"_bucket"] || used[name+"_sum"] || used[name+"_count"]
		}
		if !found {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no panel shows %q", missing)
	}
	// The workload reached every metric the server declares.
	for _, want := range []string{
		"eventsource_requests_total", "eventsource_requests_refused_total", "eventsource_streams_open",
		"eventsource_streams_ended_total", "eventsource_rows_sent_total", "eventsource_accept_latency_seconds",
		"eventsource_persist_duration_seconds", "eventsource_persist_batch_size", "eventsource_supervisor_events_total",
		"eventsource_mailbox_depth", "eventsource_redis_connections", "eventsource_redis_dials_total",
		"go_sql_open_connections", "go_sql_in_use_connections", "go_sql_idle_connections", "go_sql_wait_count_total",
		"eventsource_http_requests_total", "eventsource_sse_streams_open", "eventsource_sse_messages_sent_total",
		"eventsource_sse_feed_lost_total", "eventsource_commit_notifications_total",
	} {
		if _, ok := scraped[want]; !ok {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	if t.Failed() {
		names := make([]string, 0, len(scraped))
		for n := range scraped {
			names = append(names, n)
		}
		slices.Sort(names)
		t.Logf("scraped: %q", names)
	}
}

// panicOn makes the stream on one channel panic when the client accepts
// its first row: a supervisor event.
func panicOn(channel string) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
			if strings.HasSuffix(ctx.Self().Id, "stream:"+channel) && fmt.Sprintf("%T", env.Message) == "actors.control" {
				panic("injected fault")
			}
			next(ctx, env)
		}
	}
}

func scrapeAfterWorkload(t *testing.T) map[string]*metricFamily {
	t.Helper()
	ctx := context.Background()
	_, dbName := testserver.Database(t, "es_grafana")
	prefix := "es-grafana-" + testserver.RandomHex(6) + ":"
	cfg := testserver.Config(t, dbName, prefix)
	cfg.Admin = "127.0.0.1:0"
	cfg.HTTP = gateway.DefaultConfig()
	cfg.HTTP.Addr, cfg.HTTP.Anonymous = "127.0.0.1:0", true
	victim := prefix + "victim"
	srv := testserver.Start(t, cfg, nil, server.WithChildMiddleware(panicOn(victim)))
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr(), Password: cfg.Redis.Password, DB: cfg.Redis.DB})
	t.Cleanup(func() { rdb.Close() })

	// talk sends one request and answers each row with "accepted" until a
	// terminal, which it returns.
	talk := func(requestChannel, channel, query string) string {
		t.Helper()
		ps := rdb.Subscribe(ctx, channel)
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		msgs := ps.Channel()
		if err := rdb.Publish(ctx, requestChannel, fmt.Sprintf(`{"channel":%q,"query":%s}`, channel, query)).Err(); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case m := <-msgs:
				switch m.Payload {
				case `"accepted"`: // our own, heard back
				case `"end"`, `"error"`, `"timeout"`:
					return m.Payload
				default:
					if strings.HasPrefix(m.Payload, `{"fieldCount"`) {
						continue // a persist's reply; "end" follows
					}
					if err := rdb.Publish(ctx, channel, `"accepted"`).Err(); err != nil {
						t.Fatal(err)
					}
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no terminal", channel)
			}
		}
	}
	if got := talk(cfg.PersistChannel, prefix+"persist-1", `{"$insert":{"$documents":[{"pid":"p","domain":"d","name":"a","data":{}},{"pid":"p","domain":"d","name":"b","data":{}}]}}`); got != `"end"` {
		t.Fatalf("persist ended with %s", got)
	}
	if got := talk(cfg.FetchChannel, prefix+"fetch-1", `{"$select":{"$where":{"pid":"p"}}}`); got != `"end"` {
		t.Fatalf("fetch ended with %s", got)
	}
	if got := talk(cfg.FetchChannel, prefix+"bad-1", `{"$select":{"$where":{"nosuch":1}}}`); got != `"error"` {
		t.Fatalf("a bad fetch ended with %s", got)
	}
	if got := talk(cfg.FetchChannel, victim, `{"$select":{"$where":{"pid":"p"}}}`); got != `"error"` {
		t.Fatalf("the panicking fetch ended with %s", got)
	}

	// The HTTP gateway: an event posted, and a request it refuses.
	base := "http://" + srv.HTTPAddr().String()
	for body, want := range map[string]int{
		`{"pid":"p","domain":"d","name":"c","data":{}}`: http.StatusCreated,
		`{"pid":"p"}`: http.StatusBadRequest,
	} {
		resp, err := http.Post(base+"/events", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST /events %s: %s, want %d", body, resp.Status, want)
		}
	}

	url := "http://" + srv.AdminAddr().String() + "/metrics"
	var families map[string]*metricFamily
	deadline := time.Now().Add(10 * time.Second)
	for {
		families = scrape(t, url)
		// The supervisor's event reaches the metric through the event
		// stream, after the client heard "error".
		if _, ok := families["eventsource_supervisor_events_total"]; ok || time.Now().After(deadline) {
			return families
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type metricFamily = dto.MetricFamily

func scrape(t *testing.T, url string) map[string]*metricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}
