package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/metrics"
	"github.com/eventsource/eventsource/ordjson"
	"github.com/eventsource/eventsource/sqlbuild"
)

// commitQueue is how many commit notifications may wait for the reader;
// past it they are dropped and the live listeners told to catch up.
const commitQueue = 4096

// readBatch bounds the rows of one read of committed events.
const readBatch = 1000

// Committed takes a commit notification heard on Redis. It never blocks:
// it runs on the shared subscriber's reader goroutine.
func (g *Gateway) Committed(note messages.Committed) {
	select {
	case g.notes <- note:
	default:
		g.deps.Metrics.CommitNotification("dropped")
		g.logger.Warn("commit notifications dropped: the gateway reads events too slowly", slog.Int("queue", commitQueue))
		g.loseFeed(metrics.FeedNotificationsDropped, "the server fell behind the event feed")
	}
}

// Interrupted says the Redis subscriber connection failed: notifications
// may be lost, so live listeners catch up from the database.
func (g *Gateway) Interrupted() {
	g.loseFeed(metrics.FeedRedisLost, "the server lost its Redis connection")
}

// restoredReason is the second "lost" of an outage: what was announced
// between the first one and the resubscription is read with it.
const restoredReason = "the server's Redis connection is back: read what was announced while it was away"

// Restored says the Redis subscriber connection is back: the listeners
// that caught up while it was down may have missed what was announced
// since, so they catch up once more, now that nothing more is missed.
func (g *Gateway) Restored() {
	g.loseFeed(metrics.FeedRedisLost, restoredReason)
}

// loseFeed tells every live listener that its feed has a hole, and counts
// the hole once.
func (g *Gateway) loseFeed(cause, reason string) {
	if g.hub.hasEventListeners() {
		g.deps.Metrics.FeedLost(cause)
	}
	g.hub.lose(reason)
}

// readCommits is the goroutine that reads each notification's rows once
// and fans them out, in notification order.
func (g *Gateway) readCommits() {
	defer g.wg.Done()
	for {
		select {
		case <-g.quit:
			return
		case note := <-g.notes:
			if note.Table != g.table.QualifiedName() || !g.hub.hasEventListeners() {
				g.deps.Metrics.CommitNotification("skipped")
				continue // nobody to read the rows for
			}
			if note.Uncertain {
				// Rows may have been committed that no notification names.
				g.deps.Metrics.CommitNotification("uncertain")
				g.loseFeed(metrics.FeedUncertainCommit, "a persist may have committed events the server could not announce")
				continue
			}
			events, err := g.readCommitted(note)
			if err != nil {
				g.deps.Metrics.CommitNotification("read_failed")
				g.logger.Warn("read committed events", slog.Any("err", err))
				g.loseFeed(metrics.FeedReadFailed, "the server could not read new events")
				continue
			}
			g.deps.Metrics.CommitNotification("read")
			g.hub.dispatch(events)
		}
	}
}

// readCommitted reads the events a notification names.
func (g *Gateway) readCommitted(note messages.Committed) ([]*Event, error) {
	ranges := make([]*ordjson.Value, len(note.Ranges))
	var top int64
	for i, r := range note.Ranges {
		between := ordjson.NewArray(number(r[0]), number(r[1]))
		ranges[i] = ordjson.NewObject(ordjson.Member{Key: "id", Value: ordjson.NewObject(ordjson.Member{Key: "$between", Value: between})})
		top = max(top, r[1])
	}
	where := ranges[0]
	if len(ranges) > 1 {
		where = ordjson.NewObject(ordjson.Member{Key: "$or", Value: ordjson.NewArray(ranges...)})
	}
	sel, err := g.selectEvents(where, sqlbuild.Scope{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := make([]*Event, 0, min(note.Count(), readBatch))
	page := sqlbuild.Page{Snapshot: top, Size: readBatch}
	for {
		got, err := g.deps.Store.ReadPage(ctx, sel, page, true)
		if err != nil {
			return nil, err
		}
		for _, row := range got.Rows {
			ev, err := eventFromRow(row)
			if err != nil {
				return nil, err
			}
			events = append(events, ev)
		}
		if len(got.Rows) < readBatch {
			return events, nil
		}
		page.After = got.LastKey
	}
}

// number is an integer as a JSON value.
func number(n int64) *ordjson.Value {
	return &ordjson.Value{Kind: ordjson.Number, Text: strconv.FormatInt(n, 10)}
}

// selectEvents builds the select of event columns from the event table,
// with where (a $where object; nil: none), in scope.
func (g *Gateway) selectEvents(where *ordjson.Value, scope sqlbuild.Scope) (*sqlbuild.Select, error) {
	columns := make([]*ordjson.Value, len(eventColumns))
	for i, c := range eventColumns {
		columns[i] = ordjson.NewString(c)
	}
	body := ordjson.NewObject(
		ordjson.Member{Key: "$columns", Value: ordjson.NewArray(columns...)},
		ordjson.Member{Key: "$from", Value: ordjson.NewString(g.table.QualifiedName())},
	)
	if where != nil {
		body.Members = append(body.Members, ordjson.Member{Key: "$where", Value: where})
	}
	sel, err := g.deps.Builder.Select(ordjson.NewObject(ordjson.Member{Key: "$select", Value: body}), scope)
	if err != nil {
		return nil, fmt.Errorf("build event select: %w", err)
	}
	return sel, nil
}
