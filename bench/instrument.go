package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/server"
)

// InstrumentCost is what an instrument-cost scenario measured: rows/s of
// each leg with the registry and metrics on and off, in the order run, and
// Cost = 1 − MeanOn/MeanOff.
type InstrumentCost struct {
	On      []float64 `json:"on_rows_per_sec"`
	Off     []float64 `json:"off_rows_per_sec"`
	MeanOn  float64   `json:"mean_on"`
	MeanOff float64   `json:"mean_off"`
	Cost    float64   `json:"cost"`
}

// runInstrumentCost starts two fresh in-process servers, one instrumented
// and one not, each with request channels of its own, warms both up, and
// runs streams-1000's fetch load against them in turn, on first, so that
// drift of the machine hits both. Both are new: the run's main server has
// served every scenario before this one, and would carry their leftovers
// (its heap, its caches) into one leg only.
func (e *env) runInstrumentCost(ctx context.Context, spec Spec, res *ScenarioResult) error {
	if e.srv == nil {
		return errors.New("instrument-cost compares two in-process servers: it cannot run against a running server (--fetch-channel)")
	}
	pids, err := e.seed(ctx, spec.Streams, spec.Rows)
	if err != nil {
		return err
	}
	type leg struct {
		srv *server.Server
		f   fetcher
	}
	start := func(instrument bool, name string) (leg, func(), error) {
		scfg, srv, stopServer, err := e.startSideServer(ctx, name, func(c *server.Config) { c.Instrument = instrument })
		if err != nil {
			return leg{}, nil, err
		}
		p := e.sidePrefix(name)
		if e.cfg.Driver == DriverWire {
			w := newWireFetcher(e.wireRdb, scfg.FetchChannel, p+"w:", func(err error) {
				e.log.Warn("wire driver publish", slog.Any("err", err))
			})
			return leg{srv, w}, func() { w.close(); stopServer() }, nil
		}
		cl := client.New(e.rdb, client.WithFetchChannel(scfg.FetchChannel), client.WithPersistChannel(scfg.PersistChannel),
			client.WithChannelPrefix(p+"r:"), client.WithReason())
		return leg{srv, clientFetcher{cl}}, func() { cl.Close(); stopServer() }, nil
	}
	on, stopOn, err := start(true, "instrumented")
	if err != nil {
		return err
	}
	defer stopOn()
	off, stopOff, err := start(false, "uninstrumented")
	if err != nil {
		return err
	}
	defer stopOff()
	mainSrv, mainFetcher := e.srv, e.fetcher
	defer func() { e.srv, e.fetcher = mainSrv, mainFetcher }()
	// One unmeasured leg on each server first: a new server dials its
	// connections, prepares its statements and grows its heap during its
	// first load, and the first leg of all also runs while InnoDB writes
	// back the rows just seeded. Measured, that leg read 15 to 25% slower
	// than the rest, and it always fell on the instrumented side.
	for _, l := range []leg{on, off} {
		e.srv, e.fetcher = l.srv, l.f
		e.settle()
		if _, err := e.fetchLoad(ctx, spec.Name+"-warm-up", pids, spec.Rows, spec.Window); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	ic := &InstrumentCost{}
	res.Instrument = ic
	rounds := max(spec.Rounds, 1)
	type named struct {
		name string
		leg
		into *[]float64
	}
	for r := range rounds {
		// On, off, then off, on: a steady drift of the machine weighs on
		// both sides alike.
		order := []named{{"on", on, &ic.On}, {"off", off, &ic.Off}}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, l := range order {
			e.srv, e.fetcher = l.srv, l.f
			e.settle()
			name := fmt.Sprintf("%s-%s-%d", spec.Name, l.name, r+1)
			m, err := e.fetchLoad(ctx, name, pids, spec.Rows, spec.Window)
			if m != nil {
				res.Legs = append(res.Legs, m)
				*l.into = append(*l.into, m.RowsPerSec)
			}
			if err != nil {
				return err
			}
			if m.Errors > 0 {
				return fmt.Errorf("%s: %d errors, first: %s", name, m.Errors, m.ErrorSamples[0])
			}
		}
	}
	ic.MeanOn, ic.MeanOff = mean(ic.On), mean(ic.Off)
	if ic.MeanOff > 0 {
		ic.Cost = 1 - ic.MeanOn/ic.MeanOff
	}
	return nil
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// instrumentFigures are an instrument-cost scenario's: rows/s of each leg,
// the means, and the cost against its target.
func (s *ScenarioResult) instrumentFigures(note string) []Figure {
	spec, ic := s.Spec, s.Instrument
	if ic == nil {
		ic = &InstrumentCost{}
	}
	var out []Figure
	for _, m := range s.Legs {
		leg := strings.TrimSuffix(strings.TrimPrefix(m.Label, spec.Name+"-"), " eventsource")
		out = append(out, Figure{Scenario: spec.Name, Name: "rows/s, " + leg, Value: m.RowsPerSec, Unit: "rows/s"})
	}
	out = append(out,
		Figure{Scenario: spec.Name, Name: "mean rows/s, instrumented", Value: ic.MeanOn, Unit: "rows/s"},
		Figure{Scenario: spec.Name, Name: "mean rows/s, uninstrumented", Value: ic.MeanOff, Unit: "rows/s"})
	f := Figure{Scenario: spec.Name, Name: "cost of registry+metrics", Value: ic.Cost * 100, Unit: "%", Note: note,
		Baseline: ptr(ic.MeanOff), BaselineName: "uninstrumented (rows/s)"}
	if ic.MeanOff > 0 {
		f.Ratio = ptr(ic.MeanOn / ic.MeanOff)
	}
	if spec.MaxCost > 0 {
		f.Target = fmt.Sprintf("≤ %g%%", spec.MaxCost*100)
		f.Met = ptr(note == "" && len(ic.On) > 0 && len(ic.Off) > 0 && ic.Cost < spec.MaxCost)
	}
	return append(out, f)
}
