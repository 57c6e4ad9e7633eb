package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/redisbus"
)

// Row is one result row as the server sent it: a JSON object whose keys
// keep the column order of the query. A Row is immutable; do not modify the
// bytes Raw returns.
//
// JSON columns, such as the event table's data, arrive as JSON text in a
// string ("{\"total\":42}"), as the original server sent them, unless the
// fetch asked WithDecode for JSON values ({"total":42}). Row.JSON decodes
// such a column either way.
type Row struct {
	raw json.RawMessage
	// decoded says the fetch asked WithDecode for JSON columns as values.
	decoded bool
}

// Raw returns the row's JSON exactly as received.
func (r Row) Raw() json.RawMessage { return r.raw }

// String returns the row's JSON.
func (r Row) String() string { return string(r.raw) }

// Decode unmarshals the row into v as it was sent. Numbers decoded into an
// interface value become json.Number, so 64-bit ids survive. A JSON column
// fetched without WithDecode is a string: decode it into a string or a
// json.RawMessage field, or leave it out of v and decode it with JSON.
func (r Row) Decode(v any) error {
	if err := decodeJSON(r.raw, v); err != nil {
		return fmt.Errorf("decode row: %w", err)
	}
	return nil
}

// JSON unmarshals the JSON column named column (such as "data") into v,
// whether the fetch asked WithDecode for JSON values or not: without it the
// server sends the column as JSON text in a string, which JSON parses; with
// it, the column is the value itself. So the same code reads a column into
// a map, a slice or a struct either way:
//
//	var data map[string]any
//	err := row.JSON("data", &data)
//
// Numbers decoded into an interface value become json.Number, as with
// Decode. A NULL column decodes as JSON null does (v is left alone, or set
// to nil). JSON fails when the row has no such column, and, without
// WithDecode, when the column is a string that is not JSON text: a column
// that is not a JSON column, which Decode reads.
func (r Row) JSON(column string, v any) error {
	value, err := r.column(column)
	if err != nil {
		return fmt.Errorf("decode column %q: %w", column, err)
	}
	if !r.decoded && len(value) > 0 && value[0] == '"' {
		var text string
		if err := json.Unmarshal(value, &text); err != nil {
			return fmt.Errorf("decode column %q: %w", column, err)
		}
		if !json.Valid([]byte(text)) {
			return fmt.Errorf("decode column %q: the string %.40q is not JSON text", column, text)
		}
		value = json.RawMessage(text)
	}
	if err := decodeJSON(value, v); err != nil {
		return fmt.Errorf("decode column %q: %w", column, err)
	}
	return nil
}

// column returns the value of the row's first column named name.
func (r Row) column(name string) (json.RawMessage, error) {
	fields, err := r.Fields()
	if err != nil {
		return nil, err
	}
	for _, f := range fields {
		if f.Name == name {
			return f.Value, nil
		}
	}
	return nil, errors.New("no such column in the row")
}

// decodeJSON unmarshals b into v, numbers into an interface value as
// json.Number.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
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
	window   int
	decode   bool
	consumer string
	named    bool // WithConsumer was given, maybe with an empty name
	reset    bool
	follow   bool
}

// WithWindow lets the server have n rows in flight instead of one, which
// hides the round trip of each "accepted". The client still accepts each row
// only once the loop body is done with it (and does not wait for Redis to
// take the "accepted" before yielding the next row). The server caps n (1024 by
// default) and answers "error" above its cap.
func WithWindow(n int) FetchOption { return func(f *fetchConfig) { f.window = n } }

// WithDecode asks for JSON columns (such as data) as JSON values instead of
// the original's JSON text in a string. Row.JSON reads a JSON column
// either way; WithDecode matters to code that reads the row's JSON itself
// (Decode, Raw, Fields).
func WithDecode() FetchOption { return func(f *fetchConfig) { f.decode = true } }

// WithConsumer makes the fetch that of the durable consumer name (1 to 200
// letters, digits and ._:-): it starts after the last row the consumer
// accepted, as the server recorded it, and the server records each row
// accepted from now on (a new consumer starts at the beginning). A row is
// accepted when the loop body asks for the next one, so the row the loop
// breaks on, and rows in the window not yet yielded, come again to the
// consumer's next fetch: delivery is at least once. A consumer serves one
// fetch at a time: another fetch for it while it streams fails with
// ErrBusy, as does a fetch that follows too soon on one just ended, until
// the server has released it. A known consumer's query cannot change
// without WithReset (otherwise ErrServer with reason bad_request). A fetch
// with a consumer always asks the server for reasons.
func WithConsumer(name string) FetchOption {
	return func(f *fetchConfig) { f.consumer, f.named = name, true }
}

// WithReset, with WithConsumer, starts the consumer again at the
// beginning of this query, whatever query and position it had.
func WithReset() FetchOption { return func(f *fetchConfig) { f.reset = true } }

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

// Follow is Fetch that does not end with the rows that matched when the
// server got the query: it goes on yielding each new matching row, as it
// commits, in id order and exactly once. It runs until ctx is done or the
// loop breaks, and then publishes "end" so that the server stops; ctx
// ending is how a follow is meant to stop, so it ends the sequence without
// an error. The client's WithTimeout does not apply: a follow waits for
// new rows as long as ctx lets it.
//
// Only a $select of one table with $columns and $where (and $orderBy of its
// id ascending, if any) can be followed; the server refuses any other with
// a *ServerError of reason bad_request. The options are Fetch's; with
// WithConsumer a follow resumes where the consumer left off. A follow
// always asks the server for reasons.
//
// An error ends the sequence as its last element, as Fetch's do; the
// server never ends a follow with "end" by itself, but if it does the
// sequence ends without an error.
func (c *Client) Follow(ctx context.Context, query any, opts ...FetchOption) iter.Seq2[Row, error] {
	var fc fetchConfig
	for _, opt := range opts {
		opt(&fc)
	}
	fc.follow = true
	return func(yield func(Row, error) bool) {
		stopped, err := c.fetch(ctx, query, fc, yield)
		if err == nil || stopped {
			return
		}
		if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
			return // the caller's way to stop
		}
		yield(Row{}, err)
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
	if fc.named && !messages.ValidConsumer(fc.consumer) {
		return false, fmt.Errorf("fetch: consumer %q is not 1 to %d letters, digits and ._:-", fc.consumer, messages.MaxConsumer)
	}
	if fc.reset && fc.consumer == "" {
		return false, errors.New("fetch: WithReset needs WithConsumer")
	}
	var cancel context.CancelFunc
	if fc.follow {
		// A follow may wait for new rows for ever: the client's default
		// timeout would cut it off.
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = c.withTimeout(ctx)
	}
	defer cancel()
	// Follows and consumers ask for reasons, so that ErrBusy and the
	// refusal of a query that cannot be followed can be told apart.
	reason := c.cfg.reason || fc.follow || fc.consumer != ""
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
	if fc.follow {
		if err := c.subscribeChannel(ctx, cl); err != nil {
			serverEnded = true // nothing was asked yet
			return false, fmt.Errorf("follow: %w", err)
		}
	}
	acceptDone := func(_ int64, err error) {
		if err != nil {
			c.mu.Lock()
			cl.fail(fmt.Errorf("publish accepted: %w", busError(err)))
			c.mu.Unlock()
		}
	}
	req := messages.Request{Channel: cl.channel, Query: q, Reason: reason, Decode: fc.decode, Window: fc.window,
		Follow: fc.follow, Consumer: fc.consumer, Reset: fc.reset}
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
		k, serr := classify(payload, reason)
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
		if !yield(Row{raw: payload, decoded: fc.decode}, nil) {
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
		if err := c.publish(ctx, cl.channel, messages.AcceptedJSON, acceptDone); err != nil {
			return false, fmt.Errorf("fetch %s: publish accepted: %w", cl.channel, err)
		}
	}
}

// abort publishes "end" on a response channel, bounded even when ctx is
// done. It is best effort: without it the server times out on its own.
func (c *Client) abort(ctx context.Context, channel string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
	defer cancel()
	sent := make(chan struct{})
	// Sent as a command rather than a PUBLISH of the publisher's: after a
	// failed "accepted" of the channel, the publisher drops the channel's
	// later PUBLISHes (redisbus.ErrAfterFailure), and "end" must still go.
	end := []string{"PUBLISH", channel, string(messages.EndJSON)}
	if redisbus.WhenRoom(ctx, func() error { return c.pub.Do(channel, end, func(bool, error) { close(sent) }) }) != nil {
		return
	}
	select {
	case <-sent:
	case <-ctx.Done():
	}
}
