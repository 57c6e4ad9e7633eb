package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// maxPipeline bounds the PUBLISHes sent in one round trip.
const maxPipeline = 256

// publisher sends the PUBLISHes of concurrent calls in pipelines. Each call
// still waits for its own reply (a request needs the number of servers that
// heard it), but a burst of calls shares one write and one read instead of
// costing a round trip each. One goroutine sends, so the publishes of one
// call keep their order.
type publisher struct {
	rdb   redis.UniversalClient
	queue chan *publication
	quit  chan struct{} // closed by close: queued publications fail
	done  chan struct{} // closed when the goroutine has returned
}

type publication struct {
	channel   string
	payload   []byte
	receivers int64
	err       error
	sent      chan struct{} // closed once sent; nil for publishAsync
	failed    func(error)   // publishAsync's, told of a failure
}

func newPublisher(rdb redis.UniversalClient) *publisher {
	p := &publisher{rdb: rdb, queue: make(chan *publication, maxPipeline), quit: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// publish sends payload on channel and returns how many subscribers heard
// it. When ctx ends first the message may still go out.
func (p *publisher) publish(ctx context.Context, channel string, payload []byte) (int64, error) {
	pub := &publication{channel: channel, payload: payload, sent: make(chan struct{})}
	select {
	case p.queue <- pub:
	case <-p.quit:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case <-pub.sent:
		return pub.receivers, pub.err
	case <-p.quit:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// publishAsync queues payload on channel and returns without waiting for
// Redis: the publishes of one goroutine still go out in order, and a stream
// takes its next row while its "accepted" is on the way. failed, if not
// nil, hears a failure, on the publishing goroutine.
func (p *publisher) publishAsync(ctx context.Context, channel string, payload []byte, failed func(error)) error {
	pub := &publication{channel: channel, payload: payload, failed: failed}
	select {
	case p.queue <- pub:
		return nil
	case <-p.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops the goroutine; publications still queued fail with ErrClosed.
func (p *publisher) close() {
	close(p.quit)
	<-p.done
}

func (p *publisher) run() {
	defer close(p.done)
	batch := make([]*publication, 0, maxPipeline)
	cmds := make([]*redis.IntCmd, 0, maxPipeline)
	for {
		select {
		case first := <-p.queue:
			batch = append(batch[:0], first)
		case <-p.quit:
			return
		}
	gather:
		for len(batch) < maxPipeline {
			select {
			case pub := <-p.queue:
				batch = append(batch, pub)
			default:
				break gather
			}
		}
		p.send(batch, cmds[:0])
	}
}

// send runs one pipeline. Its deadline is its own: no caller's
// cancellation may cut short a write that other calls share.
func (p *publisher) send(batch []*publication, cmds []*redis.IntCmd) {
	ctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
	defer cancel()
	pipe := p.rdb.Pipeline()
	for _, pub := range batch {
		cmds = append(cmds, pipe.Publish(ctx, pub.channel, pub.payload))
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for i, pub := range batch {
		pub.receivers, pub.err = cmds[i].Result()
		if errors.Is(pub.err, redis.ErrClosed) {
			pub.err = fmt.Errorf("redis client closed: %w", ErrClosed)
		}
		if pub.sent != nil {
			close(pub.sent)
		} else if pub.err != nil && pub.failed != nil {
			pub.failed(pub.err)
		}
	}
}
