package gateway

import (
	"errors"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventsource/eventsource/metrics"
)

// routeKind says how a route holds its slot: a request until it is
// answered, a stream for as long as it is open.
type routeKind int

const (
	kindRequest routeKind = iota
	kindStream
)

// The limits a request can meet, as the limited metric names them.
const (
	limitGlobal          = metrics.HTTPLimitGlobal
	limitStreams         = metrics.HTTPLimitStreams
	limitSubjectStreams  = metrics.HTTPLimitSubjectStreams
	limitSubjectRequests = metrics.HTTPLimitSubjectRequests
	limitBodyTimeout     = metrics.HTTPLimitBodyTimeout
)

// admission decides which requests the gateway serves, so that neither
// one client nor one kind of request can take every slot: a global cap
// first, cheap and before anything is parsed; then, once the request is
// authenticated, a cap on the streams open together (the rest of the
// global cap is kept for plain requests, so POST /events gets through
// with the stream slots full) and per-subject caps on streams and on
// other requests. It also bounds how long a request body may take.
type admission struct {
	max        int64 // global cap; 0: no caps at all
	open       atomic.Int64
	maxStreams int64
	streams    atomic.Int64
	perSubject [2]int // by routeKind

	mu   sync.Mutex
	held map[heldKey]int // guarded by mu; an entry at zero is deleted

	bodyTimeout time.Duration
	metrics     *metrics.Metrics // nil: not counted
	fail        func(http.ResponseWriter, error)
}

type heldKey struct {
	subject string
	kind    routeKind
}

func newAdmission(cfg Config, m *metrics.Metrics, fail func(http.ResponseWriter, error)) *admission {
	a := &admission{max: int64(cfg.MaxConnections), held: map[heldKey]int{},
		bodyTimeout: cfg.ReadBodyTimeout, metrics: m, fail: fail}
	if cfg.MaxConnections > 0 {
		a.maxStreams = int64(shareOf(cfg.StreamShare, cfg.MaxConnections))
		a.perSubject[kindStream] = shareOf(cfg.SubjectStreams, cfg.MaxConnections)
		a.perSubject[kindRequest] = shareOf(cfg.SubjectRequests, cfg.MaxConnections)
	}
	return a
}

// shareOf is share of n, rounded down but at least 1. The epsilon keeps
// a share such as 0.29 of 100 at 29 despite binary floating point.
func shareOf(share float64, n int) int {
	return max(1, int(math.Floor(share*float64(n)+1e-9)))
}

// refuse answers err and counts it under limit.
func (a *admission) refuse(w http.ResponseWriter, limit string, err error) {
	a.count(limit)
	a.fail(w, err)
}

// count counts a request that met limit.
func (a *admission) count(limit string) {
	a.metrics.HTTPLimited(limit)
}

// global wraps the whole gateway: the global cap, and the body deadline.
func (a *admission) global(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.max > 0 {
			if n := a.open.Add(1); n > a.max {
				a.open.Add(-1)
				a.refuse(w, limitGlobal, tooMany("more than %d concurrent connections", a.max))
				return
			}
			defer a.open.Add(-1)
		}
		// A client that sends its body slowly would hold its slot for as
		// long as it liked. The deadline is on the connection: readBody
		// clears it once the body is in, since a read that hits it after
		// that (net/http's background read) would cancel the request's
		// context. Left set, it also bounds what net/http reads of an
		// unread body after the handler. A stream request with a body is
		// refused (see subject), so no open stream has a deadline.
		if r.ContentLength != 0 && a.bodyTimeout > 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(a.bodyTimeout)) // unsupported only by odd writers
		}
		next.ServeHTTP(w, r)
	})
}

// subject wraps an authenticated route of kind: the streams' share, then
// the subject's caps.
func (a *admission) subject(kind routeKind, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if kind == kindStream && r.ContentLength != 0 {
			// net/http reads an unread body before the response's
			// headers; a slow one would hold the stream's slot, and a
			// read deadline cannot bound it without ending the stream.
			a.fail(w, badRequest("a stream request takes no body"))
			return
		}
		if a.max <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		if kind == kindStream {
			if n := a.streams.Add(1); n > a.maxStreams {
				a.streams.Add(-1)
				a.refuse(w, limitStreams, tooMany("more than %d open streams", a.maxStreams))
				return
			}
			defer a.streams.Add(-1)
		}
		key := heldKey{subject: subjectKey(principal(r), r.RemoteAddr), kind: kind}
		if !a.hold(key) {
			who, what := "subject", "requests in progress"
			if strings.HasPrefix(key.subject, "addr:") {
				who = "client address"
			}
			limit := limitSubjectRequests
			if kind == kindStream {
				what, limit = "open streams", limitSubjectStreams
			}
			a.refuse(w, limit, tooMany("more than %d %s for one %s", a.perSubject[kind], what, who))
			return
		}
		defer a.release(key)
		next.ServeHTTP(w, r)
	})
}

func (a *admission) hold(k heldKey) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.held[k] >= a.perSubject[k.kind] {
		return false
	}
	a.held[k]++
	return true
}

func (a *admission) release(k heldKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.held[k]--; a.held[k] <= 0 {
		delete(a.held, k)
	}
}

// subjectKey names who a request counts against: the token's subject, or,
// for an anonymous request or a token without one, the client's address,
// so that with --anonymous one address cannot take everything. Behind a
// proxy every client has the proxy's address.
func subjectKey(p *Principal, remoteAddr string) string {
	if !p.anonymous && p.Subject != "" {
		return "sub:" + p.Subject
	}
	return "addr:" + clientAddr(remoteAddr)
}

// clientAddr is the host of remoteAddr; for IPv6 its /64, which one host
// is commonly given whole.
func clientAddr(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64) // cannot fail for an IPv6 address
		return p.String()
	}
	return ip.String()
}

// bodyTimedOut reports whether err is a body read that met the deadline
// global set.
func bodyTimedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
