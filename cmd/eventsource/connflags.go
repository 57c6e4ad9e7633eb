package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/server"
)

// bindRedisTLSFlags binds the Redis TLS flags of every command that
// reaches Redis, over t, whose values (from REDIS_TLS*) are the defaults.
func bindRedisTLSFlags(fs *flag.FlagSet, t *server.RedisTLS) {
	fs.BoolVar(&t.Enabled, "redis-tls", t.Enabled, "speak TLS to Redis, on every connection (REDIS_TLS)")
	fs.StringVar(&t.CA, "redis-tls-ca", t.CA, "PEM `file` of the CA certificates that verify Redis's (REDIS_TLS_CA; default: the system's roots)")
	fs.StringVar(&t.Cert, "redis-tls-cert", t.Cert, "PEM `file` of a client certificate, for a Redis with tls-auth-clients (REDIS_TLS_CERT)")
	fs.StringVar(&t.Key, "redis-tls-key", t.Key, "PEM `file` of the client certificate's key (REDIS_TLS_KEY)")
	fs.StringVar(&t.ServerName, "redis-tls-server-name", t.ServerName, "`name` Redis's certificate must carry (REDIS_TLS_SERVER_NAME; default: the host dialled)")
	fs.BoolVar(&t.Insecure, "redis-tls-insecure", t.Insecure, "do not verify Redis's certificate, for tests only (REDIS_TLS_INSECURE)")
}

// redisSecurity are the URL, ACL user and TLS settings of the client
// commands' Redis connections (redisFlags): flags over REDIS_URL,
// REDIS_USERNAME and REDIS_TLS*.
type redisSecurity struct {
	url      string
	username string
	tls      server.RedisTLS
	envErr   error // a bad REDIS_TLS* variable, reported by connect
}

// bind adds --redis-url and the TLS flags.
func (s *redisSecurity) bind(fs *flag.FlagSet) {
	s.username = os.Getenv("REDIS_USERNAME")
	s.tls, s.envErr = server.RedisTLSFromEnv(os.Getenv)
	fs.StringVar(&s.url, "redis-url", os.Getenv("REDIS_URL"), "Redis as a redis:// or rediss:// `URL` (user, password, db), used instead of --redis unless --redis is given (REDIS_URL; REDIS_USERNAME is read too)")
	bindRedisTLSFlags(fs, &s.tls)
}

// check reports bad REDIS_TLS* variables and TLS settings (t: after a
// URL's) as misuse.
func (s *redisSecurity) check(fs *flag.FlagSet, t server.RedisTLS) error {
	if s.envErr != nil {
		return usageError(fs, "%v", s.envErr)
	}
	if err := t.Check(); err != nil {
		return usageError(fs, "%v", err)
	}
	return nil
}

// config is the server package's view of the settings, over the password
// and database already in opts.
func (s *redisSecurity) config(fs *flag.FlagSet, opts *redis.Options) (server.RedisConfig, error) {
	rc := server.RedisConfig{Username: s.username, Password: opts.Password, DB: opts.DB, TLS: s.tls}
	host, port, err := net.SplitHostPort(opts.Addr)
	if err == nil {
		rc.Host = host
		rc.Port, err = strconv.Atoi(port)
	}
	if err != nil {
		return rc, usageError(fs, "--redis %q: want host:port", opts.Addr)
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "redis" })
	if s.url != "" && !explicit {
		if err := rc.ApplyURL(s.url); err != nil {
			return rc, usageError(fs, "--redis-url: %v", err)
		}
	}
	return rc, s.check(fs, rc.TLS)
}

// apply completes the options of one Redis: address, user, password and
// database from the URL if one is used, the ACL user, and TLS.
func (s *redisSecurity) apply(fs *flag.FlagSet, opts *redis.Options) error {
	rc, err := s.config(fs, opts)
	if err != nil {
		return err
	}
	o, err := rc.Options()
	if err != nil {
		return fmt.Errorf("redis %s: %w", rc.Addr(), err)
	}
	opts.Addr, opts.Username, opts.Password, opts.DB, opts.TLSConfig = o.Addr, o.Username, o.Password, o.DB, o.TLSConfig
	return nil
}

// clusterOptions are the options of the cluster of nodes, with the ACL
// user, REDIS_PASSWORD and TLS.
func (s *redisSecurity) clusterOptions(fs *flag.FlagSet, nodes []string) (*redis.ClusterOptions, error) {
	if err := s.check(fs, s.tls); err != nil {
		return nil, err
	}
	rc := server.RedisConfig{Cluster: nodes, Username: s.username, Password: os.Getenv("REDIS_PASSWORD"), TLS: s.tls}
	copt, err := rc.ClusterOptions()
	if err != nil {
		return nil, fmt.Errorf("redis cluster: %w", err)
	}
	return copt, nil
}
