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

// pairedRounds runs one round n times, settling the machine between them,
// and returns the round of median ratio (of an even number, the lower middle
// one) with every round in the order run. A phase of a few seconds swings
// with whatever else the machine does (a slow fsync, another tenant); the
// median of paired rounds does not. With more than one round, an unreported
// warm-up round (warmUp true: the round may be shorter) goes first: a
// server's first load at a new scale grows its heap, its pools and its
// subscriptions, and runs while InnoDB writes back the rows just seeded;
// the first of three 1,000-stream rounds read lowest in 8 of 12 runs.
// On error, the failed round's phases come back as the median so that the
// report shows what ran.
func (e *env) pairedRounds(name string, n int, round func(label string, warmUp bool) (pair, error)) (median pair, rounds []pair, err error) {
	n = max(n, 1)
	if n > 1 {
		e.settle()
		if p, err := round(name+" (warm-up)", true); err != nil {
			return p, nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	for r := range n {
		label := name
		if n > 1 {
			label = fmt.Sprintf("%s (round %d of %d)", name, r+1, n)
			e.settle()
		}
		p, err := round(label, false)
		if err != nil {
			return p, rounds, err
		}
		rounds = append(rounds, p)
	}
	sorted := slices.Clone(rounds)
	slices.SortStableFunc(sorted, func(a, b pair) int { return cmp.Compare(a.ratio, b.ratio) })
	return sorted[(len(sorted)-1)/2], rounds, nil
}
