package browser_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/internal/testserver"
)

// page is the gateway's web page in a headless Chromium driven over the
// DevTools protocol.
type page struct {
	t   *testing.T
	ctx context.Context
}

func openPage(t *testing.T, url string) *page {
	t.Helper()
	return browse(t, url, `#state.open`)
}

// browse opens url in a fresh headless Chromium and waits until the
// element ready selects is visible.
func browse(t *testing.T, url, ready string) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	p := &page{t: t, ctx: ctx}
	p.do(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(ready)))
	return p
}

// do runs steps in the page, in order.
func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// fill replaces the value of a form field, typing it as a person would.
func fill(sel, value string) chromedp.Action[chromedp.Void] {
	empty := func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).value = ""`, sel))(ctx, t)
		return chromedp.Void{}, err
	}
	return chromedp.Steps(empty, chromedp.SendKeys(chromedp.CSS(sel), value))
}

// click clicks the element sel selects.
func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

// waitFor polls a JavaScript expression until it is true.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if eval[bool](p, expr) {
			return
		}
		if time.Now().After(deadline) {
			body := eval[string](p, `document.querySelector("main").innerText`)
			p.t.Fatalf("waited 20s for %s (%s); the page shows:\n%s", what, expr, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listedIDs are the event ids in the live list, newest first.
func (p *page) listedIDs() []string {
	p.t.Helper()
	return eval[[]string](p, `[...document.querySelectorAll("#events li")].map(li => li.dataset.id)`)
}

// The page watches a domain, posts an event through its form and sees it
// arrive, sees an event persisted over Redis arrive, runs a fetch task, and
// loses nothing when its stream is cut and resumed.
func TestGatewayPage(t *testing.T) {
	_, dbName := testserver.Database(t, "es_page")
	prefix := "page-" + testserver.RandomHex(4) + ":"
	cfg := testserver.Config(t, dbName, prefix)
	cfg.HTTP = gateway.DefaultConfig()
	cfg.HTTP.Addr, cfg.HTTP.Anonymous = "127.0.0.1:0", true
	srv := testserver.Start(t, cfg, nil)
	base := "http://" + srv.HTTPAddr().String()
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr(), Password: cfg.Redis.Password, DB: cfg.Redis.DB})
	cl := client.New(rdb, client.WithFetchChannel(cfg.FetchChannel), client.WithPersistChannel(cfg.PersistChannel),
		client.WithChannelPrefix(prefix+"c:"), client.WithTimeout(20*time.Second))
	t.Cleanup(func() {
		_ = cl.Close()
		_ = rdb.Close()
	})
	domain := "shop-" + testserver.RandomHex(3)

	p := openPage(t, base+"/")

	// Watch the domain.
	p.do(fill(`#watch [name=domain]`, domain), click(`#watch button`))
	p.waitFor("the watch to start", `document.querySelector("#watching").textContent.startsWith("Watching `+domain+`")`)

	// Post an event through the form: it is stored and arrives in the list.
	p.do(
		fill(`#post [name=pid]`, "cart-1"),
		fill(`#post [name=name]`, "item-added"),
		fill(`#post [name=data]`, `{"sku": "A-1", "qty": 2}`),
		click(`#post button`),
	)
	p.waitFor("the posted event in the list", `[...document.querySelectorAll("#events li")].some(li => li.textContent.includes("item-added") && li.textContent.includes('"sku":"A-1"'))`)
	if result := eval[string](p, `document.querySelector("#post-result").textContent`); !strings.HasPrefix(result, "stored as #") {
		t.Errorf("post result %q", result)
	}

	// Data that is not JSON is refused on the page, before any request.
	p.do(fill(`#post [name=data]`, `{not json`), click(`#post button`))
	p.waitFor("the JSON error", `document.querySelector("#post-result").textContent.startsWith("data is not JSON")`)

	// An event persisted over Redis by a service arrives too.
	if _, err := cl.Persist(context.Background(), client.Document{PID: "cart-2", Domain: domain, Name: "checked-out", Data: map[string]int{"total": 7}}); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the Redis event in the list", `[...document.querySelectorAll("#events li")].some(li => li.textContent.includes("checked-out"))`)

	// A fetch task shows the domain's rows and completes.
	query := fmt.Sprintf(`{"$select": {"$columns": ["id", "pid", "name"], "$where": {"domain": %q}}}`, domain)
	p.do(fill(`#task [name=query]`, query), click(`#task button[type=submit]`))
	p.waitFor("the task to complete", `document.querySelector("#task-status").textContent === "completed: 2 rows"`)
	cells := eval[[]string](p, `[...document.querySelectorAll("#rows tbody td")].map(td => td.textContent)`)
	if got := strings.Join(cells, " "); !strings.Contains(got, "cart-1 item-added") || !strings.Contains(got, "cart-2 checked-out") {
		t.Errorf("task rows %q", got)
	}

	// Cut the page's stream: another connection takes the session over, an
	// event is persisted while the page is off, and the page resumes after
	// its last message with nothing lost or repeated.
	session := eval[string](p, `client.id`)
	takeOver(t, base, session)
	if _, err := cl.Persist(context.Background(), client.Document{PID: "cart-3", Domain: domain, Name: "while-away", Data: 1}); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the event persisted while the page was cut off", `[...document.querySelectorAll("#events li")].some(li => li.textContent.includes("while-away"))`)
	ids := p.listedIDs()
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("event %s listed twice: %v", id, ids)
		}
		seen[id] = true
	}
	if len(ids) != 3 {
		t.Errorf("listed %v, want 3 events", ids)
	}

	// The server loses its Redis subscriber connection: commit
	// notifications may be lost, the page says so, and events persisted
	// once the server has resubscribed arrive again.
	killSubscriber(t, rdb, cfg.Redis.ClientName)
	p.waitFor("the page to say events may be missing", `document.querySelector("#watching").textContent.includes("may be missing")`)
	waitForSubscriber(t, rdb, cfg.CommitChannel)
	if _, err := cl.Persist(context.Background(), client.Document{PID: "cart-4", Domain: domain, Name: "after-the-hole", Data: 1}); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the event persisted after the hole", `[...document.querySelectorAll("#events li")].some(li => li.textContent.includes("after-the-hole"))`)

	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "gateway-page.png")
	if dir := os.Getenv("SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "gateway-page.png")
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
}

// killSubscriber kills the Redis subscriber connection of the server whose
// connections are named name.
func killSubscriber(t *testing.T, rdb *redis.Client, name string) {
	t.Helper()
	ctx := context.Background()
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(list, "\n") {
		fields := map[string]string{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["name"] == name && fields["sub"] != "" && fields["sub"] != "0" {
			if err := rdb.Do(ctx, "CLIENT", "KILL", "ID", fields["id"]).Err(); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no subscriber connection named %s", name)
}

// waitForSubscriber waits until a connection subscribes channel again.
func waitForSubscriber(t *testing.T, rdb *redis.Client, channel string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := rdb.PubSubNumSub(context.Background(), channel).Result()
		if err == nil && n[channel] > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobody subscribed %s again", channel)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// takeOver opens the session's stream from Go, which ends the page's
// (one stream per session), reads its registered message and hangs up.
func takeOver(t *testing.T, base, session string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sessions/"+session+"/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("take over the stream: %s", res.Status)
	}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var reg struct{ ID string }
			if err := json.Unmarshal([]byte(line), &reg); err == nil && reg.ID == session {
				return
			}
		}
	}
	t.Fatalf("no registered message on the taken-over stream: %v", sc.Err())
}
