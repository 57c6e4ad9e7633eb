package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/eventsource/eventsource/messages"
)

// Document is one event to persist. Data is marshalled with encoding/json
// and stored in the JSON column; a json.RawMessage goes as it is (a []byte
// would become a base64 string). A Go string becomes a JSON string, which
// the server takes for JSON text, as the original clients sent data.
type Document struct {
	PID    string `json:"pid"`
	Domain string `json:"domain"`
	Name   string `json:"name"`
	Data   any    `json:"data"`
	// EventID, when set (1 to 64 printable ASCII characters, compared
	// exactly), makes the event safe to send again: the server stores an
	// event id once. A retry whose every event id is stored with the same
	// content stores nothing and gets the first reply's InsertID with
	// Duplicate set; one that finds some stored stores the others. An event
	// id stored with other content fails the persist with ErrConflict.
	EventID string `json:"eventId,omitempty"`
}

// Result is the server's reply to a persist.
type Result struct {
	// AffectedRows is how many events the request stored: 0 for a
	// duplicate.
	AffectedRows int64 `json:"affectedRows"`
	// InsertID is the id of the first event stored, the others following
	// it; for a duplicate, the first reply's InsertID. 0 for a table
	// without ids.
	InsertID int64 `json:"insertId"`
	// Duplicate says the request was a retry whose every event id was
	// stored already, with the same content: nothing was stored again (see
	// Document.EventID).
	Duplicate bool `json:"duplicate,omitempty"`

	raw json.RawMessage
}

// Raw returns the reply's JSON exactly as received: the OK packet of the
// original server, with fieldCount, serverStatus, message and the other
// fields of MySQL's reply besides those of Result. It is empty in a Result
// the client did not receive.
func (r Result) Raw() json.RawMessage { return r.raw }

// Expectation is the version a stream must be at for a persist to commit
// (PersistExpecting, WithExpectation): the stream of Domain and PID holds
// exactly Version events, 0 when it has none yet.
type Expectation struct {
	Domain  string
	PID     string
	Version int64
}

// insertQuery is {"$insert": {"$documents": ...}} with the keys in that
// order.
type insertQuery struct {
	Insert struct {
		Documents any `json:"$documents"`
	} `json:"$insert"`
}

// Persist inserts docs into the server's default table in one statement
// and returns the server's reply. One document travels as an object, as
// the original clients sent it; more as an array. The result's Duplicate
// says that the request was a retry whose event ids were all stored
// already (see Document.EventID).
func (c *Client) Persist(ctx context.Context, docs ...Document) (Result, error) {
	q, err := documentsQuery(docs)
	if err != nil {
		return Result{}, err
	}
	return c.PersistQuery(ctx, q)
}

// PersistExpecting is Persist that commits only if the stream of
// expect.Domain and expect.PID holds exactly expect.Version events (0: none
// yet); every document must belong to that stream. Otherwise nothing is
// stored and the error matches ErrConflict, its *ServerError's Message
// saying the stream's version. A retry whose event ids are all stored is
// a duplicate, not a conflict, though the stream has moved on.
func (c *Client) PersistExpecting(ctx context.Context, expect Expectation, docs ...Document) (Result, error) {
	q, err := documentsQuery(docs)
	if err != nil {
		return Result{}, err
	}
	return c.PersistQuery(ctx, q, WithExpectation(expect))
}

// documentsQuery is the $insert of docs.
func documentsQuery(docs []Document) (insertQuery, error) {
	var q insertQuery
	switch len(docs) {
	case 0:
		return q, fmt.Errorf("persist: %w", ErrNoDocuments)
	case 1:
		q.Insert.Documents = docs[0]
	default:
		q.Insert.Documents = docs
	}
	return q, nil
}

// PersistOption configures one PersistQuery.
type PersistOption func(*persistConfig)

type persistConfig struct {
	expect *messages.Expectation
}

// WithExpectation makes the persist commit only if the stream of
// e.Domain and e.PID is at e.Version, as PersistExpecting does.
func WithExpectation(e Expectation) PersistOption {
	return func(p *persistConfig) {
		p.expect = &messages.Expectation{Domain: e.Domain, PID: e.PID, Version: e.Version}
	}
}

// PersistQuery sends an $insert query, given as Fetch takes one, and returns
// the server's reply. Errors match ErrServer (as a *ServerError),
// ErrConflict (a *ServerError too), ErrNoServer, ErrClosed, ErrInterrupted,
// ErrProtocol, ErrInvalidQuery or ctx's error. When ctx ends first, the
// insert may still have been committed: the server is not told to stop,
// and only event ids make sending it again safe.
//
// A persist always asks the server for reasons, whether or not the client
// was built WithReason: that is how a conflict is told from other errors,
// and a retry from a first write (Result.Duplicate). An OK reply cannot be
// mistaken for an error reply, as a row could.
func (c *Client) PersistQuery(ctx context.Context, query any, opts ...PersistOption) (Result, error) {
	var pc persistConfig
	for _, opt := range opts {
		opt(&pc)
	}
	q, err := encodeQuery(query)
	if err != nil {
		return Result{}, fmt.Errorf("persist: %w", err)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	// The server sends the reply and "end"; the slack covers both.
	cl, err := c.begin(ctx, 1+inboxSlack)
	if err != nil {
		return Result{}, fmt.Errorf("persist: %w", err)
	}
	defer c.finish(cl)
	req := messages.Request{Channel: cl.channel, Query: q, Reason: true, Expect: pc.expect}
	if err := c.request(ctx, c.cfg.persistChannel, req); err != nil {
		return Result{}, fmt.Errorf("persist %s: %w", cl.channel, err)
	}
	for {
		payload, err := c.receive(ctx, cl)
		if err != nil {
			return Result{}, fmt.Errorf("persist %s: wait for reply: %w", cl.channel, err)
		}
		k, serr := classify(payload, true)
		switch k {
		case kindIgnore:
			continue
		case kindObject:
			var res Result
			if err := json.Unmarshal(payload, &res); err != nil {
				return Result{}, fmt.Errorf("persist %s: decode reply %.200q: %v: %w", cl.channel, payload, err, ErrProtocol)
			}
			res.raw = payload
			// The "end" that follows carries nothing more; finishing the
			// call now lets the reader drop it.
			return res, nil
		case kindEnd:
			return Result{}, fmt.Errorf("persist %s: end before a reply: %w", cl.channel, ErrProtocol)
		case kindTimeout:
			return Result{}, fmt.Errorf("persist %s: %w", cl.channel, ErrTimeout)
		case kindError:
			return Result{}, fmt.Errorf("persist %s: %w", cl.channel, serr)
		}
	}
}
