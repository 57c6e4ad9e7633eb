package gateway

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the gateway's part of the server configuration.
// cmd/eventsource builds it from flags; zero values are noted per field.
type Config struct {
	// Addr is the listen address, host:port; empty means no gateway.
	Addr string
	// Anonymous lets a request without a token read and write every
	// domain. A request with a bad token is refused all the same.
	Anonymous bool
	// JWTSecret verifies HS256 tokens; empty: none.
	JWTSecret string
	// JWTPublicKeyFile names a PEM file with the RSA public key that
	// verifies RS256 tokens; empty: none.
	JWTPublicKeyFile string
	// JWTAllowNoExp accepts tokens without an expiry (exp), which would
	// otherwise be valid for ever; refused by default.
	JWTAllowNoExp bool
	// CORSOrigins are the origins that may call the gateway from a page
	// they serve ("*": any). Empty: none but the gateway's own page.
	CORSOrigins []string
	// MaxConnections bounds concurrent requests, open streams included;
	// past it a request gets 429 (0: no limit, and none of the shares
	// below either).
	MaxConnections int
	// StreamShare is the share of MaxConnections that open streams may
	// hold together; the rest is kept for other requests, so that streams
	// cannot starve POST /events (0: 0.9; 1: nothing kept).
	StreamShare float64
	// SubjectStreams is the share of MaxConnections one subject may hold
	// as open streams (0: 0.25). A subject is the token's sub, or the
	// client's address for a request without a token or a token without
	// a sub. Each share is rounded down, but is at least 1.
	SubjectStreams float64
	// SubjectRequests is the share of MaxConnections one subject may hold
	// as other requests in progress (0: 0.25).
	SubjectRequests float64
	// ReadHeaderTimeout bounds reading a request's headers (0: 5 s).
	ReadHeaderTimeout time.Duration
	// ReadBodyTimeout bounds reading a request's body, from the end of
	// its headers; a request whose body takes longer gets 408 and frees
	// its slot (0: 10 s).
	ReadBodyTimeout time.Duration
	// MaxBodyBytes bounds a request body (0: 1 MiB).
	MaxBodyBytes int64
	// Heartbeat is the interval of ": heartbeat" comments on idle streams
	// (0: 15 s).
	Heartbeat time.Duration
	// Retry is the reconnection delay streams announce (0: 3 s).
	Retry time.Duration
	// Buffer is how many messages a stream may have queued for a slow
	// reader; past it the reader gets "reconnect" (0: 1,024).
	Buffer int
	// SessionHistory is how many recent messages a session keeps, to
	// resume a stream after Last-Event-ID (0: 4,096).
	SessionHistory int
	// SessionGrace is how long a session lives without a stream before it
	// is dropped (0: 30 s).
	SessionGrace time.Duration
	// MaxSessions bounds live sessions (0: 10,000).
	MaxSessions int
	// MaxKeys bounds the keys one session listens to (0: 64).
	MaxKeys int
	// MaxTasks bounds the tasks one session runs at once (0: 16).
	MaxTasks int
	// TickInterval is the period of the "tick" key (0: 1 s).
	TickInterval time.Duration
	// WriteTimeout bounds one write to a client; a stream whose write
	// takes longer is closed (0: 30 s).
	WriteTimeout time.Duration
	// PageSize is the rows a replay or fetch task reads at a time
	// (0: 256).
	PageSize int
	// MaxBufferedRows bounds a fetch whose result cannot be paged (0:
	// 100,000).
	MaxBufferedRows int
	// ReadTimeout bounds each read of a fetch task (0: none); the server
	// passes its --mysql-read-timeout.
	ReadTimeout time.Duration
}

// Enabled reports whether the gateway is configured.
func (c Config) Enabled() bool { return c.Addr != "" }

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	set := func(dst *int, v int) {
		if *dst <= 0 {
			*dst = v
		}
	}
	setD := func(dst *time.Duration, v time.Duration) {
		if *dst <= 0 {
			*dst = v
		}
	}
	setF := func(dst *float64, v float64) {
		if *dst <= 0 {
			*dst = v
		}
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	setF(&c.StreamShare, 0.9)
	setF(&c.SubjectStreams, 0.25)
	setF(&c.SubjectRequests, 0.25)
	setD(&c.ReadHeaderTimeout, 5*time.Second)
	setD(&c.ReadBodyTimeout, 10*time.Second)
	setD(&c.Heartbeat, 15*time.Second)
	setD(&c.Retry, 3*time.Second)
	set(&c.Buffer, 1024)
	set(&c.SessionHistory, 4096)
	setD(&c.SessionGrace, 30*time.Second)
	set(&c.MaxSessions, 10000)
	set(&c.MaxKeys, 64)
	set(&c.MaxTasks, 16)
	setD(&c.TickInterval, time.Second)
	setD(&c.WriteTimeout, 30*time.Second)
	set(&c.PageSize, 256)
	set(&c.MaxBufferedRows, 100000)
	return c
}

// Validate reports every problem at once. A gateway that can let nobody
// in (no key and not anonymous) is a configuration error.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	_, _, err := net.SplitHostPort(c.Addr)
	check(err == nil, "http address %q: want host:port", c.Addr)
	check(c.Anonymous || c.JWTSecret != "" || c.JWTPublicKeyFile != "",
		"the HTTP gateway admits nobody: set a JWT secret, a JWT public key, or anonymous access")
	check(c.JWTSecret == "" || c.JWTPublicKeyFile == "", "set a JWT secret (HS256) or a JWT public key (RS256), not both")
	check(c.MaxConnections >= 0, "http max connections must not be negative, got %d", c.MaxConnections)
	check(c.MaxBodyBytes >= 0, "http max body bytes must not be negative, got %d", c.MaxBodyBytes)
	for _, f := range []struct {
		name  string
		share float64
	}{{"http stream share", c.StreamShare}, {"http subject streams", c.SubjectStreams}, {"http subject requests", c.SubjectRequests}} {
		// Written so that NaN fails too.
		check(f.share >= 0 && f.share <= 1, "%s must be a share between 0 and 1, got %v", f.name, f.share)
	}
	check(c.ReadHeaderTimeout >= 0, "http read header timeout must not be negative, got %s", c.ReadHeaderTimeout)
	check(c.ReadBodyTimeout >= 0, "http read body timeout must not be negative, got %s", c.ReadBodyTimeout)
	for _, o := range c.CORSOrigins {
		check(o != "", "an empty CORS origin")
	}
	return errors.Join(errs...)
}

// DefaultConfig is the configuration with every default spelled out, and
// no address: the gateway is off until one is set.
func DefaultConfig() Config {
	return Config{MaxConnections: 10000}.withDefaults()
}
