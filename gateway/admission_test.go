package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/server"
)

// limitedMetric is the counter of requests that met limit.
func limitedMetric(limit string) string {
	return `eventsource_http_limited_total{limit="` + limit + `"}`
}

// tryStream asks for a stream and returns its status and error code; a
// stream that opens is closed at once, so that a limit that fails to
// refuse fails the test instead of hanging it.
func (h *harness) tryStream(path, token string) (int, string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res := h.send(req)
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK {
		return res.StatusCode, ""
	}
	return res.StatusCode, errorCode(h.t, res.Body)
}

// doCode is do, with the error code of an error answer.
func (h *harness) doCode(method, path, body, token string) (int, string) {
	h.t.Helper()
	status, b := h.do(method, path, body, token)
	if status < 400 {
		return status, ""
	}
	return status, errorCode(h.t, strings.NewReader(string(b)))
}

func errorCode(t *testing.T, r io.Reader) string {
	t.Helper()
	var e struct{ Error, Code string }
	if err := json.NewDecoder(r).Decode(&e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error: %+v %v", e, err)
	}
	return e.Code
}

// slowRequest is a POST /events whose body stalls: the headers and a
// little of a body of 100,000 bytes, then nothing.
type slowRequest struct {
	conn   net.Conn
	rd     *bufio.Reader
	opened time.Time
}

// slowBody starts a slow request, holding its slots once it returns: it
// asks for "100 Continue", which the server sends only once the handler
// reads the body (a 429 instead fails the test), and then stalls in the
// body.
func (h *harness) slowBody(t *testing.T, token string) slowRequest {
	t.Helper()
	r := slowRequest{opened: time.Now()}
	conn, err := net.Dial("tcp", h.srv.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r.conn, r.rd = conn, bufio.NewReader(conn)
	head := "POST /events HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n"
	if token != "" {
		head += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := r.rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 100 ") {
		rest, _ := io.ReadAll(r.rd)
		t.Fatalf("a slow request was not let in: %q %s %v", status, rest, err)
	}
	if blank, err := r.rd.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q %v", blank, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	if _, err := io.WriteString(conn, `[{"pid":"p","domain":"d","name":"n","data":"`+strings.Repeat("x", 1000)); err != nil {
		t.Fatal(err)
	}
	return r
}

// answer reads the response to r within 5 s, and its error code, and
// checks that the server closes the connection after it.
func (r slowRequest) answer(t *testing.T) (int, string) {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(r.rd, nil)
	if err != nil {
		t.Fatalf("no answer to the slow request: %v", err)
	}
	code := errorCode(t, res.Body)
	res.Body.Close()
	if _, err := r.rd.ReadByte(); err == nil || os.IsTimeout(err) {
		t.Fatalf("after the answer to the slow request, the connection is still open (%v)", err)
	}
	return res.StatusCode, code
}

// One subject with its share of streams open is refused the next one;
// other subjects still open theirs up to the streams' share, POST /events
// still gets through on the slots kept for requests, and a bad token is
// refused as such.
func TestSubjectStreamLimit(t *testing.T) {
	t.Parallel()
	secret := []byte("test-secret-" + strings.Repeat("s", 32))
	h := start(t, func(c *server.Config) {
		withAdmin(c)
		c.HTTP.JWTSecret = string(secret)
		// 9 slots and the default shares: 8 for streams (0.9), 2
		// streams a subject (0.25), and 1 kept for requests.
		c.HTTP.MaxConnections = 9
	})
	tok := func(sub string, exp time.Duration) string {
		return token(t, jwt.SigningMethodHS256, secret, sub, []string{"*"}, []string{"*"}, exp)
	}
	alice, bob, carol, dave := tok("alice", time.Hour), tok("bob", time.Hour), tok("carol", time.Hour), tok("dave", time.Hour)
	before := h.scrape()

	var aliceStreams []*sse
	for range 2 {
		aliceStreams = append(aliceStreams, h.open("/events?domain=d&access_token="+alice, nil))
	}
	if status, code := h.tryStream("/events?domain=d", alice); status != http.StatusTooManyRequests || code != "too_many" {
		t.Fatalf("alice's third stream: %d %s, want 429 too_many", status, code)
	}
	// A session's stream counts as one of hers too; making the session
	// is a request, which she may.
	status, b := h.do("POST", "/sessions", "", alice)
	if status != http.StatusCreated {
		t.Fatalf("POST /sessions: %d %s", status, b)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(b, &created)
	if status, code := h.tryStream("/sessions/"+created.ID+"/stream", alice); status != http.StatusTooManyRequests || code != "too_many" {
		t.Fatalf("alice's session stream: %d %s, want 429 too_many", status, code)
	}
	// A stream request with a body is refused, at any limit: a slow body
	// would hold the stream's slot.
	req, _ := http.NewRequest("GET", h.base+"/events?domain=d", strings.NewReader("x"))
	req.Header.Set("Authorization", "Bearer "+bob)
	res := h.send(req)
	if code := errorCode(t, res.Body); res.StatusCode != http.StatusBadRequest || code != "bad_request" {
		t.Fatalf("a stream request with a body: %d %s, want 400 bad_request", res.StatusCode, code)
	}
	res.Body.Close()
	// Authentication comes first: a bad token of hers is refused as bad.
	if status, code := h.tryStream("/events?domain=d", tok("alice", -time.Minute)); status != http.StatusUnauthorized {
		t.Fatalf("alice's expired token: %d %s, want 401", status, code)
	}

	// Others still get streams. Anonymous requests count against their
	// address: all of this test's come from 127.0.0.1.
	h.open("/events?domain=d&access_token="+bob, nil)
	h.open("/events?domain=d&access_token="+bob, nil)
	h.open("/events?domain=d", nil)
	h.open("/events?domain=d", nil)
	if status, code := h.tryStream("/events?domain=d", ""); status != http.StatusTooManyRequests || code != "too_many" {
		t.Fatalf("a third anonymous stream from one address: %d %s, want 429 too_many", status, code)
	}
	h.open("/events?domain=d&access_token="+carol, nil)
	h.open("/events?domain=d&access_token="+carol, nil)
	// 8 streams are open: the streams' share is full, whoever asks.
	if status, code := h.tryStream("/events?domain=d", dave); status != http.StatusTooManyRequests || code != "too_many" {
		t.Fatalf("a ninth stream: %d %s, want 429 too_many", status, code)
	}
	// With every stream slot taken, requests still get through, alice's
	// too: on the slot kept for them.
	if status, code := h.doCode("POST", "/events", orderEvent, alice); status != http.StatusCreated {
		t.Fatalf("POST /events with the stream slots full: %d %s", status, code)
	}
	after := h.scrape()
	for limit, want := range map[string]float64{"subject_streams": 3, "streams": 1, "global": 0, "subject_requests": 0} {
		if got := after[limitedMetric(limit)] - before[limitedMetric(limit)]; got != want {
			t.Errorf("%s changed by %v, want %v", limitedMetric(limit), got, want)
		}
	}

	// A closed stream frees its slot, for its subject.
	aliceStreams[0].close()
	eventually(t, "alice's stream slot to be freed", func() bool {
		status, _ := h.tryStream("/events?domain=d", alice)
		return status == http.StatusOK
	})
}

// Clients that send part of a large body and stall hold every slot until
// the body timeout cuts them off with 408; then a normal client is
// served.
func TestSlowBodiesAreCutOff(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	h := start(t, func(c *server.Config) {
		withAdmin(c)
		c.HTTP.MaxConnections, c.HTTP.ReadBodyTimeout = 4, timeout
		// Only the global cap: the slow clients are all one address.
		c.HTTP.SubjectRequests = 1
	})
	before := h.scrape()
	var slow []slowRequest
	for range 4 {
		slow = append(slow, h.slowBody(t, ""))
	}
	if status, code := h.doCode("GET", "/nosuch", "", ""); status != http.StatusTooManyRequests || code != "too_many" {
		t.Fatalf("a request while the slow ones hold every slot: %d %s, want 429 too_many", status, code)
	}
	for i, r := range slow {
		status, code := r.answer(t)
		if status != http.StatusRequestTimeout || code != "timeout" {
			t.Fatalf("slow client %d: %d %s, want 408 timeout", i, status, code)
		}
		if elapsed := time.Since(r.opened); elapsed < timeout {
			t.Fatalf("slow client %d was cut off after %s, before the body timeout %s", i, elapsed, timeout)
		}
	}
	// Their slots are freed once their handlers return.
	var status int
	var code string
	eventually(t, "a normal client to be served", func() bool {
		status, code = h.doCode("POST", "/events", orderEvent, "")
		return status != http.StatusTooManyRequests
	})
	if status != http.StatusCreated {
		t.Fatalf("a normal client after the slow ones: %d %s", status, code)
	}
	after := h.scrape()
	if got := after[limitedMetric("read_body_timeout")] - before[limitedMetric("read_body_timeout")]; got != 4 {
		t.Errorf("%s changed by %v, want 4", limitedMetric("read_body_timeout"), got)
	}
	if got := after[limitedMetric("global")] - before[limitedMetric("global")]; got < 1 {
		t.Errorf("%s changed by %v, want at least 1", limitedMetric("global"), got)
	}
}

// A client that stalls in its headers holds no slot, and is cut off after
// the header timeout.
func TestSlowHeadersAreCutOff(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	h := start(t, func(c *server.Config) { c.HTTP.MaxConnections, c.HTTP.ReadHeaderTimeout = 1, timeout })
	// The server's timer starts once it accepted, so after this.
	began := time.Now()
	conn, err := net.Dial("tcp", h.srv.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /events HTTP/1.1\r\nHost: gateway\r\n"); err != nil {
		t.Fatal(err)
	}
	if status, code := h.doCode("POST", "/events", orderEvent, ""); status != http.StatusCreated {
		t.Fatalf("a request beside the slow one: %d %s", status, code)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn) // the server closes it, with or without a word
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection with slow headers was still open after 5s")
	}
	if elapsed := time.Since(began); elapsed < timeout {
		t.Fatalf("closed after %s, before the header timeout %s", elapsed, timeout)
	}
}

// One subject with its share of requests in progress is refused the
// next; another subject is served and a bad token is refused as such.
// Anonymous requests and tokens without a subject share their address's
// share.
func TestSubjectRequestLimit(t *testing.T) {
	t.Parallel()
	secret := []byte("test-secret-" + strings.Repeat("r", 32))
	h := start(t, func(c *server.Config) {
		withAdmin(c)
		c.HTTP.JWTSecret = string(secret)
		// 8 slots, 2 requests a subject; the slow bodies never time out
		// here.
		c.HTTP.MaxConnections, c.HTTP.SubjectRequests, c.HTTP.ReadBodyTimeout = 8, 0.25, time.Minute
	})
	tok := func(sub string, exp time.Duration) string {
		return token(t, jwt.SigningMethodHS256, secret, sub, []string{"*"}, []string{"*"}, exp)
	}
	alice, noSub := tok("alice", time.Hour), tok("", time.Hour)
	before := h.scrape()

	for _, tc := range []struct {
		name    string
		holders []string // each holds a request
		refused []string // each is refused then
		other   string   // served all the same
	}{
		{"subject", []string{alice, alice}, []string{alice}, tok("bob", time.Hour)},
		{"address", []string{"", noSub}, []string{"", noSub}, tok("carol", time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var held []slowRequest
			for _, who := range tc.holders {
				held = append(held, h.slowBody(t, who))
			}
			for _, who := range tc.refused {
				if status, code := h.doCode("POST", "/events", orderEvent, who); status != http.StatusTooManyRequests || code != "too_many" {
					t.Fatalf("a third request: %d %s, want 429 too_many", status, code)
				}
			}
			if status, code := h.doCode("POST", "/events", orderEvent, tc.other); status != http.StatusCreated {
				t.Fatalf("another subject: %d %s, want 201", status, code)
			}
			if status, _ := h.doCode("POST", "/events", orderEvent, tok("alice", -time.Minute)); status != http.StatusUnauthorized {
				t.Fatalf("an expired token: %d, want 401", status)
			}
			// A client that goes away frees its slot.
			for _, r := range held {
				r.conn.Close()
			}
			var status int
			var code string
			eventually(t, "the subject's slots to be freed", func() bool {
				status, code = h.doCode("POST", "/events", orderEvent, tc.holders[0])
				return status != http.StatusTooManyRequests
			})
			if status != http.StatusCreated {
				t.Fatalf("after the slow requests left: %d %s", status, code)
			}
		})
	}
	after := h.scrape()
	if got := after[limitedMetric("subject_requests")] - before[limitedMetric("subject_requests")]; got < 3 {
		t.Errorf("%s changed by %v, want at least 3", limitedMetric("subject_requests"), got)
	}
	if got := after[limitedMetric("global")] - before[limitedMetric("global")]; got != 0 {
		t.Errorf("%s changed by %v, want 0", limitedMetric("global"), got)
	}
}

func TestConfigValidatesLimits(t *testing.T) {
	t.Parallel()
	def := gateway.DefaultConfig()
	if def.StreamShare != 0.9 || def.SubjectStreams != 0.25 || def.SubjectRequests != 0.25 ||
		def.ReadHeaderTimeout != 5*time.Second || def.ReadBodyTimeout != 10*time.Second {
		t.Fatalf("defaults: %+v", def)
	}
	for _, tc := range []struct {
		name string
		edit func(*gateway.Config)
		errs []string // each must be in the error; none: valid
	}{
		{"defaults", func(*gateway.Config) {}, nil},
		{"zero: the defaults", func(c *gateway.Config) {
			c.StreamShare, c.SubjectStreams, c.SubjectRequests, c.ReadHeaderTimeout, c.ReadBodyTimeout = 0, 0, 0, 0, 0
		}, nil},
		{"whole shares", func(c *gateway.Config) { c.StreamShare, c.SubjectStreams, c.SubjectRequests = 1, 1, 1 }, nil},
		{"no global cap", func(c *gateway.Config) { c.MaxConnections = 0 }, nil},
		{"stream share above 1", func(c *gateway.Config) { c.StreamShare = 1.5 }, []string{"http stream share must be a share between 0 and 1, got 1.5"}},
		{"subject streams negative", func(c *gateway.Config) { c.SubjectStreams = -0.1 }, []string{"http subject streams must be a share between 0 and 1, got -0.1"}},
		{"subject requests a count", func(c *gateway.Config) { c.SubjectRequests = 50 }, []string{"http subject requests must be a share between 0 and 1, got 50"}},
		{"NaN", func(c *gateway.Config) { c.SubjectStreams = math.NaN() }, []string{"http subject streams must be a share"}},
		{"negative header timeout", func(c *gateway.Config) { c.ReadHeaderTimeout = -time.Second }, []string{"http read header timeout must not be negative, got -1s"}},
		{"negative body timeout", func(c *gateway.Config) { c.ReadBodyTimeout = -time.Second }, []string{"http read body timeout must not be negative, got -1s"}},
		{"all at once", func(c *gateway.Config) {
			c.StreamShare, c.SubjectRequests, c.ReadBodyTimeout = 2, 2, -1
		}, []string{"http stream share", "http subject requests", "http read body timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := gateway.DefaultConfig()
			c.Addr, c.Anonymous = "127.0.0.1:0", true
			tc.edit(&c)
			err := c.Validate()
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want errors %q, got none", tc.errs)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}
