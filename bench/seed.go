package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Seeded and persisted events look alike: a small JSON document, so rows on
// the wire are about 200 bytes, like a typical event.
const note = "bench event: a payload of the size a small domain event has"

// eventData is the data document of the seq-th event.
func eventData(seq int) string {
	return fmt.Sprintf(`{"seq":%d,"note":%q}`, seq, note)
}

// rowPayload is a row as the server sends it, for the ping-pong baseline to
// publish rows of the same size.
func rowPayload(pid string, seq int, id int64) []byte {
	data, _ := json.Marshal(eventData(seq))
	return fmt.Appendf(nil, `{"timestamp":%q,"pid":%q,"domain":"bench","name":"seeded","data":%s,"id":%d}`,
		time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"), pid, data, id)
}

// fetchQuery selects the rows of one pid, in id order.
func fetchQuery(pid string) string {
	q, _ := json.Marshal(pid)
	return `{"$select":{"$where":{"pid":` + string(q) + `}}}`
}

// seed inserts rows events for each of streams new pids and returns the
// pids. It writes directly with multi-row INSERTs (1,000 rows a statement,
// four at a time), not through persist: seeding is set-up, not measured, and
// 100,000 rows take seconds this way. A shape seeded once is reused.
func (e *env) seed(ctx context.Context, streams, rows int) ([]string, error) {
	key := fmt.Sprintf("%d×%d", streams, rows)
	if pids, ok := e.seeded[key]; ok {
		return pids, nil
	}
	e.seq++
	pids := make([]string, streams)
	for i := range pids {
		pids[i] = fmt.Sprintf("%ss%d-%d", e.pidPrefix(), e.seq, i)
	}
	start := time.Now()
	const perStatement = 1000
	total := streams * rows
	statements := (total + perStatement - 1) / perStatement
	var next atomic.Int64
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= statements || ctx.Err() != nil {
					return
				}
				from, to := k*perStatement, min((k+1)*perStatement, total)
				var sb strings.Builder
				sb.WriteString("INSERT INTO " + e.table + " (`pid`,`domain`,`name`,`data`) VALUES ")
				args := make([]any, 0, 4*(to-from))
				for n := from; n < to; n++ {
					if n > from {
						sb.WriteByte(',')
					}
					sb.WriteString("(?,?,?,?)")
					args = append(args, pids[n/rows], "bench", "seeded", eventData(n%rows))
				}
				if _, err := e.admin.ExecContext(ctx, sb.String(), args...); err != nil {
					errs[w] = fmt.Errorf("seed %s: %w", e.table, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("seed %s: %w", e.table, err)
	}
	e.progress().Note(fmt.Sprintf("seeded %d rows (%d pids × %d) with direct INSERTs in %s", total, streams, rows, time.Since(start).Round(time.Millisecond)))
	e.seeded[key] = pids
	return pids, nil
}
