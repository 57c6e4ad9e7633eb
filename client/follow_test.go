package client_test

// Follows and durable consumers, end to end on the real server.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/server"
)

// persistNamed persists one event of pid per name.
func persistNamed(tb testing.TB, c *client.Client, pid string, names ...string) {
	tb.Helper()
	docs := make([]client.Document, len(names))
	for i, name := range names {
		docs[i] = client.Document{PID: pid, Domain: "d", Name: name, Data: i}
	}
	if _, err := c.Persist(context.Background(), docs...); err != nil {
		tb.Fatal(err)
	}
}

func eventName(tb testing.TB, row client.Row) string {
	tb.Helper()
	var e event
	if err := row.Decode(&e); err != nil {
		tb.Fatal(err)
	}
	return e.Name
}

// Follow yields the rows that matched, then the matching rows persisted
// meanwhile, in order, and never one that does not match. Breaking out
// publishes "end", after which the server sends nothing and lets go.
func TestFollow(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	s := startServer(t, nil)
	c := s.client(t, rdb)
	persistNamed(t, c, "p", "a0", "a1", "a2")
	persistNamed(t, c, "other", "x")

	for _, window := range []int{0, 3} {
		t.Run(fmt.Sprintf("window %d", window), func(t *testing.T) {
			obs := observe(t, rdb, s.prefix+"resp:")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			want := []string{"a0", "a1", "a2", "b0", "b1", "b2"}
			var got []string
			var err error
			for row, rerr := range c.Follow(ctx, `{"$select":{"$where":{"pid":"p"}}}`, client.WithWindow(window)) {
				if err = rerr; err != nil {
					break
				}
				got = append(got, eventName(t, row))
				if len(got) == 3 {
					// The history is out: what commits now comes live,
					// and only what matches.
					persistNamed(t, c, "other", "y")
					persistNamed(t, c, "p", "b0")
					persistNamed(t, c, "other", "z")
					persistNamed(t, c, "p", "b1", "b2")
				}
				if len(got) == len(want) {
					break
				}
			}
			if err != nil {
				t.Fatalf("follow: %v after %q", err, got)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("rows %q, want %q", got, want)
			}
			channel := channelOf(t, obs)
			waitUnsubscribed(t, rdb, channel)
			heard := append([]string{"(first row)"}, drain(t, rdb, obs, channel)...)
			var sent, accepted, ends int
			for _, p := range heard {
				switch {
				case strings.HasPrefix(p, "{") || p == "(first row)":
					sent++
				case p == `"accepted"`:
					accepted++
				case p == `"end"`:
					ends++
				default:
					t.Errorf("heard %s; want only rows, \"accepted\" and the client's \"end\"", p)
				}
			}
			if ends != 1 {
				t.Errorf("heard %d \"end\", want the client's one: %q", ends, heard)
			}
			if sent > accepted+max(window, 1) {
				t.Errorf("heard %d rows for %d accepted, more than the window: %q", sent, accepted, heard)
			}
			// Nothing more for a matching row persisted now.
			persistNamed(t, c, "p", "after")
			if more := drain(t, rdb, obs, channel); len(more) != 0 {
				t.Errorf("after the end, heard %q", more)
			}
		})
	}
}

// A follow with nothing to send waits: neither the client's timeout, nor
// the server's acceptance timeout, nor its check that the channel still
// has a subscriber ends it. Cancelling its context ends it without an
// error, after "end".
func TestFollowWaits(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	s := startServer(t, func(cfg *server.Config) {
		cfg.AcceptTimeout = 200 * time.Millisecond
		cfg.FollowIdle = 300 * time.Millisecond
	})
	c := s.client(t, rdb, client.WithTimeout(100*time.Millisecond))
	persistNamed(t, c, "p", "a0")
	obs := observe(t, rdb, s.prefix+"resp:")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	var channel string
	for row, err := range c.Follow(ctx, `{"$select":{"$where":{"pid":"p"}}}`) {
		if err != nil {
			t.Fatalf("follow: %v after %q", err, got)
		}
		got = append(got, eventName(t, row))
		switch len(got) {
		case 1:
			// The client subscribes the channel itself, besides its
			// pattern, so that the server counts it.
			channel = channelOf(t, obs)
			waitFor(t, 5*time.Second, func() error {
				n, err := rdb.PubSubNumSub(context.Background(), channel).Result()
				if err == nil && n[channel] != 2 {
					err = fmt.Errorf("%d subscribers of %s, want the server and the client", n[channel], channel)
				}
				return err
			})
			// Long past every timeout, and past several checks of the
			// channel's subscribers.
			time.AfterFunc(1500*time.Millisecond, func() { persistNamed(t, c, "p", "b0") })
		case 2:
			cancel()
		}
	}
	if strings.Join(got, ",") != "a0,b0" {
		t.Fatalf("rows %q, want a0,b0", got)
	}
	waitUnsubscribed(t, rdb, channel)
	heard := drain(t, rdb, obs, channel)
	if n := len(heard); n == 0 || heard[n-1] != `"end"` {
		t.Errorf("heard %q, want the client's \"end\" last", heard)
	}
	for _, p := range heard {
		if p == `"timeout"` || p == `"error"` || strings.HasPrefix(p, `{"error"`) {
			t.Errorf("heard the terminal %s: %q", p, heard)
		}
	}
}

// consume runs a fetch or a follow of consumer name until it has want rows
// (a fetch: until it ends) and returns the names, retrying while the
// consumer is busy: the server releases it shortly after the last fetch.
func consume(tb testing.TB, c *client.Client, follow bool, query string, want int, opts ...client.FetchOption) ([]string, error) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		seq := c.Fetch(ctx, query, opts...)
		if follow {
			seq = c.Follow(ctx, query, opts...)
		}
		var got []string
		var err error
		for row, rerr := range seq {
			if err = rerr; err != nil {
				break
			}
			got = append(got, eventName(tb, row))
			if follow && len(got) == want {
				break
			}
		}
		cancel()
		if errors.Is(err, client.ErrBusy) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		return got, err
	}
}

// A durable consumer resumes after the last row it accepted, through
// fetches and follows alike; the row a loop broke on comes again. Its
// query changes only with a reset.
func TestConsumerResumes(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	s := startServer(t, nil)
	c := s.client(t, rdb)
	const query = `{"$select":{"$where":{"pid":"p"}}}`
	consumer := client.WithConsumer("orders-" + randomHex(4))
	persistNamed(t, c, "p", "0", "1", "2")

	steps := []struct {
		name   string
		before []string // persisted first
		follow bool
		want   []string // a follow stops after these
		query  string
		opts   []client.FetchOption
		err    client.Reason
	}{
		{name: "new consumer: everything", want: []string{"0", "1", "2"}},
		{name: "again: nothing", want: nil},
		{name: "new rows only", before: []string{"3", "4"}, want: []string{"3", "4"}},
		{name: "follow: new rows, breaks on 6", before: []string{"5", "6", "7"}, follow: true, want: []string{"5", "6"}},
		{name: "the row broken on comes again", want: []string{"6", "7"}},
		{name: "follow with a window", before: []string{"8", "9"}, follow: true, want: []string{"8", "9"}, opts: []client.FetchOption{client.WithWindow(4)}},
		{name: "9 again", want: []string{"9"}},
		{name: "another query", query: `{"$select":{"$where":{"pid":"p","name":"1"}}}`, err: client.ReasonBadRequest},
		{name: "another query, reset", query: `{"$select":{"$where":{"pid":"p","name":"1"}}}`, opts: []client.FetchOption{client.WithReset()}, want: []string{"1"}},
		{name: "reset with the same query starts again", query: `{"$select":{"$where":{"pid":"p","name":"1"}}}`, opts: []client.FetchOption{client.WithReset()}, want: []string{"1"}},
	}
	for _, st := range steps {
		if len(st.before) > 0 {
			persistNamed(t, c, "p", st.before...)
		}
		q := st.query
		if q == "" {
			q = query
		}
		got, err := consume(t, c, st.follow, q, len(st.want), append([]client.FetchOption{consumer}, st.opts...)...)
		if st.err != "" {
			var serr *client.ServerError
			if !errors.As(err, &serr) || serr.Reason != st.err {
				t.Fatalf("%s: err = %v, want reason %s", st.name, err, st.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if strings.Join(got, ",") != strings.Join(st.want, ",") {
			t.Fatalf("%s: rows %q, want %q", st.name, got, st.want)
		}
	}
}

// A consumer serves one fetch at a time: another gets ErrBusy, a follow
// as well as a fetch, while the first streams.
func TestConsumerBusy(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	s := startServer(t, nil)
	c := s.client(t, rdb)
	const query = `{"$select":{"$where":{"pid":"p"}}}`
	persistNamed(t, c, "p", "0", "1")
	consumer := client.WithConsumer("busy-" + randomHex(4))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows := 0
	for _, err := range c.Follow(ctx, query, consumer) {
		if err != nil {
			t.Fatal(err)
		}
		rows++
		for _, follow := range []bool{false, true} {
			seq := c.Fetch(ctx, query, consumer)
			if follow {
				seq = c.Follow(ctx, query, consumer)
			}
			got, err := collect(seq)
			if !errors.Is(err, client.ErrBusy) || !errors.Is(err, client.ErrServer) || len(got) != 0 {
				t.Errorf("second fetch (follow %t) of a busy consumer: rows %q, err %v; want none and ErrBusy", follow, got, err)
			}
		}
		break
	}
	if rows != 1 {
		t.Fatalf("%d rows, want 1", rows)
	}
	// Once the first has ended the consumer is free again: row 0, which
	// the loop broke on, comes again.
	got, err := consume(t, c, false, query, 0, consumer)
	if err != nil || strings.Join(got, ",") != "0,1" {
		t.Fatalf("after the busy follow: rows %q, err %v; want 0,1", got, err)
	}
}

// What cannot be followed is refused before any row.
func TestFollowRefused(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	s := startServer(t, nil)
	c := s.client(t, rdb)
	persistNamed(t, c, "p", "0")
	for _, q := range []string{
		`{"$select":{"$where":{"pid":"p"},"$orderBy":{"id":"DESC"}}}`,
		`{"$select":{"$where":{"pid":"p"},"$limit":1}}`,
		`{"$select":{"$columns":[{"n":{"$count":"*"}}]}}`,
	} {
		got, err := collect(c.Follow(context.Background(), q))
		var serr *client.ServerError
		if len(got) != 0 || !errors.As(err, &serr) || serr.Reason != client.ReasonBadRequest {
			t.Errorf("follow %s: rows %q, err %v; want none and bad_request", q, got, err)
		}
	}
}

// What a follow and a consumer put in the request, and what the client
// refuses before sending anything; a follow outlives the client's timeout
// and reads a busy reply as ErrBusy.
func TestFollowRequest(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	p := uniquePrefix(t)
	fake := startFake(t, rdb, p+"fetch")
	// No reasons asked for by the client: follows and consumers ask anyway.
	c := mustClient(t, rdb, client.WithFetchChannel(p+"fetch"), client.WithChannelPrefix(p+"resp:"), client.WithTimeout(50*time.Millisecond))
	const query = `{"$select":{"$where":{"pid":"p"}}}`

	t.Run("fields", func(t *testing.T) {
		tests := []struct {
			name   string
			follow bool
			opts   []client.FetchOption
			want   messages.ReceivedRequest
		}{
			{name: "follow", follow: true, want: messages.ReceivedRequest{Follow: true, Reason: true}},
			{name: "fetch of a consumer", opts: []client.FetchOption{client.WithConsumer("c.1:x-y_z")}, want: messages.ReceivedRequest{Consumer: "c.1:x-y_z", Reason: true}},
			{name: "follow of a consumer, reset", follow: true, opts: []client.FetchOption{client.WithConsumer("c"), client.WithReset(), client.WithWindow(2)},
				want: messages.ReceivedRequest{Follow: true, Consumer: "c", Reset: true, Reason: true, Window: 2}},
			{name: "plain fetch", want: messages.ReceivedRequest{}},
		}
		for _, tt := range tests {
			wait := fake.serve(t, func(s *fakeStream) error { return s.send(`"end"`) })
			seq := c.Fetch(context.Background(), query, tt.opts...)
			if tt.follow {
				seq = c.Follow(context.Background(), query, tt.opts...)
			}
			if _, err := collect(seq); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			got := wait().req
			if got.Follow != tt.want.Follow || got.Consumer != tt.want.Consumer || got.Reset != tt.want.Reset ||
				got.Reason != tt.want.Reason || got.Window != tt.want.Window {
				t.Errorf("%s: request follow=%t consumer=%q reset=%t reason=%t window=%d, want %+v",
					tt.name, got.Follow, got.Consumer, got.Reset, got.Reason, got.Window, tt.want)
			}
		}
	})

	t.Run("refused before sending", func(t *testing.T) {
		for _, opts := range [][]client.FetchOption{
			{client.WithConsumer("")},
			{client.WithConsumer("has space")},
			{client.WithConsumer(strings.Repeat("x", messages.MaxConsumer+1))},
			{client.WithReset()},
		} {
			// Nothing serves a request that went out: the deadline ends
			// it, which a follow takes for the caller's stop.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := collect(c.Follow(ctx, query, opts...))
			cancel()
			if err == nil {
				t.Errorf("follow with %d options: no error", len(opts))
			}
		}
	})

	t.Run("outlives the client timeout", func(t *testing.T) {
		wait := fake.serve(t, func(s *fakeStream) error {
			time.Sleep(300 * time.Millisecond) // six client timeouts
			if err := s.send(`{"id":1}`); err != nil {
				return err
			}
			return s.until(messages.ControlEnd)
		})
		var got []string
		for row, err := range c.Follow(context.Background(), query) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, row.String())
			break
		}
		wait()
		if len(got) != 1 {
			t.Errorf("rows %q, want one", got)
		}
	})

	t.Run("cancel ends it without an error", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		wait := fake.serve(t, func(s *fakeStream) error {
			cancel()
			return s.until(messages.ControlEnd)
		})
		got, err := collect(c.Follow(ctx, query))
		wait()
		if err != nil || len(got) != 0 {
			t.Errorf("rows %q, err %v; want none and no error", got, err)
		}
	})

	t.Run("busy", func(t *testing.T) {
		wait := fake.serve(t, func(s *fakeStream) error {
			return s.send(`{"error":"busy","message":"consumer c is being served"}`)
		})
		_, err := collect(c.Follow(context.Background(), query, client.WithConsumer("c")))
		wait()
		var serr *client.ServerError
		if !errors.Is(err, client.ErrBusy) || !errors.Is(err, messages.ErrBusy) || !errors.Is(err, client.ErrServer) ||
			!errors.As(err, &serr) || serr.Message != "consumer c is being served" {
			t.Errorf("err = %v, want ErrBusy with the message", err)
		}
	})
}
