package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Principal is who a request acts for: the token's subject and the domains
// its claims let it read and write.
type Principal struct {
	Subject string
	read    grant
	write   grant
	// anonymous is set for a request without a token, where anonymous
	// access is on.
	anonymous bool
}

// owner names who a session belongs to: the token's subject, or the
// anonymous requests together. A token without a subject owns no session.
func (p *Principal) owner() string {
	if p.anonymous {
		return "anonymous"
	}
	return "sub:" + p.Subject
}

// CanRead and CanWrite say whether p may read or write domain.
func (p *Principal) CanRead(domain string) bool  { return p.read.allows(domain) }
func (p *Principal) CanWrite(domain string) bool { return p.write.allows(domain) }

// readsAll reports whether p may read every domain.
func (p *Principal) readsAll() bool { return p.read.all }

// readable lists the domains p may read (empty when it reads all).
func (p *Principal) readable() []string { return p.read.domains }

// grant is a list of domains, "*" standing for all.
type grant struct {
	all     bool
	domains []string
}

func newGrant(domains []string) grant {
	g := grant{}
	for _, d := range domains {
		if d == "*" {
			return grant{all: true}
		}
		if d != "" && !slices.Contains(g.domains, d) {
			g.domains = append(g.domains, d)
		}
	}
	return g
}

func (g grant) allows(domain string) bool { return g.all || slices.Contains(g.domains, domain) }

// claims are the JWT claims the gateway reads:
//
//	{"sub": "...", "eventsource": {"read": ["orders", "*"], "write": ["orders"]}}
type claims struct {
	jwt.RegisteredClaims
	EventSource struct {
		Read  []string `json:"read"`
		Write []string `json:"write"`
	} `json:"eventsource"`
}

// anonymousPrincipal is who a request without a token acts for when
// anonymous access is on.
var anonymousPrincipal = &Principal{Subject: "", read: grant{all: true}, write: grant{all: true}, anonymous: true}

// authenticator verifies bearer tokens with one key.
type authenticator struct {
	anonymous bool
	key       any // []byte (HS256) or *rsa.PublicKey (RS256); nil: none
	parser    *jwt.Parser
}

func newAuthenticator(cfg Config) (*authenticator, error) {
	a := &authenticator{anonymous: cfg.Anonymous}
	// A token without exp would be valid for ever: refused unless the
	// operator says otherwise.
	expiry := jwt.WithExpirationRequired()
	if cfg.JWTAllowNoExp {
		expiry = func(*jwt.Parser) {}
	}
	switch {
	case cfg.JWTSecret != "":
		a.key = []byte(cfg.JWTSecret)
		a.parser = jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), expiry)
	case cfg.JWTPublicKeyFile != "":
		pem, err := os.ReadFile(cfg.JWTPublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read JWT public key: %w", err)
		}
		key, err := jwt.ParseRSAPublicKeyFromPEM(pem)
		if err != nil {
			return nil, fmt.Errorf("JWT public key %s: %w", cfg.JWTPublicKeyFile, err)
		}
		a.key = key
		a.parser = jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), expiry)
	}
	return a, nil
}

// authenticate finds the token (Authorization header, else the
// access_token parameter, which EventSource needs since it cannot set
// headers) and returns its principal.
func (a *authenticator) authenticate(r *http.Request) (*Principal, error) {
	token := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) == "" {
			return nil, newError(http.StatusUnauthorized, "unauthorized", "Authorization header: want \"Bearer <token>\"")
		}
		token = strings.TrimSpace(rest)
	} else {
		token = r.URL.Query().Get("access_token")
	}
	if token == "" {
		if a.anonymous {
			return anonymousPrincipal, nil
		}
		return nil, errUnauthorized
	}
	if a.key == nil {
		return nil, newError(http.StatusUnauthorized, "unauthorized", "this server accepts no tokens")
	}
	var c claims
	_, err := a.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.key, nil })
	if err != nil {
		return nil, newError(http.StatusUnauthorized, "unauthorized", "bad token: %s", tokenProblem(err))
	}
	return &Principal{Subject: c.Subject, read: newGrant(c.EventSource.Read), write: newGrant(c.EventSource.Write)}, nil
}

// tokenProblem names what is wrong with a token without echoing it.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "no expiry (exp); the server accepts such tokens only with --jwt-allow-no-exp"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "signature does not verify"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	}
	return "invalid"
}

type principalKey struct{}

// middleware authenticates every request and passes its principal on.
func (a *authenticator) middleware(next http.Handler, fail func(http.ResponseWriter, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r)
		if err != nil {
			fail(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// principal is the request's principal (set by the middleware).
func principal(r *http.Request) *Principal {
	p, _ := r.Context().Value(principalKey{}).(*Principal)
	if p == nil {
		return &Principal{}
	}
	return p
}
