package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/eventsource/eventsource/server"
)

// bindHTTPFlags binds the HTTP gateway's flags of serve. The returned
// function completes the configuration after parsing: the environment
// fallbacks (read then, so that -h never prints a secret) and the lists.
func bindHTTPFlags(fs *flag.FlagSet, cfg *server.Config) func() error {
	h := &cfg.HTTP
	fs.StringVar(&h.Addr, "http", h.Addr, "HTTP gateway for browsers (SSE): listen `host:port` (empty: none)")
	anonymous := fs.Bool("anonymous", false, "HTTP gateway: requests without a token may read and write every domain (default $EVENTSOURCE_ANONYMOUS)")
	fs.StringVar(&h.JWTSecret, "jwt-secret", "", "HTTP gateway: HS256 secret that verifies bearer tokens (default $EVENTSOURCE_JWT_SECRET)")
	fs.StringVar(&h.JWTPublicKeyFile, "jwt-public-key", "", "HTTP gateway: PEM `file` with the RSA public key that verifies RS256 bearer tokens")
	fs.BoolVar(&h.JWTAllowNoExp, "jwt-allow-no-exp", false, "HTTP gateway: accept tokens without an expiry (exp), valid for ever")
	origins := fs.String("http-cors-origins", strings.Join(h.CORSOrigins, ","), "HTTP gateway: origins allowed to call it from their pages, comma-separated (\"*\": any)")
	fs.IntVar(&h.MaxConnections, "http-max-connections", h.MaxConnections, "HTTP gateway: concurrent requests and streams before 429 (0: no limit, nor any of the shares)")
	fs.Float64Var(&h.StreamShare, "http-stream-share", h.StreamShare, "HTTP gateway: share (0 to 1) of --http-max-connections open streams may hold together; the rest is kept for other requests")
	fs.Float64Var(&h.SubjectStreams, "http-subject-streams", h.SubjectStreams, "HTTP gateway: share (0 to 1) of --http-max-connections one subject (token sub, else client address) may hold as open streams")
	fs.Float64Var(&h.SubjectRequests, "http-subject-requests", h.SubjectRequests, "HTTP gateway: share (0 to 1) of --http-max-connections one subject may hold as other requests in progress")
	fs.DurationVar(&h.ReadHeaderTimeout, "http-read-header-timeout", h.ReadHeaderTimeout, "HTTP gateway: time to read a request's headers")
	fs.DurationVar(&h.ReadBodyTimeout, "http-read-body-timeout", h.ReadBodyTimeout, "HTTP gateway: time to read a request's body before 408")
	fs.Int64Var(&h.MaxBodyBytes, "http-max-body", h.MaxBodyBytes, "HTTP gateway: largest request body in bytes")
	fs.DurationVar(&h.Heartbeat, "http-heartbeat", h.Heartbeat, "HTTP gateway: interval of heartbeat comments on event streams")
	fs.IntVar(&h.Buffer, "http-buffer", h.Buffer, "HTTP gateway: messages queued for a slow stream reader before it is told to reconnect")
	fs.DurationVar(&h.SessionGrace, "http-session-grace", h.SessionGrace, "HTTP gateway: how long a session lives without a stream")
	fs.StringVar(&cfg.CommitChannel, "commit-channel", cfg.CommitChannel, "Redis channel where servers announce committed events to HTTP gateways")
	return func() error {
		if *origins != "" {
			h.CORSOrigins = strings.Split(*origins, ",")
		}
		if h.JWTSecret == "" {
			h.JWTSecret = os.Getenv("EVENTSOURCE_JWT_SECRET")
		}
		h.Anonymous = *anonymous
		if v := os.Getenv("EVENTSOURCE_ANONYMOUS"); v != "" && !anonymousSet(fs) {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("EVENTSOURCE_ANONYMOUS=%q: want 1, 0, true or false", v)
			}
			h.Anonymous = on
		}
		return nil
	}
}

// anonymousSet reports whether --anonymous was given, which wins over the
// environment.
func anonymousSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "anonymous" })
	return set
}
