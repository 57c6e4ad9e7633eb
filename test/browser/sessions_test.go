package browser_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventsource/eventsource/admin"
	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/internal/testserver"
)

// sessionStream opens an HTTP gateway session and its stream, as a
// browser holds them, and returns the session id and the names and data
// of the stream's messages (closed when the stream ends).
func sessionStream(t *testing.T, base string) (string, <-chan [2]string) {
	t.Helper()
	res, err := http.Post(base+"/sessions", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	err = json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	if err != nil || created.ID == "" {
		t.Fatalf("POST /sessions: %d %v", res.StatusCode, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sessions/"+created.ID+"/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		t.Fatalf("open the session's stream: %s", res.Status)
	}
	out := make(chan [2]string, 16)
	go func() {
		defer close(out)
		defer res.Body.Close()
		var event, data string
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "" && event != "":
				out <- [2]string{event, data}
				event, data = "", ""
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return created.ID, out
}

func nextMessage(t *testing.T, msgs <-chan [2]string) ([2]string, bool) {
	t.Helper()
	select {
	case m, ok := <-msgs:
		return m, ok
	case <-time.After(10 * time.Second):
		t.Fatal("no message on the session's stream for 10s")
		return [2]string{}, false
	}
}

// An operator stops an HTTP session from the actors page: its row has a
// stop button, which asks first; the session's stream gets "closed" and
// ends, and the row goes.
func TestActorsPageStopsASession(t *testing.T) {
	_, dbName := testserver.Database(t, "es_browser")
	cfg := testserver.Config(t, dbName, "es-browser-"+testserver.RandomHex(6)+":")
	cfg.Admin = "127.0.0.1:0"
	cfg.HTTP = gateway.DefaultConfig()
	cfg.HTTP.Addr, cfg.HTTP.Anonymous = "127.0.0.1:0", true
	srv := testserver.Start(t, cfg, nil)
	id, msgs := sessionStream(t, "http://"+srv.HTTPAddr().String())
	if m, _ := nextMessage(t, msgs); m[0] != "registered" {
		t.Fatalf("first message %q, want registered", m)
	}
	row := fmt.Sprintf(`tr[data-name="session:%s"]`, id)
	p := browse(t, "http://"+srv.AdminAddr().String()+"/admin/actors", row+` button.stop`)

	// The kind filter offers the kinds GET /actors takes.
	if got := eval[[]string](p, `[...document.querySelectorAll("#kind option")].map(o => o.value).filter(v => v)`); !slices.Equal(got, admin.Kinds) {
		t.Errorf("the kind filter offers %q, want %q", got, admin.Kinds)
	}
	// Only streams and sessions can be stopped.
	if got := eval[[]string](p, `[...document.querySelectorAll("tr:has(button.stop)")].map(tr => tr.dataset.name)`); !slices.Equal(got, []string{"session:" + id}) {
		t.Errorf("stop buttons on %q, want the session's alone", got)
	}

	eval[bool](p, `window.confirm = (q) => { window.asked = q; return true; }, true`)
	p.do(click(row + ` button.stop`))
	m, _ := nextMessage(t, msgs)
	if m[0] != "closed" || !strings.Contains(m[1], "stopped by an operator") {
		t.Fatalf("the session's stream got %q, want closed, stopped by an operator", m)
	}
	if m, ok := nextMessage(t, msgs); ok {
		t.Fatalf("the session's stream goes on after closed: %q", m)
	}
	if asked := eval[string](p, `window.asked`); !strings.Contains(asked, "session:"+id) || !strings.Contains(asked, `"closed"`) {
		t.Errorf("the page asked %q before stopping", asked)
	}
	p.waitFor("the session's row to go", `!document.querySelector(`+fmt.Sprintf("%q", row)+`)`)
}
