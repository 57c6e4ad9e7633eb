package client_test

// These tests play the server themselves over real Redis, to drive the
// terminals and misbehaviour a healthy server rarely produces.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/messages"
)

// fakeServer listens on one request channel like the real router does.
type fakeServer struct {
	rdb *redis.Client
	ps  *redis.PubSub
}

// startFake subscribes the request channel and returns once Redis has
// confirmed it, so the client's first request is heard.
func startFake(tb testing.TB, rdb *redis.Client, channel string) *fakeServer {
	tb.Helper()
	ps := rdb.Subscribe(context.Background(), channel)
	tb.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.ReceiveTimeout(context.Background(), 5*time.Second); err != nil {
		tb.Fatalf("fake server: subscribe %s: %v", channel, err)
	}
	return &fakeServer{rdb: rdb, ps: ps}
}

// next waits for the next request and opens its stream.
func (f *fakeServer) next() (*fakeStream, error) {
	msg, err := f.ps.ReceiveTimeout(context.Background(), 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("fake server: wait for request: %w", err)
	}
	m, ok := msg.(*redis.Message)
	if !ok {
		return nil, fmt.Errorf("fake server: got %T, want a request", msg)
	}
	req, err := messages.DecodeRequest([]byte(m.Payload), messages.DefaultRequestLimits())
	if err != nil {
		return nil, fmt.Errorf("fake server: decode request: %w", err)
	}
	s := &fakeStream{req: req, rdb: f.rdb, ps: f.rdb.Subscribe(context.Background(), req.Channel)}
	// Subscribed before the first row, or a fast "accepted" is lost.
	if _, err := s.ps.ReceiveTimeout(context.Background(), 5*time.Second); err != nil {
		_ = s.ps.Close()
		return nil, fmt.Errorf("fake server: subscribe %s: %w", req.Channel, err)
	}
	return s, nil
}

// fakeStream is the server's side of one response channel.
type fakeStream struct {
	req messages.ReceivedRequest
	rdb *redis.Client
	ps  *redis.PubSub
}

func (s *fakeStream) send(payloads ...string) error {
	for _, p := range payloads {
		if err := s.rdb.Publish(context.Background(), s.req.Channel, p).Err(); err != nil {
			return fmt.Errorf("fake server: publish %s: %w", p, err)
		}
	}
	return nil
}

// expect reads what the client says next, skipping the server's own echoes
// as the real server does.
func (s *fakeStream) expect(want messages.Control) error {
	for {
		msg, err := s.ps.ReceiveTimeout(context.Background(), 5*time.Second)
		if err != nil {
			return fmt.Errorf("fake server: wait for control %d: %w", want, err)
		}
		m, ok := msg.(*redis.Message)
		if !ok {
			continue
		}
		switch got := messages.ParseControl([]byte(m.Payload)); got {
		case messages.ControlNone:
			continue
		case want:
			return nil
		default:
			return fmt.Errorf("fake server: got %s, want control %d", m.Payload, want)
		}
	}
}

// until reads what the client says until want, skipping other controls.
func (s *fakeStream) until(want messages.Control) error {
	for {
		msg, err := s.ps.ReceiveTimeout(context.Background(), 5*time.Second)
		if err != nil {
			return fmt.Errorf("fake server: wait for control %d: %w", want, err)
		}
		if m, ok := msg.(*redis.Message); ok && messages.ParseControl([]byte(m.Payload)) == want {
			return nil
		}
	}
}

// rowsThen sends each row and waits for its "accepted", then sends the
// terminal.
func (s *fakeStream) rowsThen(rows []string, terminal string) error {
	for _, row := range rows {
		if err := s.send(row); err != nil {
			return err
		}
		if err := s.expect(messages.ControlAccepted); err != nil {
			return err
		}
	}
	return s.send(terminal)
}

func (s *fakeStream) close() { _ = s.ps.Close() }

// serve runs script on the next stream in a goroutine; the returned
// function waits for it and reports its error.
func (f *fakeServer) serve(tb testing.TB, script func(*fakeStream) error) (wait func() *fakeStream) {
	tb.Helper()
	type result struct {
		s   *fakeStream
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := f.next()
		if err == nil {
			err = script(s)
			s.close()
		}
		done <- result{s, err}
	}()
	return func() *fakeStream {
		tb.Helper()
		r := <-done
		if r.err != nil {
			tb.Fatal(r.err)
		}
		return r.s
	}
}

// collect ranges over a fetch and returns the rows' JSON and the error.
func collect(seq func(func(client.Row, error) bool)) ([]string, error) {
	var rows []string
	for row, err := range seq {
		if err != nil {
			return rows, err
		}
		rows = append(rows, row.String())
	}
	return rows, nil
}

func TestFetchTerminals(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	rows := []string{`{"b":1,"a":"x"}`, `{"b":2,"a":"y"}`}
	tests := []struct {
		name     string
		reason   bool
		rows     []string
		terminal string
		want     []string
		check    func(error) error
	}{
		{name: "end", rows: rows, terminal: `"end"`, want: rows, check: wantNil},
		{name: "no rows", terminal: `"end"`, check: wantNil},
		{name: "timeout", rows: rows[:1], terminal: `"timeout"`, want: rows[:1], check: wantIs(client.ErrTimeout)},
		{name: "error", rows: rows, terminal: `"error"`, want: rows, check: wantServerError("", "")},
		{name: "error with reasons on", reason: true, terminal: `"error"`, check: wantServerError("", "")},
		{name: "reason", reason: true, terminal: `{"error":"bad_request","message":"unknown operator $foo"}`,
			check: wantServerError(client.ReasonBadRequest, "unknown operator $foo")},
		{name: "reason timeout", reason: true, rows: rows[:1], terminal: `{"error":"timeout"}`, want: rows[:1],
			check: all(wantIs(client.ErrTimeout), wantServerError(client.ReasonTimeout, ""))},
		{name: "error-like row without reasons", rows: []string{`{"error":"bad_request"}`}, terminal: `"end"`,
			want: []string{`{"error":"bad_request"}`}, check: wantNil},
		{name: "unknown strings ignored", rows: []string{`"notice"`, rows[0]}, terminal: `"end"`, want: rows[:1], check: wantNil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := uniquePrefix(t)
			srv := startFake(t, rdb, p+"fetch")
			opts := []client.Option{client.WithFetchChannel(p + "fetch"), client.WithChannelPrefix(p)}
			if tt.reason {
				opts = append(opts, client.WithReason())
			}
			c := mustClient(t, rdb, opts...)
			wait := srv.serve(t, func(s *fakeStream) error {
				if s.req.Reason != tt.reason {
					return fmt.Errorf("request reason = %v, want %v", s.req.Reason, tt.reason)
				}
				// A string the server does not send as a row is no row: the
				// client must not accept it, so send it unacknowledged.
				var real []string
				for _, r := range tt.rows {
					if r[0] == '"' {
						if err := s.send(r); err != nil {
							return err
						}
						continue
					}
					real = append(real, r)
				}
				return s.rowsThen(real, tt.terminal)
			})
			got, err := collect(c.Fetch(context.Background(), `{"$select":{}}`))
			wait()
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("rows = %q, want %q", got, tt.want)
			}
			if cerr := tt.check(err); cerr != nil {
				t.Error(cerr)
			}
		})
	}
}

func wantNil(err error) error {
	if err != nil {
		return fmt.Errorf("err = %v, want nil", err)
	}
	return nil
}

func wantIs(target error) func(error) error {
	return func(err error) error {
		if !errors.Is(err, target) {
			return fmt.Errorf("err = %v, want %v", err, target)
		}
		return nil
	}
}

func wantServerError(reason client.Reason, message string) func(error) error {
	return func(err error) error {
		var serr *client.ServerError
		if !errors.As(err, &serr) || !errors.Is(err, client.ErrServer) {
			return fmt.Errorf("err = %v, want a *ServerError matching ErrServer", err)
		}
		if serr.Reason != reason || serr.Message != message {
			return fmt.Errorf("server error = %q %q, want %q %q", serr.Reason, serr.Message, reason, message)
		}
		return nil
	}
}

func all(checks ...func(error) error) func(error) error {
	return func(err error) error {
		for _, check := range checks {
			if cerr := check(err); cerr != nil {
				return cerr
			}
		}
		return nil
	}
}

func TestFetchStops(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	tests := []struct {
		name string
		// body runs for each row with the fetch's cancel; false breaks.
		body  func(i int, cancel context.CancelFunc) bool
		check func(error) error
	}{
		{name: "break", body: func(int, context.CancelFunc) bool { return false }, check: wantNil},
		{name: "cancel in body", body: func(_ int, cancel context.CancelFunc) bool { cancel(); return true },
			check: wantIs(context.Canceled)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := uniquePrefix(t)
			srv := startFake(t, rdb, p+"fetch")
			c := mustClient(t, rdb, client.WithFetchChannel(p+"fetch"), client.WithChannelPrefix(p))
			wait := srv.serve(t, func(s *fakeStream) error {
				if err := s.send(`{"n":1}`); err != nil {
					return err
				}
				// "end", never an "accepted" for the row the caller left.
				return s.expect(messages.ControlEnd)
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var err error
			i := 0
			for _, err = range c.Fetch(ctx, `{"$select":{}}`) {
				if err != nil {
					break
				}
				i++
				if !tt.body(i, cancel) {
					break
				}
			}
			s := wait()
			if cerr := tt.check(err); cerr != nil {
				t.Error(cerr)
			}
			if i != 1 {
				t.Errorf("got %d rows, want 1", i)
			}
			waitUnsubscribed(t, rdb, s.req.Channel)
		})
	}
}

// refuseAccepted breaks the connection that is to publish "accepted" once
// allowed ones have gone out.
func refuseAccepted(allowed int) func(cmd []string) error {
	var n atomic.Int32
	n.Store(int32(allowed))
	return func(cmd []string) error {
		if len(cmd) == 3 && strings.EqualFold(cmd[0], "publish") && cmd[2] == `"accepted"` && n.Add(-1) < 0 {
			return errors.New("connection broke")
		}
		return nil
	}
}

// An "accepted" that fails to go out (it is sent without waiting) ends the
// fetch with that error after the row it was for, instead of a wait for a
// row that never comes; the server is told to stop.
func TestFetchAcceptedNotPublished(t *testing.T) {
	t.Parallel()
	p := uniquePrefix(t)
	srv := startFake(t, mustRedis(t), p+"fetch")
	cliRdb := guarded(&redis.Options{Addr: redisAddr}, refuseAccepted(1))
	t.Cleanup(func() { _ = cliRdb.Close() })
	c := mustClient(t, cliRdb, client.WithFetchChannel(p+"fetch"), client.WithChannelPrefix(p))
	wait := srv.serve(t, func(s *fakeStream) error {
		if err := s.send(`{"n":1}`); err != nil {
			return err
		}
		if err := s.expect(messages.ControlAccepted); err != nil {
			return err
		}
		if err := s.send(`{"n":2}`); err != nil {
			return err
		}
		return s.expect(messages.ControlEnd)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := collect(c.Fetch(ctx, `{"$select":{}}`))
	wait()
	if err == nil || !strings.Contains(err.Error(), "publish accepted") || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the failed accepted", err)
	}
	if fmt.Sprint(got) != `[{"n":1} {"n":2}]` {
		t.Errorf("rows = %v, want the two sent", got)
	}
}

func TestFetchCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	p := uniquePrefix(t)
	srv := startFake(t, rdb, p+"fetch")
	c := mustClient(t, rdb, client.WithFetchChannel(p+"fetch"), client.WithChannelPrefix(p))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := srv.serve(t, func(s *fakeStream) error {
		cancel() // the client waits for a row that never comes
		return s.expect(messages.ControlEnd)
	})
	_, err := collect(c.Fetch(ctx, `{"$select":{}}`))
	s := wait()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	waitUnsubscribed(t, rdb, s.req.Channel)
}

func TestFetchWindow(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	p := uniquePrefix(t)
	srv := startFake(t, rdb, p+"fetch")
	c := mustClient(t, rdb, client.WithFetchChannel(p+"fetch"), client.WithChannelPrefix(p))
	const window = 4
	want := make([]string, 3*window)
	for i := range want {
		want[i] = `{"n":` + strconv.Itoa(i) + `}`
	}
	wait := srv.serve(t, func(s *fakeStream) error {
		if s.req.Window != window || !s.req.Decode {
			return fmt.Errorf("window, decode = %d, %v; want %d, true", s.req.Window, s.req.Decode, window)
		}
		// Keep the window full: one more row per "accepted".
		sent := 0
		for ; sent < window; sent++ {
			if err := s.send(want[sent]); err != nil {
				return err
			}
		}
		for accepted := 0; accepted < len(want); accepted++ {
			if err := s.expect(messages.ControlAccepted); err != nil {
				return err
			}
			if sent < len(want) {
				if err := s.send(want[sent]); err != nil {
					return err
				}
				sent++
			}
		}
		return s.send(`"end"`)
	})
	got, err := collect(c.Fetch(context.Background(), `{"$select":{}}`, client.WithWindow(window), client.WithDecode()))
	wait()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows = %q, want %q", got, want)
	}
}

// A server that ignores the window must not stall the shared reader: the
// call fails with ErrProtocol after the rows it could hold, and a second
// call on the same client goes on unharmed.
func TestFetchOverflow(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	p := uniquePrefix(t)
	srv := startFake(t, rdb, p+"fetch")
	c := mustClient(t, rdb, client.WithFetchChannel(p+"fetch"), client.WithChannelPrefix(p))
	const flood = 50
	markerSeen := make(chan struct{})
	type result struct {
		rows int
		err  error
	}
	flooded := make(chan result, 1)
	go func() {
		var r result
		for _, r.err = range c.Fetch(context.Background(), `{"$select":{}}`) {
			if r.err != nil {
				break
			}
			if r.rows == 0 {
				<-markerSeen
			}
			r.rows++
		}
		flooded <- r
	}()
	first, err := srv.next()
	if err != nil {
		t.Fatal(err)
	}
	defer first.close()
	wait := srv.serve(t, func(second *fakeStream) error {
		for i := range flood {
			if err := first.send(`{"n":` + strconv.Itoa(i) + `}`); err != nil {
				return err
			}
		}
		// The client's one connection delivers in publish order: once the
		// second call has its row, the reader has routed the whole flood.
		if err := second.rowsThen([]string{`{"marker":1}`}, `"end"`); err != nil {
			return err
		}
		// The first call accepts what it holds, then gives up.
		return first.until(messages.ControlEnd)
	})
	rows, err := collect(c.Fetch(context.Background(), `{"$select":{}}`))
	close(markerSeen)
	if err != nil || len(rows) != 1 {
		t.Errorf("second call: rows %q, err %v; want the marker", rows, err)
	}
	r := <-flooded
	wait()
	if !errors.Is(r.err, client.ErrProtocol) {
		t.Errorf("err = %v, want ErrProtocol", r.err)
	}
	if r.rows < 2 || r.rows >= flood {
		t.Errorf("got %d rows before the error, want a few", r.rows)
	}
}

// Both request channels are the test's own: on the default ones a server
// the user runs (make run) would answer, and store the persist.
func TestFetchNoServer(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	p := uniquePrefix(t)
	c := mustClient(t, rdb, client.WithFetchChannel(p+"fetch"), client.WithPersistChannel(p+"persist"), client.WithChannelPrefix(p))
	_, err := collect(c.Fetch(context.Background(), `{"$select":{}}`))
	if !errors.Is(err, client.ErrNoServer) {
		t.Errorf("err = %v, want ErrNoServer", err)
	}
	_, err = c.Persist(context.Background(), client.Document{PID: "p", Domain: "d", Name: "n", Data: 1})
	if !errors.Is(err, client.ErrNoServer) {
		t.Errorf("persist err = %v, want ErrNoServer", err)
	}
}

func TestFetchQueryForms(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	const want = `{"$select":{"$where":{"name":"a<b"}}}`
	type where struct {
		Name string `json:"name"`
	}
	type sel struct {
		Where where `json:"$where"`
	}
	valid := []struct {
		name  string
		query any
	}{
		{"raw message", json.RawMessage(want)},
		{"bytes", []byte(want)},
		{"string", " " + want + "\n"},
		{"struct", struct {
			Select sel `json:"$select"`
		}{sel{where{"a<b"}}}},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := uniquePrefix(t)
			srv := startFake(t, rdb, p+"fetch")
			c := mustClient(t, rdb, client.WithFetchChannel(p+"fetch"), client.WithChannelPrefix(p))
			wait := srv.serve(t, func(s *fakeStream) error {
				if string(s.req.Query.AppendJSON(nil)) != want {
					return fmt.Errorf("query = %s, want %s", s.req.Query.AppendJSON(nil), want)
				}
				return s.send(`"end"`)
			})
			_, err := collect(c.Fetch(context.Background(), tt.query))
			wait()
			if err != nil {
				t.Error(err)
			}
		})
	}
	invalid := []struct {
		name  string
		query any
	}{
		{"nil", nil},
		{"array", `[1]`},
		{"not json", `{"$select":`},
		{"number", 42},
		{"empty", ""},
		{"unmarshalable", make(chan int)},
	}
	c := mustClient(t, rdb)
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := collect(c.Fetch(context.Background(), tt.query))
			if tt.name == "unmarshalable" {
				if err == nil {
					t.Error("err = nil, want an encoding error")
				}
				return
			}
			if !errors.Is(err, client.ErrInvalidQuery) {
				t.Errorf("err = %v, want ErrInvalidQuery", err)
			}
		})
	}
}

func TestFetchConcurrentFake(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	p := uniquePrefix(t)
	srv := startFake(t, rdb, p+"fetch")
	c := mustClient(t, rdb, client.WithFetchChannel(p+"fetch"), client.WithChannelPrefix(p))
	const calls, rowsPerCall = 40, 5
	// Each stream echoes its query's id in every row, so a row routed to
	// the wrong call shows.
	serverErr := make(chan error, 1)
	go func() {
		var wg sync.WaitGroup
		defer func() { wg.Wait(); close(serverErr) }()
		for range calls {
			s, err := srv.next()
			if err != nil {
				serverErr <- err
				return
			}
			wg.Go(func() {
				defer s.close()
				var q struct {
					ID int `json:"id"`
				}
				if err := json.Unmarshal(s.req.Query.AppendJSON(nil), &q); err != nil {
					serverErr <- err
					return
				}
				rows := make([]string, rowsPerCall)
				for i := range rows {
					rows[i] = fmt.Sprintf(`{"id":%d,"n":%d}`, q.ID, i)
				}
				if err := s.rowsThen(rows, `"end"`); err != nil {
					select {
					case serverErr <- err:
					default:
					}
				}
			})
		}
	}()
	var wg sync.WaitGroup
	for id := range calls {
		wg.Go(func() {
			got, err := collect(c.Fetch(context.Background(), fmt.Sprintf(`{"id":%d,"$select":{}}`, id)))
			if err != nil {
				t.Errorf("call %d: %v", id, err)
				return
			}
			for i, row := range got {
				if want := fmt.Sprintf(`{"id":%d,"n":%d}`, id, i); row != want {
					t.Errorf("call %d row %d = %s, want %s", id, i, row, want)
				}
			}
			if len(got) != rowsPerCall {
				t.Errorf("call %d: %d rows, want %d", id, len(got), rowsPerCall)
			}
		})
	}
	wg.Wait()
	if err := <-serverErr; err != nil {
		t.Fatal(err)
	}
}

func TestPersistFake(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	ok := messages.NewOK(2, 7)
	okJSON := ok.Encode()
	dup := messages.NewOK(0, 7)
	dup.Duplicate = true
	dupJSON := dup.Encode()
	tests := []struct {
		name      string
		docs      []client.Document
		wantQuery string
		reply     []string
		check     func(client.Result, error) error
	}{
		{
			name:      "one",
			docs:      []client.Document{{PID: "p1", Domain: "d", Name: "n", Data: json.RawMessage(`{"a":1}`)}},
			wantQuery: `{"$insert":{"$documents":{"pid":"p1","domain":"d","name":"n","data":{"a":1}}}}`,
			reply:     []string{string(okJSON), `"end"`},
			check:     wantResult(ok, okJSON),
		},
		{
			name:      "many",
			docs:      []client.Document{{PID: "p1", Domain: "d", Name: "n", Data: "x"}, {PID: "p2", Domain: "d", Name: "n"}},
			wantQuery: `{"$insert":{"$documents":[{"pid":"p1","domain":"d","name":"n","data":"x"},{"pid":"p2","domain":"d","name":"n","data":null}]}}`,
			reply:     []string{string(okJSON), `"end"`},
			check:     wantResult(ok, okJSON),
		},
		{
			name:      "duplicate",
			docs:      []client.Document{{PID: "p1", Domain: "d", Name: "n", Data: 1, EventID: "e1"}},
			wantQuery: `{"$insert":{"$documents":{"pid":"p1","domain":"d","name":"n","data":1,"eventId":"e1"}}}`,
			reply:     []string{string(dupJSON), `"end"`},
			check:     wantResult(dup, dupJSON),
		},
		{
			name:      "error",
			docs:      []client.Document{{PID: "p1", Domain: "d", Name: "n", Data: 1}},
			wantQuery: `{"$insert":{"$documents":{"pid":"p1","domain":"d","name":"n","data":1}}}`,
			reply:     []string{`"error"`},
			check: func(_ client.Result, err error) error {
				return wantServerError("", "")(err)
			},
		},
		{
			name:      "end without reply",
			docs:      []client.Document{{PID: "p1", Domain: "d", Name: "n", Data: 1}},
			wantQuery: `{"$insert":{"$documents":{"pid":"p1","domain":"d","name":"n","data":1}}}`,
			reply:     []string{`"end"`},
			check: func(_ client.Result, err error) error {
				return wantIs(client.ErrProtocol)(err)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := uniquePrefix(t)
			srv := startFake(t, rdb, p+"persist")
			c := mustClient(t, rdb, client.WithPersistChannel(p+"persist"), client.WithChannelPrefix(p))
			wait := srv.serve(t, func(s *fakeStream) error {
				if string(s.req.Query.AppendJSON(nil)) != tt.wantQuery {
					return fmt.Errorf("query = %s, want %s", s.req.Query.AppendJSON(nil), tt.wantQuery)
				}
				return s.send(tt.reply...)
			})
			got, err := c.Persist(context.Background(), tt.docs...)
			s := wait()
			if cerr := tt.check(got, err); cerr != nil {
				t.Error(cerr)
			}
			waitUnsubscribed(t, rdb, s.req.Channel)
		})
	}
	t.Run("no documents", func(t *testing.T) {
		t.Parallel()
		c := mustClient(t, rdb)
		if _, err := c.Persist(context.Background()); !errors.Is(err, client.ErrNoDocuments) {
			t.Errorf("err = %v, want ErrNoDocuments", err)
		}
	})
}

// wantResult checks a persist's result against the OK reply the server
// sent as raw.
func wantResult(want messages.OK, raw []byte) func(client.Result, error) error {
	return func(got client.Result, err error) error {
		if err != nil {
			return fmt.Errorf("err = %v, want nil", err)
		}
		if got.AffectedRows != want.AffectedRows || got.InsertID != want.InsertID || got.Duplicate != want.Duplicate {
			return fmt.Errorf("result = %+v, want %+v", got, want)
		}
		if string(got.Raw()) != string(raw) {
			return fmt.Errorf("raw reply = %s, want %s", got.Raw(), raw)
		}
		return nil
	}
}

func TestCloseEndsCalls(t *testing.T) {
	rdb := mustRedis(t)
	p := uniquePrefix(t)
	srv := startFake(t, rdb, p+"fetch")
	before := runtime.NumGoroutine()
	c := client.New(rdb, client.WithFetchChannel(p+"fetch"), client.WithPersistChannel(p+"persist"), client.WithChannelPrefix(p))
	wait := srv.serve(t, func(s *fakeStream) error { return nil }) // never answers
	done := make(chan error, 1)
	go func() {
		_, err := collect(c.Fetch(context.Background(), `{"$select":{}}`))
		done <- err
	}()
	wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, client.ErrClosed) {
		t.Errorf("err = %v, want ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, client.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if _, err := collect(c.Fetch(context.Background(), `{"$select":{}}`)); !errors.Is(err, client.ErrClosed) {
		t.Errorf("fetch after Close = %v, want ErrClosed", err)
	}
	waitGoroutines(t, before)
}

// When Redis drops the client's subscriber connection, the calls under way
// fail with ErrInterrupted, since messages may have been lost, and later
// calls work on the redialled connection.
func TestSubscriberInterrupted(t *testing.T) {
	t.Parallel()
	name := "es-test-" + randomHex(6)
	rdb := guarded(&redis.Options{Addr: redisAddr, ClientName: name})
	t.Cleanup(func() { _ = rdb.Close() })
	p := uniquePrefix(t)
	srv := startFake(t, mustRedis(t), p+"fetch")
	c := mustClient(t, rdb, client.WithFetchChannel(p+"fetch"), client.WithChannelPrefix(p))
	wait := srv.serve(t, func(s *fakeStream) error {
		if err := s.send(`{"n":1}`); err != nil {
			return err
		}
		return s.until(messages.ControlEnd)
	})
	var err error
	for _, err = range c.Fetch(context.Background(), `{"$select":{}}`) {
		if err != nil {
			break
		}
		killSubscriber(t, rdb, name)
	}
	wait()
	if !errors.Is(err, client.ErrInterrupted) {
		t.Errorf("err = %v, want ErrInterrupted", err)
	}

	wait = srv.serve(t, func(s *fakeStream) error { return s.rowsThen([]string{`{"n":2}`}, `"end"`) })
	rows, err := collect(c.Fetch(context.Background(), `{"$select":{}}`))
	wait()
	if err != nil || len(rows) != 1 {
		t.Errorf("after the interruption: rows %q, err %v; want one row", rows, err)
	}
}

// killSubscriber kills the pub/sub connection of the clients named name,
// and no one else's.
func killSubscriber(tb testing.TB, rdb *redis.Client, name string) {
	tb.Helper()
	list, err := rdb.ClientList(context.Background()).Result()
	if err != nil {
		tb.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		fields := map[string]string{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			fields[k] = v
		}
		if fields["name"] != name || !strings.Contains(fields["flags"], "P") {
			continue
		}
		if err := rdb.Do(context.Background(), "CLIENT", "KILL", "ID", fields["id"]).Err(); err != nil {
			tb.Fatal(err)
		}
		killed++
	}
	if killed != 1 {
		tb.Fatalf("killed %d subscriber connections named %s, want 1", killed, name)
	}
}

// The client dials connections of its own with rdb's options: closing rdb
// under it stops nothing, and Close still ends its calls.
func TestRedisClientClosedFirst(t *testing.T) {
	t.Parallel()
	rdb := guarded(&redis.Options{Addr: redisAddr})
	p := uniquePrefix(t)
	srv := startFake(t, mustRedis(t), p+"fetch")
	c := client.New(rdb, client.WithFetchChannel(p+"fetch"), client.WithPersistChannel(p+"persist"), client.WithChannelPrefix(p))
	if err := rdb.Close(); err != nil {
		t.Fatal(err)
	}
	wait := srv.serve(t, func(s *fakeStream) error { return s.rowsThen([]string{`{"n":1}`}, `"end"`) })
	rows, err := collect(c.Fetch(context.Background(), `{"$select":{}}`))
	wait()
	if err != nil || len(rows) != 1 {
		t.Errorf("fetch after rdb.Close: rows %q, err %v; want one row", rows, err)
	}
	wait = srv.serve(t, func(s *fakeStream) error { return nil }) // never answers
	done := make(chan error, 1)
	go func() {
		_, err := collect(c.Fetch(context.Background(), `{"$select":{}}`))
		done <- err
	}()
	wait()
	_ = c.Close()
	if err := <-done; !errors.Is(err, client.ErrClosed) {
		t.Errorf("err = %v, want ErrClosed", err)
	}
}

// A go-redis client the client cannot take connection options from (a
// Ring) makes every call fail, naming what New takes.
func TestUnsupportedRedisClient(t *testing.T) {
	t.Parallel()
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"one": redisAddr}})
	t.Cleanup(func() { _ = ring.Close() })
	c := client.New(ring, client.WithFetchChannel(uniquePrefix(t)+"fetch"))
	_, err := collect(c.Fetch(context.Background(), `{"$select":{}}`))
	if !errors.Is(err, client.ErrClosed) || !strings.Contains(err.Error(), "*redis.Ring") {
		t.Errorf("fetch = %v, want ErrClosed naming the Ring", err)
	}
	if err := c.Close(); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Close = %v, want ErrClosed", err)
	}
}
