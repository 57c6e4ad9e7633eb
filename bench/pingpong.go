package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/redisbus"
)

// maxPipeline bounds one pipeline, as the server's publisher does.
const maxPipeline = 512

// pipeliner publishes through a few workers, each of which sends everything
// queued for it as one go-redis pipeline: one round trip for many messages.
// A channel always maps to one worker, so its messages keep their order.
type pipeliner struct {
	rdb    *redis.Client
	queues []chan publication
	wg     sync.WaitGroup
	onErr  func(error)
}

type publication struct {
	channel string
	payload []byte
}

func newPipeliner(rdb *redis.Client, workers int, onErr func(error)) *pipeliner {
	p := &pipeliner{rdb: rdb, queues: make([]chan publication, workers), onErr: onErr}
	for i := range p.queues {
		p.queues[i] = make(chan publication, 4096)
		p.wg.Go(func() { p.work(p.queues[i]) })
	}
	return p
}

func (p *pipeliner) publish(channel string, payload []byte) {
	p.queues[redisbus.Shard(channel, len(p.queues))] <- publication{channel, payload}
}

func (p *pipeliner) work(q chan publication) {
	ctx := context.Background()
	pipe := p.rdb.Pipeline()
	for first := range q {
		pipe.Publish(ctx, first.channel, first.payload)
		n := 1
	drain:
		for n < maxPipeline {
			select {
			case m, ok := <-q:
				if !ok {
					break drain
				}
				pipe.Publish(ctx, m.channel, m.payload)
				n++
			default:
				break drain
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			p.onErr(fmt.Errorf("ping-pong pipeline of %d publishes: %w", n, err))
		}
	}
}

// close sends what is queued and stops the workers.
func (p *pipeliner) close() {
	for _, q := range p.queues {
		close(q)
	}
	p.wg.Wait()
}

// Ping-pong messages. "go" stands for the request: the client side sends it
// once per stream, and the publisher side answers with the first window of
// rows.
const (
	ppGo       = `"go"`
	ppAccepted = `"accepted"`
	ppEnd      = `"end"`
)

// pingPong is the streams' baseline: streams concurrent exchanges of rows
// rows through Redis pub/sub alone, shaped as the protocol is. A publisher
// side (standing for the server) and an echoing client side each have their
// own Redis connections, both subscribe to every stream's channel (so each
// hears its own messages too, as in the protocol), and each publishes
// through pipelines of everything it has queued. The client side accepts a
// row as soon as it arrives; the publisher side sends the next row on each
// "accepted", up to window rows in flight, then "end". Rows are the size of
// the server's. Rows/s run from the first "go" to the last "end";
// latency is, per stream, the time between consecutive rows' arrivals.
func (e *env) pingPong(ctx context.Context, label string, streams, rows, window int) (*Measure, error) {
	m, _, err := e.runPingPong(ctx, label, streams, rows, window)
	return m, err
}

// ppCounts is what each side of a ping-pong sent and heard, in all.
type ppCounts struct {
	RowsSent, RowsHeard, AcceptedSent, AcceptedHeard, EndsSent, EndsHeard int
}

func (e *env) runPingPong(ctx context.Context, label string, streams, rows, window int) (*Measure, ppCounts, error) {
	var counts ppCounts
	window = max(window, 1)
	id := randomHex(3)
	chans := make([]string, streams)
	index := make(map[string]int, streams)
	payloads := make([][]byte, streams)
	for i := range chans {
		chans[i] = e.prefix + "pp:" + id + ":" + strconv.Itoa(i)
		index[chans[i]] = i
		payloads[i] = rowPayload(e.pidPrefix()+"pp-"+strconv.Itoa(i), i, int64(1_000_000+i))
	}
	srvRdb, cliRdb := redis.NewClient(e.redisOpts), redis.NewClient(e.redisOpts)
	defer srvRdb.Close()
	defer cliRdb.Close()
	srvPS, cliPS := srvRdb.Subscribe(ctx), cliRdb.Subscribe(ctx)
	defer srvPS.Close()
	defer cliPS.Close()
	for _, ps := range []*redis.PubSub{srvPS, cliPS} {
		if err := subscribeAll(ctx, ps, chans); err != nil {
			return nil, counts, fmt.Errorf("ping-pong: %w", err)
		}
	}

	ph := e.startPhase(label, int64(streams*rows), 0)
	srvPub := newPipeliner(srvRdb, 4, ph.fail)
	cliPub := newPipeliner(cliRdb, 4, ph.fail)
	// Each side's counts are its reader's until the readers are done.
	var srvCounts, cliCounts ppCounts
	stopping := make(chan struct{})
	done := make(chan struct{})
	var readers sync.WaitGroup
	readErr := func(err error) {
		select {
		case <-stopping:
		default:
			ph.fail(fmt.Errorf("ping-pong receive: %w", err))
		}
	}

	// The publisher side: state per stream, touched by this goroutine only.
	readers.Go(func() {
		sent, acked := make([]int, streams), make([]int, streams)
		for {
			msg, err := srvPS.Receive(context.Background())
			if err != nil {
				readErr(err)
				return
			}
			m, ok := msg.(*redis.Message)
			if !ok {
				continue
			}
			i, ok := index[m.Channel]
			if !ok {
				continue
			}
			switch m.Payload {
			case ppGo:
				for sent[i] < min(window, rows) {
					srvPub.publish(m.Channel, payloads[i])
					sent[i]++
					srvCounts.RowsSent++
				}
				if rows == 0 {
					srvPub.publish(m.Channel, []byte(ppEnd))
					srvCounts.EndsSent++
				}
			case ppAccepted:
				acked[i]++
				srvCounts.AcceptedHeard++
				if sent[i] < rows {
					srvPub.publish(m.Channel, payloads[i])
					sent[i]++
					srvCounts.RowsSent++
				} else if acked[i] == rows {
					srvPub.publish(m.Channel, []byte(ppEnd))
					srvCounts.EndsSent++
				}
			}
		}
	})
	// The client side: records each row and accepts it at once.
	readers.Go(func() {
		got, last := make([]int, streams), make([]time.Time, streams)
		ended := 0
		for {
			msg, err := cliPS.Receive(context.Background())
			if err != nil {
				readErr(err)
				return
			}
			m, ok := msg.(*redis.Message)
			if !ok {
				continue
			}
			i, ok := index[m.Channel]
			if !ok || m.Payload == "" {
				continue
			}
			now := time.Now()
			switch {
			case m.Payload[0] == '{':
				got[i]++
				cliCounts.RowsHeard++
				cliCounts.AcceptedSent++
				ph.rows.Add(1)
				if !last[i].IsZero() {
					ph.lat.record(i, now.Sub(last[i]))
				}
				last[i] = now
				cliPub.publish(m.Channel, []byte(ppAccepted))
			case m.Payload == ppEnd:
				cliCounts.EndsHeard++
				if got[i] != rows {
					ph.fail(fmt.Errorf("ping-pong stream %d: %d rows, want %d", i, got[i], rows))
				}
				if ended++; ended == streams {
					ph.end = now
					close(done)
				}
			}
		}
	})

	for _, ch := range chans {
		cliPub.publish(ch, []byte(ppGo))
	}
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("ping-pong %s: %w", label, ctx.Err())
	}
	close(stopping)
	_ = srvPS.Close()
	_ = cliPS.Close()
	readers.Wait()
	srvPub.close()
	cliPub.close()
	counts = ppCounts{
		RowsSent: srvCounts.RowsSent, AcceptedHeard: srvCounts.AcceptedHeard, EndsSent: srvCounts.EndsSent,
		RowsHeard: cliCounts.RowsHeard, AcceptedSent: cliCounts.AcceptedSent, EndsHeard: cliCounts.EndsHeard,
	}
	return ph.finish(), counts, err
}

// subscribeAll subscribes ps to chans and waits for every confirmation.
func subscribeAll(ctx context.Context, ps *redis.PubSub, chans []string) error {
	const chunk = 1000
	for i := 0; i < len(chans); i += chunk {
		if err := ps.Subscribe(ctx, chans[i:min(i+chunk, len(chans))]...); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for confirmed := 0; confirmed < len(chans); {
		msg, err := ps.ReceiveTimeout(ctx, 30*time.Second)
		if err != nil {
			return fmt.Errorf("wait for %d subscriptions (%d confirmed): %w", len(chans), confirmed, err)
		}
		if s, ok := msg.(*redis.Subscription); ok && s.Kind == "subscribe" {
			confirmed++
		}
	}
	if len(chans) == 0 {
		return errors.New("no channels")
	}
	return nil
}
