package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/messages"
)

// docsWithIDs are n documents of one stream, each with an event id.
func docsWithIDs(pid string, n int) []client.Document {
	docs := make([]client.Document, n)
	for i := range docs {
		docs[i] = client.Document{PID: pid, Domain: "safe", Name: fmt.Sprint("e", i), Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), EventID: fmt.Sprintf("%s-%d", pid, i)}
	}
	return docs
}

// wantConflict checks that err is a conflict the server explained.
func wantConflict(t *testing.T, err error, message string) {
	t.Helper()
	var serr *client.ServerError
	if !errors.Is(err, client.ErrConflict) || !errors.Is(err, messages.ErrConflict) || !errors.Is(err, client.ErrServer) || !errors.As(err, &serr) {
		t.Fatalf("err = %v, want ErrConflict as a *ServerError", err)
	}
	if serr.Reason != client.ReasonConflict || !strings.Contains(serr.Message, message) {
		t.Errorf("server error = %q %q, want conflict saying %q", serr.Reason, serr.Message, message)
	}
}

func TestSafeWrites(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	s := startServer(t, nil)
	// Without WithReason: a persist asks for reasons all the same.
	c := s.client(t, rdb)
	ctx := context.Background()

	t.Run("retry with event ids", func(t *testing.T) {
		t.Parallel()
		docs := docsWithIDs("retry", 3)
		first, err := c.Persist(ctx, docs...)
		if err != nil {
			t.Fatal(err)
		}
		if first.AffectedRows != 3 || first.InsertID == 0 || first.Duplicate {
			t.Fatalf("first = %+v, want 3 rows, an insert id and no duplicate", first)
		}
		again, err := c.Persist(ctx, docs...)
		if err != nil {
			t.Fatal(err)
		}
		if again.AffectedRows != 0 || again.InsertID != first.InsertID || !again.Duplicate {
			t.Errorf("retry = %+v, want 0 rows, insert id %d and duplicate", again, first.InsertID)
		}
		// One document alone, sent as an object, is a retry too.
		one, err := c.Persist(ctx, docs[1])
		if err != nil || one.AffectedRows != 0 || one.InsertID != first.InsertID+1 || !one.Duplicate {
			t.Errorf("retry of the second = %+v, %v; want 0 rows, insert id %d and duplicate", one, err, first.InsertID+1)
		}
		// Partly stored: only the new one is stored, and it is no duplicate.
		more, err := c.Persist(ctx, append(docs[:3:3], docsWithIDs("retry-more", 1)...)...)
		if err != nil || more.AffectedRows != 1 || more.Duplicate {
			t.Errorf("partial retry = %+v, %v; want 1 row and no duplicate", more, err)
		}
		if events := fetchEvents(t, c, `{"$select":{"$where":{"pid":"retry"}}}`); len(events) != 3 {
			t.Errorf("%d events stored, want 3", len(events))
		}
	})

	t.Run("event id with other content", func(t *testing.T) {
		t.Parallel()
		doc := docsWithIDs("other", 1)[0]
		if _, err := c.Persist(ctx, doc); err != nil {
			t.Fatal(err)
		}
		doc.Data = json.RawMessage(`{"n":"changed"}`)
		_, err := c.Persist(ctx, doc)
		wantConflict(t, err, doc.EventID)
	})

	t.Run("expectation", func(t *testing.T) {
		t.Parallel()
		stream := client.Expectation{Domain: "safe", PID: "expect"}
		docs := docsWithIDs("expect", 3)
		ok, err := c.PersistExpecting(ctx, stream, docs[:2]...)
		if err != nil || ok.AffectedRows != 2 || ok.Duplicate {
			t.Fatalf("at version 0: %+v, %v; want 2 rows", ok, err)
		}
		// Stale: the stream is at 2.
		_, err = c.PersistExpecting(ctx, stream, docs[2])
		wantConflict(t, err, "version 2")
		// A full retry with its old expectation is a duplicate, not a
		// conflict.
		retry, err := c.PersistExpecting(ctx, stream, docs[:2]...)
		if err != nil || retry.AffectedRows != 0 || retry.InsertID != ok.InsertID || !retry.Duplicate {
			t.Errorf("retry at version 0 = %+v, %v; want 0 rows, insert id %d and duplicate", retry, err, ok.InsertID)
		}
		stream.Version = 2
		if next, err := c.PersistExpecting(ctx, stream, docs[2]); err != nil || next.AffectedRows != 1 {
			t.Errorf("at version 2: %+v, %v; want 1 row", next, err)
		}
		// The query form takes the expectation as an option.
		stream.Version = 1
		q := `{"$insert":{"$documents":{"pid":"expect","domain":"safe","name":"late","data":1}}}`
		_, err = c.PersistQuery(ctx, q, client.WithExpectation(stream))
		wantConflict(t, err, "version 3")
		stream.Version = 3
		if _, err := c.PersistQuery(ctx, q, client.WithExpectation(stream)); err != nil {
			t.Errorf("query at version 3: %v", err)
		}
	})

	t.Run("expectation of another stream", func(t *testing.T) {
		t.Parallel()
		_, err := c.PersistExpecting(ctx, client.Expectation{Domain: "safe", PID: "elsewhere"}, docsWithIDs("mine", 1)...)
		var serr *client.ServerError
		if !errors.As(err, &serr) || serr.Reason != client.ReasonBadRequest || errors.Is(err, client.ErrConflict) {
			t.Errorf("err = %v, want a bad_request *ServerError", err)
		}
	})
}

// The request carries the expectation and always asks for reasons; a
// conflict without a message still matches ErrConflict.
func TestPersistExpectingFake(t *testing.T) {
	t.Parallel()
	rdb := mustRedis(t)
	p := uniquePrefix(t)
	srv := startFake(t, rdb, p+"persist")
	c := mustClient(t, rdb, client.WithPersistChannel(p+"persist"), client.WithChannelPrefix(p))
	want := client.Expectation{Domain: "d", PID: "p1", Version: 7}
	wait := srv.serve(t, func(s *fakeStream) error {
		if !s.req.Reason {
			return errors.New("the request does not ask for reasons")
		}
		if s.req.Expect == nil || *s.req.Expect != messages.Expectation(want) {
			return fmt.Errorf("expect = %+v, want %+v", s.req.Expect, want)
		}
		return s.send(`{"error":"conflict"}`)
	})
	_, err := c.PersistExpecting(context.Background(), want, client.Document{PID: "p1", Domain: "d", Name: "n", Data: 1, EventID: "e1"})
	wait()
	if !errors.Is(err, client.ErrConflict) {
		t.Errorf("err = %v, want ErrConflict", err)
	}
}
