package server

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/eventsource/eventsource/actors"
	"github.com/eventsource/eventsource/redisbus"
	"github.com/eventsource/eventsource/replicas"
	"github.com/redis/go-redis/v9"
)

// newKeeper makes this server's claims keeper: its group is the servers
// that hear the same fetch channel.
func (s *Server) newKeeper() *replicas.Keeper {
	cfg := s.cfg.Replicas
	cfg.Group, cfg.FinishedChannel = s.cfg.FetchChannel, s.cfg.FinishedChannel
	host, _ := os.Hostname()
	cfg.Server = replicas.Replica{ID: cfg.Server.ID, Host: host, Version: s.cfg.Version, Started: time.Now().UTC().Truncate(time.Second), Admin: s.cfg.Admin}
	hooks := replicas.Hooks{
		Lost: func(channel string) {
			if s.router != nil {
				s.system.Root.Send(s.router, actors.ClaimLost{Channel: channel})
			}
		},
		Claimed:         s.metrics.Claimed,
		Reaped:          s.metrics.OrphansEnded,
		TerminalDropped: s.metrics.TerminalDropped,
	}
	var k *replicas.Keeper
	hooks.Streams = func() int { return k.Held() }
	k = replicas.New(s.rdb, s.pub, cfg, hooks, s.logger)
	s.metrics.WatchTerminals(k.WaitingTerminals)
	return k
}

// connectRedis makes the server's go-redis client, of one Redis or of a
// cluster (Redis.Cluster), checks that it answers, and returns the options
// and the topology of the server's own connections.
func (s *Server) connectRedis(ctx context.Context) (*redis.Options, redisbus.Topology, error) {
	cfg := s.cfg.Redis
	if len(cfg.Cluster) == 0 {
		// Context deadlines bound the keeper's and the readiness probe's
		// commands: a frozen Redis must not hold them for a read timeout.
		opt, err := cfg.Options() // TLS and ACL user too: redisbus dials with them
		if err != nil {
			return nil, nil, fmt.Errorf("connect to redis %s: %w", cfg.Addr(), err)
		}
		opt.ContextTimeoutEnabled = true
		rdb := redis.NewClient(opt)
		s.rdb = rdb
		if err := rdb.Ping(ctx).Err(); err != nil {
			return nil, nil, fmt.Errorf("connect to redis %s: %w", cfg.Addr(), err)
		}
		return rdb.Options(), redisbus.SingleNode(cfg.Addr()), nil
	}
	copt, err := cfg.ClusterOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("connect to redis cluster %s: %w", strings.Join(cfg.Cluster, ","), err)
	}
	copt.ContextTimeoutEnabled = true
	cc := redis.NewClusterClient(copt)
	s.rdb = cc
	if err := cc.Ping(ctx).Err(); err != nil {
		return nil, nil, fmt.Errorf("connect to redis cluster %s: %w", strings.Join(cfg.Cluster, ","), err)
	}
	topo, err := redisbus.NewClusterTopology(ctx, cc, s.logger)
	if err != nil {
		return nil, nil, fmt.Errorf("redis cluster %s: %w", strings.Join(cfg.Cluster, ","), err)
	}
	return redisbus.ConnOptions(cc.Options()), topo, nil
}

// ServerID is this server's id among the servers on the same Redis.
func (s *Server) ServerID() string { return s.keeper.ID() }

// Replicas lists the live servers on the same Redis (admin.Backend).
func (s *Server) Replicas(ctx context.Context) ([]replicas.Replica, error) {
	return replicas.List(ctx, s.rdb, s.cfg.FetchChannel)
}

// claims is what decides who answers a request: the keeper, unless the
// server runs WithoutClaims.
func (s *Server) claims() actors.Claims {
	if s.options.noClaims {
		return unclaimed{s.pub}
	}
	return claims{s.keeper}
}

// claims adapts the keeper to what the actors ask of it.
type claims struct{ k *replicas.Keeper }

func (c claims) Claim(channel string, reason, takeover bool, done func(actors.Claim, error)) {
	c.k.Claim(channel, reason, takeover, func(cl *replicas.Claim, err error) {
		if cl == nil {
			done(nil, err) // not a typed nil in the interface
			return
		}
		done(cl, err)
	})
}

func (c claims) Finish(cl actors.Claim, payloads [][]byte, done func(bool, error)) {
	c.k.Finish(cl.(*replicas.Claim), payloads, done)
}

// WithoutClaims runs the server as if it were the only one on its Redis:
// every request's claim is won at once, with no Redis round trip, and a
// terminal is published as it is. For measuring what claims cost (the
// bench); never for serving, since a second server would then answer every
// request too.
func WithoutClaims() Option {
	return func(o *options) { o.noClaims = true }
}

// unclaimed is the Claims of a server without claims.
type unclaimed struct{ pub *redisbus.Publisher }

// unclaimedChannel is a claim that always holds.
type unclaimedChannel string

func (unclaimedChannel) Valid() bool { return true }

func (u unclaimed) Claim(channel string, _, _ bool, done func(actors.Claim, error)) {
	done(unclaimedChannel(channel), nil)
}

func (u unclaimed) Finish(c actors.Claim, payloads [][]byte, done func(bool, error)) {
	channel := string(c.(unclaimedChannel))
	if len(payloads) == 0 {
		if done != nil {
			done(true, nil)
		}
		return
	}
	for i, p := range payloads {
		var published func(error)
		if i == len(payloads)-1 && done != nil {
			published = func(err error) { done(err == nil, err) }
		}
		if err := u.pub.Publish(channel, p, published); err != nil {
			if done != nil {
				done(false, err)
			}
			return
		}
	}
}
