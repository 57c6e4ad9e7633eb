package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/redisbus"
)

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
	// The phase and the publishers start once both sides are subscribed;
	// ready hands them to the readers, which hear nothing before.
	var ph *phase
	var srvPub, cliPub *busPublisher
	ready := make(chan struct{})
	// Each side's counts are its reader's until the readers are closed.
	var srvCounts, cliCounts ppCounts
	done := make(chan struct{})

	// The publisher side: state per stream, touched by its reader only.
	sent, acked := make([]int, streams), make([]int, streams)
	srvSub := newBusSubscriber(e.redisOpts, func(channel, payload []byte) bool {
		<-ready
		i, ok := index[string(channel)]
		if !ok {
			return true
		}
		ch := chans[i]
		switch string(payload) {
		case ppGo:
			for sent[i] < min(window, rows) {
				srvPub.publish(ch, payloads[i])
				sent[i]++
				srvCounts.RowsSent++
			}
			if rows == 0 {
				srvPub.publish(ch, []byte(ppEnd))
				srvCounts.EndsSent++
			}
		case ppAccepted:
			acked[i]++
			srvCounts.AcceptedHeard++
			if sent[i] < rows {
				srvPub.publish(ch, payloads[i])
				sent[i]++
				srvCounts.RowsSent++
			} else if acked[i] == rows {
				srvPub.publish(ch, []byte(ppEnd))
				srvCounts.EndsSent++
			}
		}
		return true
	}, nil)
	// The client side: records each row and accepts it at once.
	got, last := make([]int, streams), make([]time.Time, streams)
	ended := 0
	cliSub := newBusSubscriber(e.redisOpts, func(channel, payload []byte) bool {
		<-ready
		i, ok := index[string(channel)]
		if !ok || len(payload) == 0 {
			return true
		}
		now := time.Now()
		switch {
		case payload[0] == '{':
			got[i]++
			cliCounts.RowsHeard++
			cliCounts.AcceptedSent++
			ph.rows.Add(1)
			if !last[i].IsZero() {
				ph.lat.record(i, now.Sub(last[i]))
			}
			last[i] = now
			cliPub.publish(chans[i], []byte(ppAccepted))
		case string(payload) == ppEnd:
			cliCounts.EndsHeard++
			if got[i] != rows {
				ph.fail(fmt.Errorf("ping-pong stream %d: %d rows, want %d", i, got[i], rows))
			}
			if ended++; ended == streams {
				ph.end = now
				close(done)
			}
		}
		return true
	}, func(ev any) {
		select {
		case <-ready:
		default:
			return // subscribing: subscribeAll reports a failure
		}
		if bi, ok := ev.(messages.BusInterrupted); ok {
			ph.fail(fmt.Errorf("ping-pong receive: %w", bi.Err))
		}
	})
	closeSubs := func() { _ = srvSub.Close(); _ = cliSub.Close() }
	for _, sub := range []*redisbus.Subscriber{srvSub, cliSub} {
		if err := subscribeAll(ctx, sub, chans); err != nil {
			closeSubs()
			return nil, counts, fmt.Errorf("ping-pong: %w", err)
		}
	}
	ph = e.startPhase(label, int64(streams*rows), 0)
	srvPub, cliPub = newBusPublisher(e.redisOpts, ph.fail), newBusPublisher(e.redisOpts, ph.fail)
	close(ready)

	for _, ch := range chans {
		cliPub.publish(ch, []byte(ppGo))
	}
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("ping-pong %s: %w", label, ctx.Err())
	}
	// Closed, the subscribers' readers have returned: their counts are
	// ours to read.
	closeSubs()
	srvPub.close()
	cliPub.close()
	counts = ppCounts{
		RowsSent: srvCounts.RowsSent, AcceptedHeard: srvCounts.AcceptedHeard, EndsSent: srvCounts.EndsSent,
		RowsHeard: cliCounts.RowsHeard, AcceptedSent: cliCounts.AcceptedSent, EndsHeard: cliCounts.EndsHeard,
	}
	return ph.finish(), counts, err
}
