package gateway_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eventsource/eventsource/server"
)

// token signs claims: read and write domains, a subject, an expiry.
func token(t *testing.T, method jwt.SigningMethod, key any, sub string, read, write []string, exp time.Duration) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": sub, "eventsource": map[string][]string{"read": read, "write": write}}
	if exp != 0 {
		claims["exp"] = time.Now().Add(exp).Unix()
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authCase is one request and the status it must get.
type authCase struct {
	name, method, path, body, token string
	status                          int
}

func runAuthCases(t *testing.T, h *harness, cases []authCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, h.base+tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			res := h.send(req)
			defer res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("%s %s: status %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
			}
			if tc.status >= 400 {
				var body struct{ Error, Code string }
				if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Error == "" {
					t.Fatalf("error body: %+v %v", body, err)
				}
			}
		})
	}
}

const orderEvent = `{"pid":"o1","domain":"orders","name":"created","data":{}}`

// The claims say which domains a token reads and writes; tokens must
// verify (signature, algorithm, expiry).
func TestTokensHS256(t *testing.T) {
	t.Parallel()
	secret := []byte("test-secret-" + strings.Repeat("x", 32))
	h := start(t, func(c *server.Config) { c.HTTP.Anonymous, c.HTTP.JWTSecret = false, string(secret) })
	hs := func(read, write []string) string {
		return token(t, jwt.SigningMethodHS256, secret, "alice", read, write, time.Hour)
	}
	writer := hs([]string{"orders"}, []string{"orders"})
	reader := hs([]string{"orders"}, nil)
	all := hs([]string{"*"}, []string{"*"})
	expired := token(t, jwt.SigningMethodHS256, secret, "alice", []string{"*"}, []string{"*"}, -time.Minute)
	forged := token(t, jwt.SigningMethodHS256, []byte("another secret, long enough to sign"), "alice", []string{"*"}, []string{"*"}, time.Hour)
	unsigned := token(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "alice", []string{"*"}, []string{"*"}, time.Hour)
	runAuthCases(t, h, []authCase{
		{"no token", "POST", "/events", orderEvent, "", 401},
		{"no token, stream", "GET", "/events?domain=orders", "", "", 401},
		{"expired", "POST", "/events", orderEvent, expired, 401},
		{"forged", "POST", "/events", orderEvent, forged, 401},
		{"alg none", "POST", "/events", orderEvent, unsigned, 401},
		{"garbage", "POST", "/events", orderEvent, "not.a.token", 401},
		{"writer writes", "POST", "/events", orderEvent, writer, 201},
		{"writer, other domain", "POST", "/events", `[` + orderEvent + `,{"pid":"x","domain":"billing","name":"n","data":1}]`, writer, 403},
		{"reader may not write", "POST", "/events", orderEvent, reader, 403},
		{"reader, other domain", "GET", "/events?domain=billing", "", reader, 403},
		{"star writes anywhere", "POST", "/events", `{"pid":"x","domain":"billing","name":"n","data":1}`, all, 201},
		{"session", "POST", "/sessions", "", reader, 201},
	})
	// EventSource cannot send headers: the token rides in access_token.
	s := h.open("/events?domain=orders&since=0&access_token="+reader, nil)
	s.expect("created")
	status, _ := h.do("GET", "/events?domain=orders&access_token="+forged, "", "")
	if status != 401 {
		t.Fatalf("forged access_token: %d", status)
	}
}

func TestTokensRS256(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "jwt.pub")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	// Anonymous on: a missing token passes, a bad one does not.
	h := start(t, func(c *server.Config) { c.HTTP.JWTPublicKeyFile = file })
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	reader := token(t, jwt.SigningMethodRS256, key, "bob", []string{"orders"}, nil, time.Hour)
	writer := token(t, jwt.SigningMethodRS256, key, "bob", nil, []string{"orders"}, time.Hour)
	wrongKey := token(t, jwt.SigningMethodRS256, other, "bob", []string{"*"}, []string{"*"}, time.Hour)
	// An HS256 token signed with the public key's bytes must not pass as
	// RS256 (algorithm confusion).
	confused := token(t, jwt.SigningMethodHS256, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "bob", []string{"*"}, []string{"*"}, time.Hour)
	runAuthCases(t, h, []authCase{
		{"anonymous", "POST", "/events", orderEvent, "", 201},
		{"writer", "POST", "/events", orderEvent, writer, 201},
		{"reader may not write", "POST", "/events", orderEvent, reader, 403},
		{"writer may not read", "GET", "/events?domain=orders", "", writer, 403},
		{"wrong key", "POST", "/events", orderEvent, wrongKey, 401},
		{"algorithm confusion", "POST", "/events", orderEvent, confused, 401},
	})
	s := h.open("/events?domain=orders&since=0&access_token="+reader, nil)
	s.expect("created")
}

// A session belongs to the subject that made it; listening and fetching
// follow the token's read claims.
func TestSessionTokens(t *testing.T) {
	t.Parallel()
	secret := "session-secret-" + strings.Repeat("y", 32)
	h := start(t, func(c *server.Config) { c.HTTP.Anonymous, c.HTTP.JWTSecret = false, secret })
	alice := token(t, jwt.SigningMethodHS256, []byte(secret), "alice", []string{"orders"}, []string{"orders"}, time.Hour)
	mallory := token(t, jwt.SigningMethodHS256, []byte(secret), "mallory", []string{"*"}, []string{"*"}, time.Hour)
	status, b := h.do("POST", "/events", `[{"pid":"o1","domain":"orders","name":"n","data":1},{"pid":"o1","domain":"billing","name":"n","data":2}]`, mallory)
	if status != 201 {
		t.Fatalf("seed: %d %s", status, b)
	}
	status, b = h.do("POST", "/sessions", "", alice)
	if status != 201 {
		t.Fatalf("create: %d %s", status, b)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(b, &created)
	path := "/sessions/" + created.ID
	fetchAll := `{"type":"fetch","query":{"$select":{"$where":{"pid":"o1"}}}}`
	runAuthCases(t, h, []authCase{
		{"another subject", "POST", path + "/listen", `{"key":"domain:orders"}`, mallory, 404},
		{"another subject's stream", "GET", path + "/stream", "", mallory, 404},
		{"unreadable domain", "POST", path + "/listen", `{"key":"domain:billing"}`, alice, 403},
		{"readable domain", "POST", path + "/listen", `{"key":"domain:orders"}`, alice, 200},
		{"pid key", "POST", path + "/listen", `{"key":"pid:o1"}`, alice, 200},
		{"write elsewhere", "POST", path + "/tasks", `{"type":"persist","events":[{"pid":"x","domain":"billing","name":"n","data":1}]}`, alice, 403},
		{"fetch another table", "POST", path + "/tasks", `{"type":"fetch","query":{"$select":{"$from":"mysql.user"}}}`, alice, 403},
		{"fetch", "POST", path + "/tasks", fetchAll, alice, 202},
	})
	// The fetch sees only the readable domain's rows; the pid key only
	// its events.
	s := h.open(path+"/stream?access_token="+alice, nil)
	s.expect("registered")
	var rows []string
	for {
		m, ok := s.next(10 * time.Second)
		if !ok {
			t.Fatal("stream ended")
		}
		if m.event == "completed" {
			break
		}
		if m.event == "row" {
			rows = append(rows, m.data)
		}
	}
	if len(rows) != 1 || !strings.Contains(rows[0], `"domain":"orders"`) {
		t.Fatalf("fetch rows %v, want the one orders row", rows)
	}
	h.do("POST", "/events", `{"pid":"o1","domain":"billing","name":"hidden","data":1}`, mallory)
	h.do("POST", "/events", `{"pid":"o1","domain":"orders","name":"shown","data":1}`, mallory)
	for {
		m := s.expect("notify")
		if strings.Contains(m.data, "hidden") {
			t.Fatalf("pid key delivered an unreadable domain's event: %s", m.data)
		}
		if strings.Contains(m.data, `"key":"pid:o1"`) && strings.Contains(m.data, "shown") {
			break
		}
	}
}

// Tokens without exp are refused unless the operator accepts them, and a
// session needs a subject: tokens without sub would share each other's.
func TestTokensNeedExpiryAndSubject(t *testing.T) {
	t.Parallel()
	secret := "claims-secret-" + strings.Repeat("w", 32)
	strict := start(t, func(c *server.Config) { c.HTTP.Anonymous, c.HTTP.JWTSecret = false, secret })
	lenient := start(t, func(c *server.Config) {
		c.HTTP.Anonymous, c.HTTP.JWTSecret, c.HTTP.JWTAllowNoExp = false, secret, true
	})
	forever := token(t, jwt.SigningMethodHS256, []byte(secret), "alice", []string{"*"}, []string{"*"}, 0)
	nobody := token(t, jwt.SigningMethodHS256, []byte(secret), "", []string{"*"}, []string{"*"}, time.Hour)
	t.Run("strict", func(t *testing.T) {
		runAuthCases(t, strict, []authCase{
			{"no exp", "POST", "/events", orderEvent, forever, 401},
			{"no exp, stream", "GET", "/events?domain=orders", "", forever, 401},
			{"no sub writes", "POST", "/events", orderEvent, nobody, 201},
			{"no sub, session", "POST", "/sessions", "", nobody, 403},
		})
		status, b := strict.do("POST", "/events", orderEvent, forever)
		if status != 401 || !strings.Contains(string(b), "--jwt-allow-no-exp") {
			t.Fatalf("no exp: %d %s, want 401 naming --jwt-allow-no-exp", status, b)
		}
	})
	t.Run("lenient", func(t *testing.T) {
		runAuthCases(t, lenient, []authCase{
			{"no exp", "POST", "/events", orderEvent, forever, 201},
			{"no sub, session", "POST", "/sessions", "", nobody, 403},
		})
	})
}

// listeners-changed shows a subject that reads only some domains the keys
// of those domains alone: never another subject's pid keys.
func TestListenersChangedShowsReadableKeys(t *testing.T) {
	t.Parallel()
	secret := "watch-secret-" + strings.Repeat("v", 32)
	h := start(t, func(c *server.Config) { c.HTTP.Anonymous, c.HTTP.JWTSecret = false, secret })
	alice := token(t, jwt.SigningMethodHS256, []byte(secret), "alice", []string{"orders"}, nil, time.Hour)
	bob := token(t, jwt.SigningMethodHS256, []byte(secret), "bob", []string{"*"}, nil, time.Hour)
	watcher, _ := h.tokenSession(alice, "listeners-changed")
	admin, _ := h.tokenSession(bob, "listeners-changed")
	h.tokenSession(bob, "pid:customer-secret-42", "domain:billing", "domain:orders")
	// Each watcher hears a payload per change; domain:orders is the last
	// key listened to.
	last := func(s *sse) map[string]int {
		t.Helper()
		var keys map[string]int
		for keys["domain:orders"] != 1 {
			m := s.expect("notify")
			var n struct{ Keys map[string]int }
			if err := json.Unmarshal([]byte(m.data), &n); err != nil {
				t.Fatal(err)
			}
			keys = n.Keys
		}
		return keys
	}
	if keys := last(watcher); len(keys) != 2 || keys["listeners-changed"] != 2 {
		t.Fatalf("alice sees %v, want listeners-changed and domain:orders only", keys)
	}
	if keys := last(admin); keys["pid:customer-secret-42"] != 1 || keys["domain:billing"] != 1 {
		t.Fatalf("bob, who reads every domain, sees %v", keys)
	}
}
