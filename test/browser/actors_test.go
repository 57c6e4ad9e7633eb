// Package browser_test opens the operators' page /admin/actors in headless
// Chromium (Debian's chromium package) against a real server, and checks
// what a person would see: the streams listed with their states.
package browser_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/admin"
	"github.com/eventsource/eventsource/internal/testserver"
	"github.com/eventsource/eventsource/replicas"
	"github.com/eventsource/eventsource/server"
	"github.com/eventsource/eventsource/supervision"
)

// chromium returns the browser to run, or skips the test without one;
// under CI (the CI variable set) a missing browser fails instead, so a
// broken install cannot pass as a skip. 'make test' installs it
// (browser-deps).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	const why = "no chromium on PATH or at /usr/bin/chromium (install it with 'make browser-deps' or 'apt-get install chromium'; CHROMIUM names another)"
	if os.Getenv("CI") != "" {
		t.Fatal(why + ", and CI is set: the browser test must run")
	}
	t.Skip(why)
	return ""
}

// headless runs chromium once on url with extra arguments and returns its
// standard output. Each run has a profile of its own and talks to nothing
// but url.
func headless(t *testing.T, browser, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=3000",
	}, extra...)
	cmd := exec.CommandContext(ctx, browser, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\nstderr:\n%s", strings.Join(extra, " "), err, stderr.String())
	}
	return stdout.String()
}

// row is one actor as the page shows it.
type row struct {
	name, class, kind, state string
	text                     string // the name cell: the tree's glyphs and the name
}

var (
	rowRE   = regexp.MustCompile(`(?s)<tr class="([^"]*)" data-name="([^"]*)">(.*?)</tr>`)
	cellRE  = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	stateRE = regexp.MustCompile(`<span class="state state-([^"]*)">([^<]*)</span>`)
)

// rows reads the actor table out of the page's DOM.
func rows(t *testing.T, dom string) []row {
	t.Helper()
	var out []row
	for _, m := range rowRE.FindAllStringSubmatch(dom, -1) {
		cells := cellRE.FindAllStringSubmatch(m[3], -1)
		if len(cells) < 3 {
			t.Fatalf("a row of the table has %d cells: %s", len(cells), m[0])
		}
		r := row{class: m[1], name: html.UnescapeString(m[2]), text: html.UnescapeString(cells[0][1]), kind: html.UnescapeString(cells[1][1])}
		if s := stateRE.FindStringSubmatch(cells[2][1]); s != nil && s[1] == s[2] {
			r.state = s[2]
		}
		out = append(out, r)
	}
	return out
}

// startServer runs a real server with an admin listener on a fresh
// database holding two events for pid, with streams that wait long for
// "accepted".
func startServer(t *testing.T, pid string) (srv *server.Server, cfg server.Config) {
	t.Helper()
	db, dbName := testserver.Database(t, "es_browser")
	if _, err := db.Exec("INSERT INTO `"+dbName+"`.event (pid, domain, name, data) VALUES (?, 'shop', 'created', '{}'), (?, 'shop', 'paid', '{}')", pid, pid); err != nil {
		t.Fatal(err)
	}
	cfg = testserver.Config(t, dbName, "es-browser-"+testserver.RandomHex(6)+":")
	cfg.AcceptTimeout = 5 * time.Minute
	cfg.Admin = "127.0.0.1:0"
	return testserver.Start(t, cfg, nil), cfg
}

// openStreams sends fetches of pid's two events on n fresh channels and
// waits for each first row: the streams then wait for "accepted".
func openStreams(t *testing.T, rdb *redis.Client, fetchChannel, prefix, pid string, n int) []string {
	t.Helper()
	ctx := context.Background()
	channels := make([]string, n)
	for i := range channels {
		channels[i] = fmt.Sprintf("%sorders-%d-%s", prefix, i, testserver.RandomHex(2))
	}
	ps := rdb.Subscribe(ctx, channels...)
	t.Cleanup(func() { ps.Close() })
	for range channels {
		if _, err := ps.Receive(ctx); err != nil { // subscription confirmations
			t.Fatal(err)
		}
	}
	msgs := ps.Channel()
	for _, ch := range channels {
		req := fmt.Sprintf(`{"channel":%q,"query":{"$select":{"$columns":["name"],"$where":{"pid":%q}}}}`, ch, pid)
		if err := rdb.Publish(ctx, fetchChannel, req).Err(); err != nil {
			t.Fatal(err)
		}
	}
	first := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for len(first) < n {
		select {
		case m := <-msgs:
			if m.Payload != `{"name":"created"}` {
				t.Fatalf("%s: got %s, want the first row", m.Channel, m.Payload)
			}
			first[m.Channel] = true
		case <-deadline:
			t.Fatalf("first rows on %d of %d channels", len(first), n)
		}
	}
	return channels
}

func TestActorsPageListsRunningStreams(t *testing.T) {
	browser := chromium(t)
	pid := "order-" + testserver.RandomHex(4)
	srv, cfg := startServer(t, pid)
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr(), Password: cfg.Redis.Password, DB: cfg.Redis.DB})
	t.Cleanup(func() { rdb.Close() })
	channels := openStreams(t, rdb, cfg.FetchChannel, strings.TrimSuffix(cfg.FetchChannel, "fetch"), pid, 3)
	// The registry reports "waiting" when the row goes out, which is
	// before the client hears it; check the server agrees before looking.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, n := srv.Actors(supervision.Filter{Kind: "stream", State: "waiting"}, 0, 0); n == len(channels) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the streams are not all waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}

	page := "http://" + srv.AdminAddr().String() + "/admin/actors"
	dom := headless(t, browser, page, "--dump-dom")
	got := rows(t, dom)
	want := []row{{name: "router", text: "router", class: "root", kind: "router", state: "running"}}
	for i, ch := range channels { // already in name order
		branch := "├─ "
		if i == len(channels)-1 {
			branch = "└─ "
		}
		want = append(want, row{name: "stream:" + ch, text: branch + "stream:" + ch, class: "child", kind: "stream", state: "waiting"})
	}
	if !slices.Equal(got, want) {
		t.Errorf("the page lists\n%v\nwant\n%v", got, want)
	}
	if !strings.Contains(dom, `<span id="status">4 actors · `) {
		t.Errorf("the status line does not say 4 actors")
	}
	if !strings.Contains(dom, `<small id="server">of server `+srv.ServerID()+`</small>`) {
		t.Errorf("the page does not name the server %s", srv.ServerID())
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	// A screenshot, to see that the page renders: a PNG of the window's
	// size that is not blank.
	shot := filepath.Join(t.TempDir(), "page.png")
	headless(t, browser, page, "--screenshot="+shot, "--window-size=1200,600")
	checkScreenshot(t, shot, 1200, 600)
	if dst := os.Getenv("EVENTSOURCE_SCREENSHOT"); dst != "" {
		b, err := os.ReadFile(shot)
		if err == nil {
			err = os.WriteFile(dst, b, 0o644)
		}
		if err != nil {
			t.Errorf("keep the screenshot: %v", err)
		}
	}

	// When the streams end, the page no longer lists them.
	for _, ch := range channels {
		if err := rdb.Publish(context.Background(), ch, `"end"`).Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, n := srv.Actors(supervision.Filter{Kind: "stream"}, 0, 0); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the streams did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := rows(t, headless(t, browser, page, "--dump-dom")); !slices.Equal(got, want[:1]) {
		t.Errorf("after the streams ended the page lists %v, want the router alone", got)
	}
}

// checkScreenshot decodes a PNG and requires its size and some variety of
// colour (text on a background, not an empty page).
func checkScreenshot(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b != image.Rect(0, 0, w, h) {
		t.Errorf("screenshot is %v, want %dx%d", b, w, h)
	}
	colours := map[[3]uint32]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 3 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
		}
	}
	if len(colours) < 8 {
		t.Errorf("screenshot has %d colours: the page looks blank", len(colours))
	}
}

// TestActorsPageWantsTheToken: behind a token the page itself is refused
// without it (a browser asks for it as Basic credentials), and shows the
// tree when opened with it.
func TestActorsPageWantsTheToken(t *testing.T) {
	browser := chromium(t)
	reg := supervision.NewRegistry()
	reg.Add("router", "", "router", "", "running")
	ts := httptest.NewServer(admin.Handler(tokenBackend{reg}, nil, "s3cret", slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(ts.Close)
	res, err := http.Get(ts.URL + "/admin/actors")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("page without the token: %d %q, want 401 asking for Basic credentials", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	dom := headless(t, browser, ts.URL+"/admin/actors", "--dump-dom")
	if got := rows(t, dom); len(got) != 0 || strings.Contains(dom, "actor tree") {
		t.Errorf("the page shows itself without the token:\n%s", dom)
	}
	dom = headless(t, browser, ts.URL+"/admin/actors?access_token=s3cret", "--dump-dom")
	if got := rows(t, dom); len(got) != 1 || got[0].name != "router" {
		t.Errorf("with the token the page lists %v, want the router:\n%s", got, dom)
	}
}

type tokenBackend struct{ reg *supervision.Registry }

func (b tokenBackend) Actors(f supervision.Filter, offset, limit int) ([]supervision.Entry, int) {
	return b.reg.List(f, offset, limit)
}
func (b tokenBackend) StopActor(context.Context, string) (bool, error)    { return false, nil }
func (b tokenBackend) Ready(context.Context) error                        { return nil }
func (tokenBackend) ServerID() string                                     { return "test" }
func (tokenBackend) Replicas(context.Context) ([]replicas.Replica, error) { return nil, nil }
