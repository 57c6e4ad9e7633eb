package server

import (
	"context"
	"os"
	"time"

	"github.com/eventsource/eventsource/actors"
	"github.com/eventsource/eventsource/replicas"
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
		Claimed: s.metrics.Claimed,
		Reaped:  s.metrics.OrphansEnded,
	}
	var k *replicas.Keeper
	hooks.Streams = func() int { return k.Held() }
	k = replicas.New(s.rdb, s.pub, cfg, hooks, s.logger)
	return k
}

// ServerID is this server's id among the servers on the same Redis.
func (s *Server) ServerID() string { return s.keeper.ID() }

// Replicas lists the live servers on the same Redis (admin.Backend).
func (s *Server) Replicas(ctx context.Context) ([]replicas.Replica, error) {
	return replicas.List(ctx, s.rdb, s.cfg.FetchChannel)
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
