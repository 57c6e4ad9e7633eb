// Package nginx_test checks eventsource.conf: the settings event streams
// need, against the gateway's defaults; nginx -t on it when nginx is
// installed; and then, through a real nginx in front of a real server,
// that an event posted reaches an open stream at once (nothing buffered)
// and that a session's requests meet in one server.
package nginx_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/internal/testserver"
)

const confFile = "eventsource.conf"

// directive is one nginx directive, with its block if it has one.
type directive struct {
	name  string
	args  []string
	block []*directive
	line  int
}

// parse reads nginx configuration text: directives end with ";" or a
// block in braces; # starts a comment; quotes group words.
func parse(t *testing.T, text string) []*directive {
	t.Helper()
	type token struct {
		s    string
		line int
		word bool
	}
	var toks []token
	line := 1
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			toks = append(toks, token{string(c), line, false})
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(text[i+1:], c)
			if j < 0 {
				t.Fatalf("line %d: unterminated quote", line)
			}
			toks = append(toks, token{text[i+1 : i+1+j], line, true})
			i += j + 2
		default:
			j := i
			for j < len(text) && !strings.ContainsRune(" \t\r\n;{}#", rune(text[j])) {
				j++
			}
			toks = append(toks, token{text[i:j], line, true})
			i = j
		}
	}
	var block func(depth int) []*directive
	pos := 0
	block = func(depth int) []*directive {
		var out []*directive
		var cur *directive
		for pos < len(toks) {
			tk := toks[pos]
			pos++
			switch {
			case tk.word && cur == nil:
				cur = &directive{name: tk.s, line: tk.line}
			case tk.word:
				cur.args = append(cur.args, tk.s)
			case tk.s == ";" && cur != nil:
				out = append(out, cur)
				cur = nil
			case tk.s == "{" && cur != nil:
				cur.block = block(depth + 1)
				out = append(out, cur)
				cur = nil
			case tk.s == "}" && cur == nil && depth > 0:
				return out
			default:
				t.Fatalf("line %d: unexpected %q", tk.line, tk.s)
			}
		}
		if cur != nil || depth > 0 {
			t.Fatal("unexpected end of file")
		}
		return out
	}
	return block(0)
}

func all(ds []*directive, name string) []*directive {
	var out []*directive
	for _, d := range ds {
		if d.name == name {
			out = append(out, d)
		}
	}
	return out
}

// value is the arguments of the one directive name in ds (the last if
// repeated), joined by spaces.
func value(ds []*directive, name string) string {
	found := all(ds, name)
	if len(found) == 0 {
		return ""
	}
	return strings.Join(found[len(found)-1].args, " ")
}

// nginxTime parses an nginx time: "60", "60s", "1m", "500ms".
func nginxTime(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// nginxSize parses an nginx size: "1m", "512k", "1048576".
func nginxSize(s string) (int64, error) {
	mult := int64(1)
	switch strings.ToLower(s[len(s)-1:]) {
	case "k":
		mult, s = 1<<10, s[:len(s)-1]
	case "m":
		mult, s = 1<<20, s[:len(s)-1]
	case "g":
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

func readConf(t *testing.T) (string, []*directive) {
	t.Helper()
	b, err := os.ReadFile(confFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), parse(t, string(b))
}

// TestConfSettings checks, without nginx, what the gateway's streams and
// sessions need of the proxy.
func TestConfSettings(t *testing.T) {
	t.Parallel()
	_, conf := readConf(t)
	gw := gateway.DefaultConfig()

	upstreams := map[string]*directive{}
	for _, u := range all(conf, "upstream") {
		upstreams[u.args[0]] = u
	}
	var tlsServer *directive
	for _, s := range all(conf, "server") {
		for _, l := range all(s.block, "listen") {
			if strings.Contains(strings.Join(l.args, " "), "ssl") {
				tlsServer = s
			}
		}
	}
	if tlsServer == nil {
		t.Fatal("no server block listens with ssl: TLS ends at the proxy")
	}
	srv := tlsServer.block
	if value(srv, "ssl_certificate") == "" || value(srv, "ssl_certificate_key") == "" {
		t.Error("the TLS server has no ssl_certificate or ssl_certificate_key")
	}

	// Settings every location inherits unless it says otherwise.
	inherited := func(loc *directive, name string) string {
		if v := value(loc.block, name); v != "" {
			return v
		}
		return value(srv, name)
	}
	locations := all(srv, "location")
	if len(locations) == 0 {
		t.Fatal("the TLS server has no location")
	}
	var sessionsRouted bool
	for _, loc := range locations {
		where := fmt.Sprintf("location %s (line %d)", strings.Join(loc.args, " "), loc.line)
		if v := inherited(loc, "proxy_buffering"); v != "off" {
			t.Errorf("%s: proxy_buffering %q, want off: nginx would hold events back", where, v)
		}
		if v := inherited(loc, "proxy_http_version"); v != "1.1" {
			t.Errorf("%s: proxy_http_version %q, want 1.1 (streamed responses, kept connections)", where, v)
		}
		connection := false
		for _, d := range all(append(append([]*directive{}, srv...), loc.block...), "proxy_set_header") {
			connection = connection || (len(d.args) == 2 && strings.EqualFold(d.args[0], "Connection") && d.args[1] == "")
		}
		if !connection {
			t.Errorf(`%s: want proxy_set_header Connection ""`, where)
		}
		read, err := nginxTime(inherited(loc, "proxy_read_timeout"))
		if err != nil || read < 2*gw.Heartbeat {
			t.Errorf("%s: proxy_read_timeout %q, want at least twice --http-heartbeat (%s): idle streams are cut otherwise",
				where, inherited(loc, "proxy_read_timeout"), gw.Heartbeat)
		}
		if v := inherited(loc, "gzip"); v == "on" {
			t.Errorf("%s: gzip on holds events back", where)
		}
		if strings.Contains(strings.ToLower(inherited(loc, "proxy_ignore_headers")), "x-accel-buffering") {
			t.Errorf("%s: proxy_ignore_headers X-Accel-Buffering drops the gateway's own no-buffering header", where)
		}
		if strings.Contains(inherited(loc, "proxy_next_upstream"), "non_idempotent") {
			t.Errorf("%s: proxy_next_upstream non_idempotent may persist an event twice", where)
		}
		pass := value(loc.block, "proxy_pass")
		name := strings.TrimPrefix(pass, "http://")
		up, ok := upstreams[name]
		if !ok {
			t.Errorf("%s: proxy_pass %q is not one of the upstreams", where, pass)
			continue
		}
		if len(loc.args) == 1 && strings.HasPrefix(loc.args[0], "/sessions") {
			sessionsRouted = true
			if len(all(up.block, "hash")) == 0 && len(all(up.block, "ip_hash")) == 0 && len(all(up.block, "sticky")) == 0 {
				t.Errorf("%s: upstream %s must send a client to one server (hash, ip_hash or sticky): sessions live in the server that made them", where, name)
			}
		}
		for _, admin := range []string{"/metrics", "/actors", "/consumers", "/replicas", "/admin"} {
			if strings.HasPrefix(loc.args[len(loc.args)-1], admin) {
				t.Errorf("%s: the admin listener's endpoints are not for the public", where)
			}
		}
	}
	if !sessionsRouted {
		t.Error("no location /sessions: every /sessions/{id}/... of a client must reach the server that made the session")
	}

	// Every upstream lists the same servers.
	var first []string
	for name, u := range upstreams {
		var servers []string
		for _, s := range all(u.block, "server") {
			servers = append(servers, s.args[0])
		}
		if len(servers) == 0 {
			t.Errorf("upstream %s lists no server", name)
		}
		if first == nil {
			first = servers
		} else if strings.Join(first, " ") != strings.Join(servers, " ") {
			t.Errorf("upstreams list different servers: %q and %q", first, servers)
		}
	}

	body, err := nginxSize(value(srv, "client_max_body_size"))
	if err != nil || body < gw.MaxBodyBytes {
		t.Errorf("client_max_body_size %q, want at least --http-max-body (%d)", value(srv, "client_max_body_size"), gw.MaxBodyBytes)
	}
}

// nginxBinary finds nginx, or skips.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("nginx is not installed (Debian: apt-get install nginx): eventsource.conf is not tried in nginx")
	return ""
}

// certificate writes a self-signed certificate for events.example.com.
func certificate(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "events.example.com"},
		DNSNames: []string{"events.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// wrap writes a whole nginx.conf around a copy of eventsource.conf, edited
// by edit, with every path nginx writes in dir.
func wrap(t *testing.T, dir string, edit func(string) string, main string) string {
	t.Helper()
	text, _ := readConf(t)
	certPath, keyPath := certificate(t, dir)
	certs := regexp.MustCompile(`(?m)^(\s*ssl_certificate(_key)?)\s+\S+;`)
	text = certs.ReplaceAllStringFunc(text, func(s string) string {
		if strings.Contains(s, "ssl_certificate_key") {
			return "    ssl_certificate_key " + keyPath + ";"
		}
		return "    ssl_certificate " + certPath + ";"
	})
	text = edit(text)
	if err := os.WriteFile(filepath.Join(dir, confFile), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := ""
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		paths += fmt.Sprintf("    %s_temp_path %s;\n", p, filepath.Join(dir, p))
	}
	conf := fmt.Sprintf(`%s
pid %s;
error_log %s;
events { worker_connections 1024; }
http {
    access_log off;
%s    include %s;
}
`, main, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"), paths, filepath.Join(dir, confFile))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNginxAccepts runs nginx -t on eventsource.conf as it is, but for its
// certificates.
func TestNginxAccepts(t *testing.T) {
	t.Parallel()
	bin := nginxBinary(t)
	dir := t.TempDir()
	conf := wrap(t, dir, func(s string) string { return s }, "worker_processes 1;")
	out, err := exec.Command(bin, "-t", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestThroughNginx puts nginx, configured by eventsource.conf, in front of
// a server's gateway and checks over HTTPS (HTTP/2) that an event posted
// through it reaches a stream opened through it within a second, and that
// a session made through it answers its stream through it.
func TestThroughNginx(t *testing.T) {
	t.Parallel()
	bin := nginxBinary(t)
	_, dbName := testserver.Database(t, "es_nginx")
	prefix := "es-nginx-" + testserver.RandomHex(6) + ":"
	cfg := testserver.Config(t, dbName, prefix)
	cfg.Admin = ""
	cfg.HTTP = gateway.DefaultConfig()
	cfg.HTTP.Addr, cfg.HTTP.Anonymous = "127.0.0.1:0", true
	srv := testserver.Start(t, cfg, nil)
	backend := srv.HTTPAddr().String()

	dir := t.TempDir()
	httpsPort, httpPort := freePort(t), freePort(t)
	upstreamServer := regexp.MustCompile(`(?m)^(\s*server) \d+\.\d+\.\d+\.\d+:\d+`)
	conf := wrap(t, dir, func(s string) string {
		s = upstreamServer.ReplaceAllString(s, "${1} "+backend)
		s = regexp.MustCompile(`(?m)^\s*listen \[::\].*$`).ReplaceAllString(s, "")
		s = strings.Replace(s, "listen 443 ", fmt.Sprintf("listen 127.0.0.1:%d ", httpsPort), 1)
		return strings.Replace(s, "listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", httpPort), 1)
	}, "daemon off;\nmaster_process off;")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				t.Logf("nginx error.log:\n%s", b)
			}
		}
	})

	base := fmt.Sprintf("https://127.0.0.1:%d", httpsPort)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: "events.example.com"}, //nolint:gosec // our own certificate
		ForceAttemptHTTP2: true,
	}}
	t.Cleanup(client.CloseIdleConnections)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Errorf("GET / through nginx: %s, want HTTP/2", resp.Proto)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not answer on %s: %v", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	post := func(path, body string) (int, []byte) {
		t.Helper()
		resp, err := client.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// stream opens an event stream and returns its lines.
	stream := func(path string) <-chan string {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("GET %s: %s %s", path, resp.Status, resp.Header.Get("Content-Type"))
		}
		lines := make(chan string, 64)
		go func() {
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		return lines
	}
	expect := func(lines <-chan string, want string, within time.Duration) {
		t.Helper()
		timer := time.NewTimer(within)
		defer timer.Stop()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the stream ended before %q", want)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-timer.C:
				t.Fatalf("no %q through nginx within %s: buffered?", want, within)
			}
		}
	}

	events := stream("/events?domain=nginx")
	expect(events, ": connected", 5*time.Second)
	if code, body := post("/events", `{"pid":"p","domain":"nginx","name":"through","data":{"n":1}}`); code != http.StatusCreated {
		t.Fatalf("POST /events through nginx: %d %s", code, body)
	}
	expect(events, "event: through", time.Second)

	code, body := post("/sessions", "")
	var session struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &session); code != http.StatusCreated || err != nil || session.ID == "" {
		t.Fatalf("POST /sessions through nginx: %d %s", code, body)
	}
	lines := stream("/sessions/" + session.ID + "/stream")
	expect(lines, "event: registered", 5*time.Second)
	if code, body := post("/sessions/"+session.ID+"/listen", `{"key":"domain:nginx"}`); code != http.StatusOK {
		t.Fatalf("listen through nginx: %d %s", code, body)
	}
	if code, body := post("/events", `{"pid":"p","domain":"nginx","name":"again","data":{}}`); code != http.StatusCreated {
		t.Fatalf("POST /events through nginx: %d %s", code, body)
	}
	expect(lines, "event: notify", time.Second)
}
