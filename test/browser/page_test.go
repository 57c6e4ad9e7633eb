package browser_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/internal/testserver"
)

// postEvents stores events through POST /events and returns their ids.
func postEvents(t *testing.T, base string, events ...map[string]any) []string {
	t.Helper()
	body, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(base+"/events", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got struct{ IDs []int64 }
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != http.StatusCreated || len(got.IDs) != len(events) {
		t.Fatalf("POST /events: %d %v %v", res.StatusCode, got.IDs, err)
	}
	ids := make([]string, len(got.IDs))
	for i, id := range got.IDs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	return ids
}

// The page's default task reads domain shop, as the README's examples do,
// and its rows fill a table the width of the page, each value on one line
// (a long one cut short, shown whole when clicked). Watching a domain
// lists its stored events newest first, then each new one on top.
func TestGatewayPageLatestEventsAndRows(t *testing.T) {
	_, dbName := testserver.Database(t, "es_page")
	prefix := "page-" + testserver.RandomHex(4) + ":"
	cfg := testserver.Config(t, dbName, prefix)
	cfg.HTTP = gateway.DefaultConfig()
	cfg.HTTP.Addr, cfg.HTTP.Anonymous = "127.0.0.1:0", true
	srv := testserver.Start(t, cfg, nil)
	base := "http://" + srv.HTTPAddr().String()

	// The database is the test's own: domain shop holds these alone.
	signature := strings.Repeat("9f86d081884c7d65", 25) // 400 characters, no space to wrap at
	stored := postEvents(t, base,
		map[string]any{"pid": "order-1", "domain": "shop", "name": "created", "data": map[string]int{"total": 42}},
		map[string]any{"pid": "order-1", "domain": "shop", "name": "noted", "data": map[string]string{"note": strings.Repeat("a long note ", 40)}},
		map[string]any{"pid": "order-1", "domain": "shop", "name": "signed", "data": map[string]string{"signature": signature}},
	)
	newestFirst := slices.Clone(stored)
	slices.Reverse(newestFirst)

	p := openPage(t, base+"/")

	// The defaults name shop.
	if got := eval[string](p, `document.querySelector("#watch [name=domain]").placeholder`); got != "shop" {
		t.Errorf("the watch form's placeholder is %q, want shop", got)
	}
	if got := eval[string](p, `JSON.parse(document.querySelector("#task [name=query]").value).$select.$where.domain`); got != "shop" {
		t.Errorf("the default query reads domain %q, want shop", got)
	}

	// The default query, as it is, reads the events newest first.
	p.do(click(`#task button[type=submit]`))
	p.waitFor("the default task to complete", `document.querySelector("#task-status").textContent === "completed: 3 rows"`)
	headers := eval[[]string](p, `[...document.querySelectorAll("#rows thead th")].map(th => th.textContent)`)
	for _, want := range []string{"id", "pid", "domain", "name", "data"} {
		if !slices.Contains(headers, want) {
			t.Errorf("the table's headers %q lack %s", headers, want)
		}
	}
	idColumn := slices.Index(headers, "id")
	if got := eval[[]string](p, fmt.Sprintf(`[...document.querySelectorAll("#rows tbody tr")].map(tr => tr.cells[%d].textContent)`, idColumn)); !slices.Equal(got, newestFirst) {
		t.Errorf("the task's rows have ids %v, want %v", got, newestFirst)
	}

	// The table takes the page's width, not a column of it.
	if share := eval[float64](p, `document.querySelector("#rows").getBoundingClientRect().width / document.documentElement.clientWidth`); share < 0.6 {
		t.Errorf("the table is %.0f%% of the page's width, want at least 60%%", share*100)
	}
	// Every row is one line high, the long values' too.
	rowHeights := `[...document.querySelectorAll("#rows tbody tr")].map(tr => tr.getBoundingClientRect().height)`
	header := eval[float64](p, `document.querySelector("#rows thead tr").getBoundingClientRect().height`)
	heights := eval[[]float64](p, rowHeights)
	for i, h := range heights {
		if h > 1.5*header {
			t.Errorf("row %d is %.0f px high, the header %.0f: its values wrap", i, h, header)
		}
	}
	// The signature is cut short with an ellipsis, and whole in its tooltip.
	const sig = `[...document.querySelectorAll("#rows tbody .value")].find(v => v.textContent.includes("9f86d081884c7d659f86"))`
	type cut struct {
		WhiteSpace, TextOverflow, Title string
		Cut                             bool
	}
	var got cut
	if err := json.Unmarshal([]byte(eval[string](p, `(() => { const v = `+sig+`; const s = getComputedStyle(v);
  return JSON.stringify({whiteSpace: s.whiteSpace, textOverflow: s.textOverflow, title: v.title, cut: v.scrollWidth > v.clientWidth}); })()`)), &got); err != nil {
		t.Fatal(err)
	}
	if got.WhiteSpace != "nowrap" || got.TextOverflow != "ellipsis" || !got.Cut || !strings.Contains(got.Title, signature) {
		t.Errorf("the long value shows as %+v, want one line cut with an ellipsis, whole in its title", got)
	}
	// A click shows it whole; another puts it back on one line.
	p.do(chromedp.Click(chromedp.JSPath(sig)))
	p.waitFor("the value shown whole", `(`+sig+`).getBoundingClientRect().height > 3 * `+strconv.FormatFloat(header, 'f', -1, 64))
	p.do(chromedp.Click(chromedp.JSPath(sig)))
	p.waitFor("the value on one line again", `(`+sig+`).getBoundingClientRect().height < `+strconv.FormatFloat(header, 'f', -1, 64))

	// Watching shop lists what it holds, newest first...
	p.do(fill(`#watch [name=domain]`, "shop"), click(`#watch button`))
	p.waitFor("the stored events to be read", `document.querySelector("#watching").textContent === "Watching shop: its 3 events so far, newest first; new ones appear at the top."`)
	if got := p.listedIDs(); !slices.Equal(got, newestFirst) {
		t.Errorf("watching shop lists %v, want %v", got, newestFirst)
	}
	// ...and a new event on top.
	fourth := postEvents(t, base, map[string]any{"pid": "order-2", "domain": "shop", "name": "created", "data": map[string]int{"total": 7}})[0]
	p.waitFor("the new event on top", fmt.Sprintf(`document.querySelector("#events li")?.dataset.id === %q`, fourth))
	if got, want := p.listedIDs(), append([]string{fourth}, newestFirst...); !slices.Equal(got, want) {
		t.Errorf("after a new event the list is %v, want %v", got, want)
	}

	if dir := os.Getenv("SCREENSHOT_DIR"); dir != "" {
		png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "gateway-page-rows.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
