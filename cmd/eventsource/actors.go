package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/eventsource/eventsource/supervision"
)

func init() {
	register("actors", "print the live actor tree of a server; 'actors stop NAME' ends one stream", runActors)
}

// adminPage is how many entries one GET /actors asks for: the most the
// admin listener gives (admin.MaxPage).
const adminPage = 1000

// adminFlags are the flags that reach a server's admin listener.
type adminFlags struct {
	addr, token string
}

func (a *adminFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&a.addr, "admin", "127.0.0.1:9090", "the server's admin listener, `host:port` or an http(s) URL")
	// The variable is read after parsing, not as the flag's default, so
	// that -h does not print the secret.
	fs.StringVar(&a.token, "token", "", "bearer token of the admin listener (default $EVENTSOURCE_ADMIN_TOKEN)")
}

// client checks --admin and returns a client of that listener; a bad
// address is a usage error.
func (a *adminFlags) client(fs *flag.FlagSet) (*adminClient, error) {
	if a.token == "" {
		a.token = os.Getenv("EVENTSOURCE_ADMIN_TOKEN")
	}
	base, err := adminURL(a.addr)
	if err != nil {
		return nil, usageError(fs, "--admin %q: %v", a.addr, err)
	}
	return &adminClient{base: base, token: a.token, http: &http.Client{Timeout: 10 * time.Second}}, nil
}

// adminURL turns "host:port" or "http(s)://host:port[/prefix]" into the
// base URL the admin paths are joined to.
func adminURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, err
		}
		s = "http://" + s
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	case u.Host == "":
		return nil, errors.New("no host")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("want no query or fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// adminClient speaks to one admin listener.
type adminClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// statusError is an answer other than the one wanted. A 4xx will not get
// better by asking again.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func (c *adminClient) do(ctx context.Context, method, path string, query url.Values) (int, []byte, error) {
	return c.request(ctx, method, path, query, nil)
}

// request sends one request to the admin listener, with a JSON body when
// body is not nil, and reads the answer.
func (c *adminClient) request(ctx context.Context, method, path string, query url.Values, body []byte) (int, []byte, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var content io.Reader
	if body != nil {
		content = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), content)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, u.Redacted(), err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		msg := "the admin listener wants a token: give --token or set EVENTSOURCE_ADMIN_TOKEN"
		if c.token != "" {
			msg = "the admin listener refused the token"
		}
		return 0, nil, &statusError{code: resp.StatusCode, msg: msg}
	}
	return resp.StatusCode, answer, nil
}

// actorList is every entry, as the server sent it and decoded.
type actorList struct {
	raw     []json.RawMessage
	entries []supervision.Entry
}

// list pages through GET /actors until it has every matching entry. The
// tree changes while it pages: an entry seen twice is kept once, and one
// that moved across a page boundary may be missed, as with any listing of
// a live system.
func (c *adminClient) list(ctx context.Context, f supervision.Filter) (actorList, error) {
	var all actorList
	seen := map[string]bool{}
	for offset := 0; ; {
		q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(adminPage)}}
		for k, v := range map[string]string{"kind": f.Kind, "state": f.State, "prefix": f.ChannelPrefix} {
			if v != "" {
				q.Set(k, v)
			}
		}
		code, body, err := c.do(ctx, http.MethodGet, "/actors", q)
		if err != nil {
			return actorList{}, err
		}
		if code != http.StatusOK {
			return actorList{}, &statusError{code: code, msg: fmt.Sprintf("GET /actors: %d %s: %s", code, http.StatusText(code), firstLine(body))}
		}
		var page struct {
			Total  int               `json:"total"`
			Limit  int               `json:"limit"`
			Actors []json.RawMessage `json:"actors"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return actorList{}, fmt.Errorf("GET /actors: the answer is not a page of actors: %w", err)
		}
		for _, raw := range page.Actors {
			var e supervision.Entry
			if err := json.Unmarshal(raw, &e); err != nil {
				return actorList{}, fmt.Errorf("GET /actors: an entry is not an actor: %w", err)
			}
			if seen[e.Name] {
				continue
			}
			seen[e.Name] = true
			all.raw = append(all.raw, raw)
			all.entries = append(all.entries, e)
		}
		offset += len(page.Actors)
		if len(page.Actors) == 0 || len(page.Actors) < page.Limit || offset >= page.Total {
			return all, nil
		}
	}
}

// stop asks the server to end one actor; false when it has none by that
// name.
func (c *adminClient) stop(ctx context.Context, name string) (bool, error) {
	code, body, err := c.do(ctx, http.MethodPost, "/actors/"+url.PathEscape(name)+"/stop", nil)
	switch {
	case err != nil:
		return false, err
	case code == http.StatusOK:
		return true, nil
	case code == http.StatusNotFound:
		return false, nil
	default:
		return false, &statusError{code: code, msg: fmt.Sprintf("POST /actors/%s/stop: %d %s: %s", name, code, http.StatusText(code), firstLine(body))}
	}
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

func runActors(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "stop" {
		return runActorsStop(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("actors", "[--admin host:port] [--kind K] [--state S] [--prefix P] [--json] [--watch [--interval 1s]]\n       eventsource actors stop [--admin host:port] NAME", stderr)
	var admin adminFlags
	admin.bind(fs)
	var f supervision.Filter
	fs.StringVar(&f.Kind, "kind", "", "only actors of this kind (router, stream, persist)")
	fs.StringVar(&f.State, "state", "", "only actors in this state (running, reading, streaming, waiting, ending, ...)")
	fs.StringVar(&f.ChannelPrefix, "prefix", "", "only actors whose channel starts with this")
	asJSON := fs.Bool("json", false, "print the entries as a JSON array (with --watch: one array per line and refresh)")
	watch := fs.Bool("watch", false, "refresh until interrupted: in place on a terminal, else separated by a line of dashes")
	interval := fs.Duration("interval", time.Second, "time between refreshes with --watch")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["interval"] && !*watch {
		return usageError(fs, "--interval needs --watch")
	}
	if *interval <= 0 {
		return usageError(fs, "--interval %s is not positive", *interval)
	}
	c, err := admin.client(fs)
	if err != nil {
		return err
	}
	v := actorsView{client: c, filter: f, json: *asJSON, out: stdout}
	if !*watch {
		list, err := c.list(ctx, f)
		if err != nil {
			return fmt.Errorf("actors: %w", err)
		}
		var buf bytes.Buffer
		if err := v.render(&buf, list, false); err != nil {
			return err
		}
		_, err = stdout.Write(buf.Bytes())
		return err
	}
	v.tty = isTerminal(stdout)
	return v.watch(ctx, *interval, stderr)
}

// isTerminal reports whether w is a terminal, which --watch redraws in
// place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// actorsView prints the tree, once or with --watch.
type actorsView struct {
	client *adminClient
	filter supervision.Filter
	json   bool
	tty    bool
	out    io.Writer
}

// ANSI: cursor home, clear the screen.
const clearScreen = "\x1b[H\x1b[2J"

// watch refreshes every interval until ctx ends (Ctrl-C), which is a
// clean exit. A server that cannot be reached is reported and asked again;
// an answer that will not change (a refused token, a bad filter) ends it.
func (v actorsView) watch(ctx context.Context, interval time.Duration, stderr io.Writer) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for n := 0; ; n++ {
		var buf bytes.Buffer
		list, err := v.client.list(ctx, v.filter)
		if ctx.Err() != nil {
			return nil
		}
		var se *statusError
		switch {
		case errors.As(err, &se) && se.code >= 400 && se.code < 500:
			return fmt.Errorf("actors: %w", err)
		case err != nil:
			fmt.Fprintf(stderr, "eventsource actors: %v (retrying every %s)\n", err, interval)
		default:
			if v.tty && !v.json {
				buf.WriteString(clearScreen)
				fmt.Fprintf(&buf, "eventsource actors · %s · %d actors · %s · Ctrl-C to quit\n\n",
					v.client.base.Redacted(), len(list.entries), time.Now().Format("15:04:05"))
			} else if n > 0 && !v.json {
				buf.WriteString(watchSeparator)
			}
			if err := v.render(&buf, list, true); err != nil {
				return err
			}
			if _, err := v.out.Write(buf.Bytes()); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// watchSeparator goes between two refreshes when stdout is not a terminal.
const watchSeparator = "----\n"

// render writes one listing: the tree, or JSON (compact, one line, when
// watching).
func (v actorsView) render(w *bytes.Buffer, list actorList, watching bool) error {
	if v.json {
		raw := list.raw
		if raw == nil {
			raw = []json.RawMessage{}
		}
		var b []byte
		var err error
		if watching {
			b, err = json.Marshal(raw)
		} else {
			b, err = json.MarshalIndent(raw, "", "  ")
		}
		if err != nil {
			return err
		}
		w.Write(b)
		w.WriteByte('\n')
		return nil
	}
	writeTree(w, list.entries)
	return nil
}

// writeTree prints entries as an indented tree like pstree: each actor
// under its parent, children sorted by name, columns aligned. An actor
// whose parent is not listed (filtered out, or already gone) is shown at
// the top.
func writeTree(w io.Writer, entries []supervision.Entry) {
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name] = true
	}
	children := map[string][]supervision.Entry{}
	var roots []supervision.Entry
	for _, e := range entries {
		if e.Parent != "" && names[e.Parent] && e.Parent != e.Name {
			children[e.Parent] = append(children[e.Parent], e)
		} else {
			roots = append(roots, e)
		}
	}
	byName := func(s []supervision.Entry) {
		sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name })
	}
	byName(roots)
	for _, c := range children {
		byName(c)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.DiscardEmptyColumns)
	visited := map[string]bool{}
	var walk func(e supervision.Entry, lead, branch string)
	walk = func(e supervision.Entry, lead, branch string) {
		if visited[e.Name] { // a cycle would be a server bug; print it once
			return
		}
		visited[e.Name] = true
		fmt.Fprintln(tw, lead+branch+e.Name+"\t"+strings.Join(entryCells(e), "\t"))
		kids := children[e.Name]
		next := lead
		switch branch {
		case "├─ ":
			next += "│  "
		case "└─ ":
			next += "   "
		}
		for i, k := range kids {
			b := "├─ "
			if i == len(kids)-1 {
				b = "└─ "
			}
			walk(k, next, b)
		}
	}
	for _, r := range roots {
		walk(r, "", "")
	}
	tw.Flush()
}

// entryCells are the columns after the name: state, then what a stream
// has (empty for other kinds, so that every age lines up), age, and the
// last error if any.
func entryCells(e supervision.Entry) []string {
	cells := []string{e.State, "", "", "", ""}
	if e.Kind == "stream" {
		cells[1] = "rows " + strconv.FormatInt(e.RowsSent, 10)
		cells[2] = "credit " + strconv.FormatInt(e.Credit, 10)
		cells[3] = "unaccepted " + strconv.FormatInt(e.Unaccepted, 10)
	}
	if e.Deadline != nil {
		// The server's clock: started plus age is its now, so the time
		// left does not depend on this machine's clock.
		now := e.Started.Add(time.Duration(e.AgeSeconds * float64(time.Second)))
		cells[4] = "deadline " + seconds(e.Deadline.Sub(now).Seconds())
	}
	cells = append(cells, "age "+seconds(e.AgeSeconds))
	if e.LastError != "" {
		cells = append(cells, "error "+strconv.Quote(e.LastError))
	}
	return cells
}

func seconds(s float64) string { return strconv.FormatFloat(s, 'f', 1, 64) + "s" }

func runActorsStop(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("actors stop", "[--admin host:port] [--token T] NAME", stderr)
	var admin adminFlags
	admin.bind(fs)
	// Flags may come before or after NAME.
	if err := parseOnly(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError(fs, "give the name of the actor to stop (as 'eventsource actors' lists it, e.g. stream:CHANNEL)")
	}
	name := fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return err
	}
	if name == "" {
		return usageError(fs, "the name is empty")
	}
	c, err := admin.client(fs)
	if err != nil {
		return err
	}
	stopped, err := c.stop(ctx, name)
	switch {
	case err != nil:
		return fmt.Errorf("actors stop: %w", err)
	case !stopped:
		return fmt.Errorf("actors stop: no running stream named %s", name)
	}
	_, err = fmt.Fprintf(stdout, "stopped %s\n", name)
	return err
}
