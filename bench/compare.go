package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/internal/localcluster"
	"github.com/eventsource/eventsource/server"
)

// What a compare scenario sets side by side, each against the same load
// in the same run: Compare names it, Load is "fetch" (Streams×Rows at
// Window) or "persist" (Concurrency clients for Duration).
const (
	// CompareClaims: a server with claims against the same server with
	// every claim won at once (server.WithoutClaims): what claiming a
	// channel in Redis costs.
	CompareClaims = "claims"
	// CompareReplicas: three servers that act as one against one server.
	CompareReplicas = "replicas"
	// CompareCluster: a server on a three-node Redis Cluster (which the
	// bench starts on ports of its own) against one on the single Redis:
	// classic pub/sub copies every message to every node.
	CompareCluster = "cluster"
	// CompareEventIDs: persists with an event id on every document against
	// plain persists, on the run's server: what storing each event id once
	// costs.
	CompareEventIDs = "event-ids"
	// CompareExpect: persists with an expected version on every request
	// against plain persists, on the run's server: what checking a
	// stream's version costs.
	CompareExpect = "expect"
)

// comparesWrites reports whether a comparison sets two kinds of persists
// side by side on the run's own server, rather than two set-ups.
func comparesWrites(compare string) bool {
	return compare == CompareEventIDs || compare == CompareExpect
}

// side is one side of a comparison: its servers, and the load's client.
type side struct {
	name    string
	srv     *server.Server // the first server, for its pool's figures
	fetcher fetcher
	cl      *client.Client
	writes  writes // what its persists carry
	stop    func()
}

// runCompare runs a compare scenario: the base side, then the variant,
// paired like a fetch or persist scenario's rounds; the ratio is the
// variant's over the base's.
func (e *env) runCompare(ctx context.Context, spec Spec, res *ScenarioResult) error {
	if e.srv == nil && !comparesWrites(spec.Compare) {
		return errors.New("a compare scenario starts servers of its own: it cannot run against a running server (--fetch-channel)")
	}
	var pids []string
	if spec.Load == "fetch" {
		var err error
		if pids, err = e.seed(ctx, spec.Streams, spec.Rows); err != nil {
			return err
		}
	}
	base, variant, err := e.compareSides(ctx, spec)
	if err != nil {
		return err
	}
	defer base.stop()
	defer variant.stop()
	mainSrv, mainFetcher, mainCl := e.srv, e.fetcher, e.cl
	defer func() { e.srv, e.fetcher, e.cl = mainSrv, mainFetcher, mainCl }()
	load := func(s side, label string, warmUp bool) (*Measure, error) {
		e.srv, e.fetcher, e.cl = s.srv, s.fetcher, s.cl
		e.settle()
		if spec.Load == "persist" {
			spec := spec
			if warmUp {
				spec.Duration = min(spec.Duration, phaseWarmUp)
			}
			return e.persistLoad(ctx, spec, label+" "+s.name, s.writes)
		}
		return e.fetchLoad(ctx, label+" "+s.name, pids, spec.Rows, spec.Window)
	}
	return e.pairedRounds(res, func(label string, warmUp bool) (*Measure, *Measure, error) {
		b, err := load(base, label, warmUp)
		if err != nil {
			return b, nil, err
		}
		v, err := load(variant, label, warmUp)
		return b, v, err
	})
}

// phaseWarmUp bounds the persist phases of a warm-up round.
const phaseWarmUp = time.Second

// compareSides starts the two sides of spec's comparison.
func (e *env) compareSides(ctx context.Context, spec Spec) (base, variant side, err error) {
	switch spec.Compare {
	case CompareClaims:
		if base, err = e.startSide(ctx, spec.Name+"-unclaimed", 1, nil, server.WithoutClaims()); err != nil {
			return side{}, side{}, err
		}
		variant, err = e.startSide(ctx, spec.Name+"-claimed", 1, nil)
	case CompareReplicas:
		if base, err = e.startSide(ctx, spec.Name+"-one", 1, nil); err != nil {
			return side{}, side{}, err
		}
		variant, err = e.startSide(ctx, spec.Name+"-three", 3, nil)
	case CompareCluster:
		if base, err = e.startSide(ctx, spec.Name+"-single", 1, nil); err != nil {
			return side{}, side{}, err
		}
		cluster, cerr := localcluster.Start(3)
		if cerr != nil {
			base.stop()
			return side{}, side{}, cerr
		}
		variant, err = e.startSide(ctx, spec.Name+"-cluster", 1, cluster.Addrs)
		if err != nil {
			cluster.Stop()
		} else {
			stop := variant.stop
			variant.stop = func() { stop(); cluster.Stop() }
		}
	case CompareEventIDs, CompareExpect:
		// One server, the run's; two loads.
		base = side{name: "plain", srv: e.srv, fetcher: e.fetcher, cl: e.cl, stop: func() {}}
		variant = base
		variant.name, variant.writes = spec.Compare, eventIDWrites
		if spec.Compare == CompareExpect {
			variant.writes = expectWrites
		}
	default:
		return side{}, side{}, fmt.Errorf("unknown comparison %q: %w", spec.Compare, ErrConfig)
	}
	if err != nil {
		base.stop()
		return side{}, side{}, err
	}
	return base, variant, nil
}

// startSide starts n in-process servers that act as one (the same request
// channels), on the cluster of nodes when nodes is set, and the load's
// clients: the driver's fetcher and a client.Client for persists, each on
// the same Redis as the servers.
func (e *env) startSide(ctx context.Context, name string, n int, nodes []string, opts ...server.Option) (side, error) {
	s := side{name: name}
	var stops []func()
	s.stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	var scfg server.Config
	for range n {
		cfg, srv, stop, err := e.startSideServer(ctx, name, func(c *server.Config) {
			if len(nodes) > 0 {
				c.Redis.Cluster = nodes
			}
		}, opts...)
		if err != nil {
			s.stop()
			return side{}, err
		}
		stops = append(stops, stop)
		if s.srv == nil {
			s.srv, scfg = srv, cfg
		}
	}
	// The load's Redis: the single one, or the cluster through its last
	// node (every node hears every publish).
	var rdb, wireRdb redis.UniversalClient = e.rdb, e.wireRdb
	if len(nodes) > 0 {
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: nodes})
		node := redis.NewClient(&redis.Options{Addr: nodes[len(nodes)-1]})
		rdb, wireRdb = cc, node
		stops = append(stops, func() { _ = cc.Close(); _ = node.Close() })
	}
	p := e.sidePrefix(name)
	s.cl = client.New(rdb, client.WithFetchChannel(scfg.FetchChannel), client.WithPersistChannel(scfg.PersistChannel),
		client.WithChannelPrefix(p+"r:"), client.WithReason())
	stops = append(stops, func() { _ = s.cl.Close() })
	s.fetcher = clientFetcher{s.cl}
	if e.cfg.Driver == DriverWire {
		node, ok := wireRdb.(*redis.Client)
		if !ok {
			s.stop()
			return side{}, errors.New("the wire driver needs one Redis node")
		}
		w := newWireFetcher(node, scfg.FetchChannel, p+"w:", func(err error) {
			e.log.Warn("wire driver publish", slog.String("side", name), slog.Any("err", err))
		})
		stops = append(stops, w.close)
		s.fetcher = w
	}
	return s, nil
}
