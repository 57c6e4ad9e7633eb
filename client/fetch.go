package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"github.com/eventsource/eventsource/messages"
)

// Row is one result row as the server sent it: a JSON object whose keys
// keep the column order of the query. A Row is immutable; do not modify the
// bytes Raw returns.
type Row struct {
	raw json.RawMessage
}

// Raw returns the row's JSON exactly as received.
func (r Row) Raw() json.RawMessage { return r.raw }

// String returns the row's JSON.
func (r Row) String() string { return string(r.raw) }

// Decode unmarshals the row into v. Numbers decoded into an interface value
// become json.Number, so 64-bit ids survive.
func (r Row) Decode(v any) error {
	dec := json.NewDecoder(bytes.NewReader(r.raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode row: %w", err)
	}
	return nil
}

// Field is one column of a row.
type Field struct {
	Name  string
	Value json.RawMessage
}

// Fields returns the row's columns in the order the server sent them, which
// a map would lose.
func (r Row) Fields() ([]Field, error) {
	dec := json.NewDecoder(bytes.NewReader(r.raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("row fields: row is not a JSON object")
	}
	var fields []Field
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("row fields: %w", err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, fmt.Errorf("row fields: column %v: %w", tok, err)
		}
		fields = append(fields, Field{Name: tok.(string), Value: value})
	}
	return fields, nil
}

// FetchOption configures one Fetch.
type FetchOption func(*fetchConfig)

type fetchConfig struct {
	window int
	decode bool
}

// WithWindow lets the server have n rows in flight instead of one, which
// hides the round trip of each "accepted". The client still accepts each row
// only once the loop body is done with it (and does not wait for Redis to
// take the "accepted" before yielding the next row). The server caps n (1024 by
// default) and answers "error" above its cap.
func WithWindow(n int) FetchOption { return func(f *fetchConfig) { f.window = n } }

// WithDecode asks for JSON columns (such as data) as JSON values instead of
// the original's JSON text in a string.
func WithDecode() FetchOption { return func(f *fetchConfig) { f.decode = true } }

// Fetch runs a $select query and yields its rows in order. The query is a
// JSON object given as json.RawMessage, []byte or string, or any value that
// encoding/json turns into one, such as
//
//	{"$select": {"$where": {"domain": "user"}}}
//
// Nothing is sent until the sequence is ranged over, and each range runs the
// query anew. The row yielded last is accepted when the loop body asks for
// the next, so the server never runs ahead of the caller by more than the
// window. Breaking out of the loop, or ctx ending, publishes "end" so that
// the server stops.
//
// An error ends the sequence as its last element, with a zero Row: it
// matches ErrTimeout when the server gave up waiting for "accepted",
// ErrServer (as a *ServerError) when the server failed, ErrNoServer,
// ErrClosed, ErrInterrupted, ErrProtocol, ErrInvalidQuery, or ctx's error.
func (c *Client) Fetch(ctx context.Context, query any, opts ...FetchOption) iter.Seq2[Row, error] {
	var fc fetchConfig
	for _, opt := range opts {
		opt(&fc)
	}
	return func(yield func(Row, error) bool) {
		stopped, err := c.fetch(ctx, query, fc, yield)
		if err != nil && !stopped {
			yield(Row{}, err)
		}
	}
}

// fetch runs one fetch. stopped reports that yield returned false, after
// which it must not be called again.
func (c *Client) fetch(ctx context.Context, query any, fc fetchConfig, yield func(Row, error) bool) (stopped bool, err error) {
	q, err := encodeQuery(query)
	if err != nil {
		return false, fmt.Errorf("fetch: %w", err)
	}
	if fc.window < 0 {
		return false, fmt.Errorf("fetch: window %d is negative", fc.window)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	cl, err := c.begin(ctx, max(fc.window, 1)+inboxSlack)
	if err != nil {
		return false, fmt.Errorf("fetch: %w", err)
	}
	// Tell the server to stop unless it ended the stream itself.
	serverEnded := false
	defer func() {
		if !serverEnded {
			c.abort(ctx, cl.channel)
		}
		c.finish(cl)
	}()
	acceptFailed := func(err error) {
		c.mu.Lock()
		cl.fail(fmt.Errorf("publish accepted: %w", err))
		c.mu.Unlock()
	}
	req := messages.Request{Channel: cl.channel, Query: q, Reason: c.cfg.reason, Decode: fc.decode, Window: fc.window}
	if err := c.request(ctx, c.cfg.fetchChannel, req); err != nil {
		// With no server there is nobody to tell; after any other failure
		// the request may still have gone out.
		serverEnded = errors.Is(err, ErrNoServer)
		return false, fmt.Errorf("fetch %s: %w", cl.channel, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("fetch %s: %w", cl.channel, err)
		}
		payload, err := c.receive(ctx, cl)
		if err != nil {
			return false, fmt.Errorf("fetch %s: wait for row: %w", cl.channel, err)
		}
		k, serr := classify(payload, c.cfg.reason)
		switch k {
		case kindIgnore:
			continue
		case kindEnd:
			serverEnded = true
			return false, nil
		case kindTimeout:
			serverEnded = true
			return false, fmt.Errorf("fetch %s: %w", cl.channel, ErrTimeout)
		case kindError:
			serverEnded = true
			return false, fmt.Errorf("fetch %s: %w", cl.channel, serr)
		}
		if !yield(Row{raw: json.RawMessage(payload)}, nil) {
			return true, nil
		}
		// The body is done with the row: take the next one unless the
		// caller gave up meanwhile.
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("fetch %s: %w", cl.channel, err)
		}
		// Not waiting for Redis's answer: the next row comes no sooner than
		// the server hears this, and a failure breaks the call, which the
		// next receive reports.
		if err := c.pub.publishAsync(ctx, cl.channel, messages.AcceptedJSON, acceptFailed); err != nil {
			return false, fmt.Errorf("fetch %s: publish accepted: %w", cl.channel, err)
		}
	}
}

// abort publishes "end" on a response channel, bounded even when ctx is
// done. It is best effort: without it the server times out on its own.
func (c *Client) abort(ctx context.Context, channel string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
	defer cancel()
	_, _ = c.pub.publish(ctx, channel, messages.EndJSON)
}
