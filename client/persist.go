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
}

// insertQuery is {"$insert": {"$documents": ...}} with the keys in that
// order.
type insertQuery struct {
	Insert struct {
		Documents any `json:"$documents"`
	} `json:"$insert"`
}

// Persist inserts docs into the server's default table in one statement
// and returns the server's OK reply. One document travels as an object, as
// the original clients sent it; more as an array.
func (c *Client) Persist(ctx context.Context, docs ...Document) (messages.OK, error) {
	var q insertQuery
	switch len(docs) {
	case 0:
		return messages.OK{}, fmt.Errorf("persist: %w", ErrNoDocuments)
	case 1:
		q.Insert.Documents = docs[0]
	default:
		q.Insert.Documents = docs
	}
	return c.PersistQuery(ctx, q)
}

// PersistQuery sends an $insert query, given as Fetch takes one, and returns
// the server's OK reply. Errors match ErrServer (as a *ServerError),
// ErrNoServer, ErrClosed, ErrInterrupted, ErrProtocol, ErrInvalidQuery or
// ctx's error. When ctx ends first, the insert may still have been
// committed: the server is not told to stop.
func (c *Client) PersistQuery(ctx context.Context, query any) (messages.OK, error) {
	q, err := encodeQuery(query)
	if err != nil {
		return messages.OK{}, fmt.Errorf("persist: %w", err)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	// The server sends the reply and "end"; the slack covers both.
	cl, err := c.begin(ctx, 1+inboxSlack)
	if err != nil {
		return messages.OK{}, fmt.Errorf("persist: %w", err)
	}
	defer c.finish(cl)
	req := messages.Request{Channel: cl.channel, Query: q, Reason: c.cfg.reason}
	if err := c.request(ctx, c.cfg.persistChannel, req); err != nil {
		return messages.OK{}, fmt.Errorf("persist %s: %w", cl.channel, err)
	}
	for {
		payload, err := c.receive(ctx, cl)
		if err != nil {
			return messages.OK{}, fmt.Errorf("persist %s: wait for reply: %w", cl.channel, err)
		}
		k, serr := classify(payload, c.cfg.reason)
		switch k {
		case kindIgnore:
			continue
		case kindObject:
			var ok messages.OK
			if err := json.Unmarshal([]byte(payload), &ok); err != nil {
				return messages.OK{}, fmt.Errorf("persist %s: decode reply %.200q: %v: %w", cl.channel, payload, err, ErrProtocol)
			}
			// The "end" that follows carries nothing more; finishing the
			// call now lets the reader drop it.
			return ok, nil
		case kindEnd:
			return messages.OK{}, fmt.Errorf("persist %s: end before a reply: %w", cl.channel, ErrProtocol)
		case kindTimeout:
			return messages.OK{}, fmt.Errorf("persist %s: %w", cl.channel, ErrTimeout)
		case kindError:
			return messages.OK{}, fmt.Errorf("persist %s: %w", cl.channel, serr)
		}
	}
}
