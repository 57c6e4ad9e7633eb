package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/redisbus"
)

// Driver is how the bench's streams talk to the server.
type Driver string

const (
	// DriverClient uses the client package, as services do: one goroutine
	// per stream takes each row from the client's reader and queues its
	// "accepted" on the client's publishing pipeline.
	DriverClient Driver = "client"
	// DriverWire speaks the protocol itself with the ping-pong's client
	// side: one subscriber connection, and requests and "accepted"s sent
	// through pipelines of everything queued. It measures the server with
	// a client as fast as the baseline's, so the ratio is the server's
	// alone. Persists use the client package either way.
	DriverWire Driver = "wire"
)

// fetcher runs one fetch of a query and yields the size of each row in
// bytes, accepting it when the loop asks for the next. (Rows are not handed
// over: the baseline's client copies none either.)
type fetcher interface {
	fetch(ctx context.Context, query string, window int) iter.Seq2[int, error]
}

// clientFetcher is the client package.
type clientFetcher struct{ cl *client.Client }

func (f clientFetcher) fetch(ctx context.Context, query string, window int) iter.Seq2[int, error] {
	var opts []client.FetchOption
	if window > 1 {
		opts = append(opts, client.WithWindow(window))
	}
	return func(yield func(int, error) bool) {
		for row, err := range f.cl.Fetch(ctx, query, opts...) {
			if !yield(len(row.Raw()), err) {
				return
			}
		}
	}
}

// errWire is a failure of a wire fetch that the server reported.
var errWire = errors.New("server ended the stream")

// wireFetcher is a minimal protocol client on the bench's redisbus
// connections: one subscriber, whose reader routes each message in place,
// and pipelined publishers.
type wireFetcher struct {
	sub          *redisbus.Subscriber
	pub          *busPublisher
	fetchChannel string
	prefix       string
	seq          atomic.Uint64

	mu    sync.Mutex
	calls map[string]*wireCall
}

type wireCall struct {
	inbox  chan string
	broken chan struct{} // closed when the inbox overflowed

	// onRow, when set, makes the reader goroutine handle the call's rows
	// itself, as the ping-pong's client side does: it counts each row and
	// accepts it at once, with no hand-off to the fetching goroutine.
	onRow func(size int)
	ended chan error // gets the end of an inline call: nil, or why it failed
}

func newWireFetcher(rdb *redis.Client, fetchChannel, prefix string, onErr func(error)) *wireFetcher {
	w := &wireFetcher{
		pub:          newBusPublisher(rdb.Options(), onErr),
		fetchChannel: fetchChannel, prefix: prefix, calls: map[string]*wireCall{},
	}
	w.sub = newBusSubscriber(rdb.Options(), w.route, nil)
	return w
}

func (w *wireFetcher) close() {
	_ = w.sub.Close()
	w.pub.close()
}

// route hands a message to its call, on the subscriber's goroutine.
func (w *wireFetcher) route(channel, payload []byte) bool {
	if string(payload) == string(messages.AcceptedJSON) {
		return true // our own
	}
	w.mu.Lock()
	c := w.calls[string(channel)]
	if c != nil && c.onRow != nil {
		w.mu.Unlock()
		w.handleInline(string(channel), c, payload)
		return true
	}
	if c != nil {
		select {
		case c.inbox <- string(payload):
		default:
			select {
			case <-c.broken:
			default:
				close(c.broken)
			}
		}
	}
	w.mu.Unlock()
	return true
}

// handleInline is the reader goroutine's turn for a call with onRow: the
// row is counted and accepted at once; a terminal ends the call.
func (w *wireFetcher) handleInline(channel string, c *wireCall, p []byte) {
	end := func(err error) {
		if c.onRow != nil {
			c.onRow = nil // whatever else arrives is ignored
			c.ended <- err
		}
	}
	switch {
	case len(p) > 0 && p[0] == '{':
		if bytes.HasPrefix(p, []byte(`{"error":`)) {
			end(fmt.Errorf("%w: %s", errWire, p))
			return
		}
		c.onRow(len(p))
		w.pub.publish(channel, messages.AcceptedJSON)
	case string(p) == string(messages.EndJSON):
		end(nil)
	case string(p) == string(messages.TimeoutJSON) || string(p) == string(messages.ErrorJSON):
		end(fmt.Errorf("%w: %s", errWire, p))
	}
}

// fetchInline runs one fetch whose rows the reader goroutine counts and
// accepts itself (see wireCall.onRow); onRow runs on that goroutine, one
// call at a time across all streams. It returns once the stream ended.
func (w *wireFetcher) fetchInline(ctx context.Context, query string, window int, onRow func(size int)) error {
	c := &wireCall{onRow: onRow, ended: make(chan error, 1)}
	channel, err := w.start(ctx, c, query, window)
	defer w.stop(channel)
	if err != nil {
		return err
	}
	select {
	case err := <-c.ended:
		if err != nil {
			return fmt.Errorf("wire fetch %s: %w", channel, err)
		}
		return nil
	case <-ctx.Done():
		w.pub.publish(channel, messages.EndJSON)
		return fmt.Errorf("wire fetch %s: %w", channel, ctx.Err())
	}
}

// start registers c on a fresh response channel, subscribes it and sends
// the request. The channel is returned even on failure: stop releases it.
func (w *wireFetcher) start(ctx context.Context, c *wireCall, query string, window int) (string, error) {
	channel := w.prefix + strconv.FormatUint(w.seq.Add(1), 10)
	w.mu.Lock()
	w.calls[channel] = c
	w.mu.Unlock()
	fail := func(err error) (string, error) { return channel, fmt.Errorf("wire fetch %s: %w", channel, err) }
	if err := w.sub.SubscribeWait(ctx, channel); err != nil {
		return fail(err)
	}
	req, err := json.Marshal(messages.Request{Channel: channel, Query: json.RawMessage(query), Reason: true, Window: windowField(window)})
	if err != nil {
		return fail(err)
	}
	w.pub.publish(w.fetchChannel, req)
	return channel, nil
}

// stop forgets a call and unsubscribes its channel.
func (w *wireFetcher) stop(channel string) {
	w.mu.Lock()
	delete(w.calls, channel)
	w.mu.Unlock()
	_ = w.sub.Unsubscribe(context.Background(), channel)
}

func (w *wireFetcher) fetch(ctx context.Context, query string, window int) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		c := &wireCall{inbox: make(chan string, max(window, 1)+4), broken: make(chan struct{})}
		channel, err := w.start(ctx, c, query, window)
		defer w.stop(channel)
		if err != nil {
			yield(0, err)
			return
		}
		fail := func(err error) { yield(0, fmt.Errorf("wire fetch %s: %w", channel, err)) }
		for {
			var p string
			select {
			case p = <-c.inbox:
			case <-c.broken:
				fail(errors.New("more messages in flight than the window"))
				return
			case <-ctx.Done():
				w.pub.publish(channel, messages.EndJSON)
				fail(ctx.Err())
				return
			}
			switch {
			case len(p) > 0 && p[0] == '{':
				if len(p) > 9 && p[:9] == `{"error":` {
					fail(fmt.Errorf("%w: %s", errWire, p))
					return
				}
				if !yield(len(p), nil) {
					w.pub.publish(channel, messages.EndJSON)
					return
				}
				w.pub.publish(channel, messages.AcceptedJSON)
			case p == string(messages.EndJSON):
				return
			case p == string(messages.TimeoutJSON) || p == string(messages.ErrorJSON):
				fail(fmt.Errorf("%w: %s", errWire, p))
				return
			}
		}
	}
}

// windowField is the request's window: left out for 1, so the request is
// the original's byte for byte.
func windowField(window int) int {
	if window <= 1 {
		return 0
	}
	return window
}
