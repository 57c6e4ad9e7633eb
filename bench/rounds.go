package bench

import (
	"cmp"
	"fmt"
	"slices"
)

// pair is one round of a paired scenario: its baseline phase, then the
// server's, and the ratio of their main figures.
type pair struct {
	baseline, server *Measure
	ratio            float64
}

// mainFigure is what a paired scenario compares: persists/s for a persist
// load, rows/s otherwise.
func mainFigure(spec Spec, m *Measure) float64 {
	if spec.persists() {
		return m.PersistsPerSec
	}
	return m.RowsPerSec
}

// persists reports whether the scenario's load is persists.
func (s Spec) persists() bool {
	return s.Kind == KindPersist || s.Kind == KindCompare && s.Load == "persist"
}

// report is the pair as a reported Round.
func (p pair) report(spec Spec) Round {
	if spec.persists() {
		return Round{BaselinePersistsPerSec: p.baseline.PersistsPerSec, PersistsPerSec: p.server.PersistsPerSec, Ratio: p.ratio}
	}
	return Round{BaselineRowsPerSec: p.baseline.RowsPerSec, RowsPerSec: p.server.RowsPerSec, Ratio: p.ratio}
}

// pairedRounds runs a scenario's round (its baseline phase, then the
// server's) res.Spec.Rounds times, settling the machine between them, and
// gives res the round of median ratio (of an even number, the lower middle
// one), with every round in the order run when there were several. A
// phase of a few seconds swings with whatever else the machine does (a
// slow fsync, another tenant); the median of paired rounds does not. With
// more than one round, an unreported warm-up round (warmUp true: the round
// may be shorter) goes first: a server's first load at a new scale grows
// its heap, its pools and its subscriptions, and runs while InnoDB writes
// back the rows just seeded; the first of three 1,000-stream rounds read
// lowest in 8 of 12 runs. On error, res gets the failed round's phases, so
// that the report shows what ran.
func (e *env) pairedRounds(res *ScenarioResult, round func(label string, warmUp bool) (baseline, server *Measure, err error)) error {
	spec := res.Spec
	n := max(spec.Rounds, 1)
	if n > 1 {
		e.settle()
		if _, _, err := round(spec.Name+" (warm-up)", true); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	var rounds []pair
	for r := range n {
		label := spec.Name
		if n > 1 {
			label = fmt.Sprintf("%s (round %d of %d)", spec.Name, r+1, n)
			e.settle()
		}
		baseline, server, err := round(label, false)
		if err != nil {
			res.Baseline, res.Server = baseline, server
			return err
		}
		rounds = append(rounds, pair{baseline, server, safeRatio(mainFigure(spec, server), mainFigure(spec, baseline))})
	}
	if n > 1 {
		for _, p := range rounds {
			res.Rounds = append(res.Rounds, p.report(spec))
		}
	}
	slices.SortStableFunc(rounds, func(a, b pair) int { return cmp.Compare(a.ratio, b.ratio) })
	median := rounds[(len(rounds)-1)/2]
	res.Baseline, res.Server = median.baseline, median.server
	return nil
}
