package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/redisbus"
)

// followerPool holds followed fetches on a few Redis connections shared
// between them, each SUBSCRIBEd to its followers' channels by name. Each
// connection's reader records each row's arrival and queues its
// "accepted" at once on the pool's publisher, so that a row is accepted
// however many followers share the connection.
type followerPool struct {
	pub      *busPublisher
	conns    []*followConn
	channels []string
	// ending is set once the pool sent "end": the "end"s heard from then
	// on are the pool's own, and no row is accepted any more.
	ending atomic.Bool
}

// followConn is one subscriber connection and its followers, a map fixed
// once the pool is open.
type followConn struct {
	sub       *redisbus.Subscriber
	followers map[string]*follower
}

// follower is one followed fetch. recv and err are written by its
// connection's reader only, and read once the pool is closed; newest is
// the highest id it got.
type follower struct {
	channel string
	recv    []delivery
	err     string
	newest  atomic.Int64
}

func (f *follower) fail(why string) {
	if f.err == "" {
		f.err = f.channel + ": " + why
	}
}

// openFollowers subscribes n channels under prefix on conns connections
// of their own and returns once Redis confirmed every subscription. onErr
// hears the publisher's failures.
func openFollowers(ctx context.Context, opts *redis.Options, prefix string, n, conns int, onErr func(error)) (*followerPool, error) {
	p := &followerPool{pub: newBusPublisher(opts, onErr)}
	for range conns {
		p.conns = append(p.conns, &followConn{followers: map[string]*follower{}})
	}
	for i := range n {
		ch := prefix + strconv.Itoa(i)
		p.channels = append(p.channels, ch)
		p.conns[i%conns].followers[ch] = &follower{channel: ch}
	}
	// The maps are complete before any reader starts.
	for _, c := range p.conns {
		c.sub = newBusSubscriber(opts, func(channel, payload []byte) bool {
			if f := c.followers[string(channel)]; f != nil {
				p.handle(f, string(payload))
			}
			return true
		}, nil)
	}
	ctx, cancel := context.WithTimeout(ctx, followTakeUp)
	defer cancel()
	for _, c := range p.conns {
		chans := make([]string, 0, len(c.followers))
		for ch := range c.followers {
			chans = append(chans, ch)
		}
		if err := subscribeAll(ctx, c.sub, chans); err != nil {
			p.close()
			return nil, fmt.Errorf("follow scenario: subscribe %d channels on %d connections: %w", n, conns, err)
		}
	}
	return p, nil
}

// handle records a row and accepts it; anything else from the server ends
// the follower.
func (p *followerPool) handle(f *follower, payload string) {
	switch {
	case payload == string(messages.AcceptedJSON):
		// ours
	case payload == string(messages.EndJSON) && p.ending.Load():
		// ours too (the server never ends a follow with "end")
	case strings.HasPrefix(payload, "{"):
		at := time.Now().UnixNano()
		if strings.HasPrefix(payload, `{"error":`) {
			f.fail("the server ended the follow: " + payload)
			return
		}
		id, ok := rowID(payload)
		if !ok {
			f.fail("a row without an id: " + payload[:min(len(payload), 200)])
			return
		}
		if !p.ending.Load() {
			p.pub.publish(f.channel, messages.AcceptedJSON)
		}
		f.recv = append(f.recv, delivery{id: id, at: at})
		if id > f.newest.Load() {
			f.newest.Store(id)
		}
	default:
		f.fail("the server ended the follow: " + payload)
	}
}

// rowID reads a row's id, its last member.
func rowID(row string) (int64, bool) {
	i := strings.LastIndex(row, `"id":`)
	if i < 0 {
		return 0, false
	}
	s := row[i+len(`"id":`):]
	j := 0
	for j < len(s) && '0' <= s[j] && s[j] <= '9' {
		j++
	}
	id, err := strconv.ParseInt(s[:j], 10, 64)
	return id, err == nil
}

// request sends every follower's followed fetch of query.
func (p *followerPool) request(fetchChannel, query string, window int) {
	for _, ch := range p.channels {
		req, _ := json.Marshal(messages.Request{Channel: ch, Query: json.RawMessage(query), Reason: true, Window: windowField(window), Follow: true})
		p.pub.publish(fetchChannel, req)
	}
}

// waitFor waits until every follower got a row of id last or higher, up
// to wait.
func (p *followerPool) waitFor(ctx context.Context, last int64, wait time.Duration) {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		behind := 0
		for _, c := range p.conns {
			for _, f := range c.followers {
				if f.newest.Load() < last {
					behind++
				}
			}
		}
		if behind == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// end publishes "end" on every follower's channel, once.
func (p *followerPool) end() {
	if p.ending.Swap(true) {
		return
	}
	for _, ch := range p.channels {
		p.pub.publish(ch, messages.EndJSON)
	}
}

// close closes the connections, waiting for their readers, and sends
// what the publisher holds.
func (p *followerPool) close() {
	for _, c := range p.conns {
		if c.sub != nil {
			_ = c.sub.Close()
		}
	}
	p.pub.close()
}

// summarize measures the closed pool against the commits, whose ids
// order lists in commit order.
func (p *followerPool) summarize(sum *FollowSummary, commits map[int64]int64, order []int64) {
	pos := make(map[int64]int, len(order))
	for i, id := range order {
		pos[id] = i
	}
	sum.Events = len(order)
	h := hdrhistogram.New(1, histMax, histDigits)
	for _, c := range p.conns {
		for _, f := range c.followers {
			exact := f.err == "" && len(f.recv) == len(order)
			got := map[int64]bool{}
			last := -1
			for i, d := range f.recv {
				commit, ok := commits[d.id]
				switch {
				case !ok:
					sum.Unexpected++
					exact = false
					continue
				case got[d.id]:
					sum.Repeated++
					exact = false
					continue
				}
				got[d.id] = true
				if pos[d.id] < last {
					sum.OutOfOrder++
				}
				last = max(last, pos[d.id])
				if i >= len(order) || order[i] != d.id {
					exact = false
				}
				sum.Deliveries++
				lat := d.at - commit
				if lat <= 0 {
					sum.Early++
					lat = 1
				}
				_ = h.RecordValue(min(lat, histMax))
			}
			if f.err != "" {
				sum.Errors++
				if sum.FirstError == "" {
					sum.FirstError = f.err
				}
			}
			if exact {
				sum.Exact++
			}
		}
	}
	sum.Missing = int64(len(p.channels))*int64(len(order)) - sum.Deliveries
	if h.TotalCount() > 0 {
		sum.P50, sum.P90, sum.P99 = micros(h.ValueAtQuantile(50)), micros(h.ValueAtQuantile(90)), micros(h.ValueAtQuantile(99))
		sum.P999, sum.Max = micros(h.ValueAtQuantile(99.9)), micros(h.Max())
	}
}
