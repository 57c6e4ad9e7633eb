package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/redisbus"
)

const (
	// controlTimeout bounds the PSUBSCRIBE of the client's pattern, and
	// the "end" sent after a call. These never take the caller's
	// deadline: the "end" must go out after a cancellation too.
	controlTimeout = 5 * time.Second
	// inboxSlack is room in a call's buffer beyond its window: the terminal
	// and a stray echo of the client's own "end".
	inboxSlack = 3
	// publishWorkers are the client's publishing connections: a call's
	// channel always uses the same one, so its messages keep their order,
	// and each sends what queued while it wrote as one pipeline.
	publishWorkers = 4
)

// Client talks to eventsource servers through Redis, one Redis or a Redis
// Cluster. Build it with New and Close it when done.
type Client struct {
	rdb redis.UniversalClient
	// sub hears every response channel of the client on one connection;
	// pub publishes requests, "accepted" and "end" on a few pipelined
	// ones. Both are the server's own (package redisbus): one wire
	// implementation on both ends.
	sub *redisbus.Subscriber
	pub *redisbus.Publisher
	cfg config
	// unusable, when set, is why every call fails (New was given a redis
	// client it cannot take options from).
	unusable error

	// prefix is cfg.prefix plus a random token, so that two clients with the
	// same configured prefix never share a response channel.
	prefix string
	seq    atomic.Uint64

	// The client PSUBSCRIBEs once to every channel under its prefix, so a
	// call needs no SUBSCRIBE and UNSUBSCRIBE round trips of its own.
	// patternMu serialises the subscription; subscribed says Redis
	// confirmed it on the current connection.
	patternMu  sync.Mutex
	subscribed atomic.Bool

	mu     sync.Mutex
	calls  map[string]*call // response channel to the call that owns it
	closed bool

	closeOnce sync.Once

	// serversSeen is when a cluster last showed a subscriber of a request
	// channel (unix nanoseconds; see hasServer).
	serversSeen atomic.Int64
}

type config struct {
	fetchChannel   string
	persistChannel string
	prefix         string
	timeout        time.Duration
	reason         bool
	logger         *slog.Logger
}

// Option configures a Client.
type Option func(*config)

// WithFetchChannel sets the request channel of Fetch (default "fetch").
func WithFetchChannel(name string) Option { return func(c *config) { c.fetchChannel = name } }

// WithPersistChannel sets the request channel of Persist (default "persist").
func WithPersistChannel(name string) Option { return func(c *config) { c.persistChannel = name } }

// WithChannelPrefix sets the prefix of the response channels the client
// makes up (default "eventsource:"). Each channel is the prefix, a random
// token per Client and a sequence number.
func WithChannelPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithTimeout bounds each call whose context has no deadline: a Persist
// from start to reply, a Fetch from the start of the range to its last row.
// Zero, the default, leaves such calls to their context.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithReason asks the server for the reason of every "error" terminal of a
// Fetch, which then arrives as a *ServerError with Reason and Message set.
// Persists always ask for reasons (see PersistQuery).
func WithReason() Option { return func(c *config) { c.reason = true } }

// WithLogger has the client log its connections' failures (lost, redialed)
// to logger; by default it logs nothing, since every failure also reaches
// the calls it affects.
func WithLogger(logger *slog.Logger) Option { return func(c *config) { c.logger = logger } }

// New returns a client that talks to Redis as rdb is configured (address,
// credentials, TLS, client name, timeouts): rdb is a *redis.Client, or a
// *redis.ClusterClient, whose seed nodes it uses (classic pub/sub reaches
// every node of a cluster). The client dials connections of its own, one
// that hears replies and a few that publish, in the background: a
// connection problem shows in the calls. It uses rdb itself only to ask a
// cluster which nodes have servers; Close stops the client, and it does
// not close rdb.
func New(rdb redis.UniversalClient, opts ...Option) *Client {
	cfg := config{
		fetchChannel:   "fetch",
		persistChannel: "persist",
		prefix:         "eventsource:",
		logger:         slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	c := &Client{
		rdb:    rdb,
		cfg:    cfg,
		prefix: cfg.prefix + randomToken() + ":",
		calls:  map[string]*call{},
	}
	var opt *redis.Options
	var topo redisbus.Topology
	switch r := rdb.(type) {
	case *redis.Client:
		opt = r.Options()
		topo = redisbus.SingleNode(opt.Addr)
	case *redis.ClusterClient:
		opt = redisbus.ConnOptions(r.Options())
		topo = redisbus.AnyNode(r.Options().Addrs)
	default:
		c.unusable = fmt.Errorf("client.New takes a *redis.Client or a *redis.ClusterClient, not a %T: %w", rdb, ErrClosed)
		c.closed = true
		return c
	}
	c.sub = redisbus.NewSubscriber(opt, c.hear, cfg.logger, redisbus.SubscribeOn(topo),
		redisbus.WithFilter(func(channel, payload []byte, _ uint64) bool {
			c.route(channel, false, payload)
			return true
		}),
		redisbus.WithPatternFilter(func(_, channel, payload []byte, _ uint64) bool {
			c.route(channel, true, payload)
			return true
		}))
	c.pub = redisbus.NewPublisher(opt, publishWorkers, 0, cfg.logger, redisbus.OnTopology(topo, nil))
	return c
}

// hear takes what the subscriber tells besides messages: confirmations,
// and the loss of its connection.
func (c *Client) hear(event any) {
	switch e := event.(type) {
	case messages.Subscribed:
		if !e.Pattern {
			c.direct(e.Channel)
		}
	case messages.BusInterrupted:
		// Whatever was published meanwhile is gone: the calls running
		// now cannot trust their streams. The subscriber redials and
		// subscribes again by itself; the next call waits for the pattern.
		c.subscribed.Store(false)
		c.interrupt(e.Err)
	}
}

// requestSize is room for req's JSON, so that encoding it allocates once.
func requestSize(req messages.Request) int {
	return len(req.Channel) + len(req.Query) + 96
}

func randomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Close ends the calls still running with ErrClosed, closes the
// subscriber and sends what is queued to publish. Only the first Close
// does anything; later ones return ErrClosed.
func (c *Client) Close() error {
	first := c.markClosed(ErrClosed)
	var err error
	c.closeOnce.Do(func() {
		if c.sub != nil {
			err = c.sub.Close()
			c.pub.Close()
		}
	})
	switch {
	case !first || c.unusable != nil:
		return ErrClosed
	case err != nil:
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// markClosed refuses new calls and ends those under way with err. It
// reports false when the client was closed already.
func (c *Client) markClosed(err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	for _, cl := range c.calls {
		cl.fail(err)
	}
	return true
}

// route hands a payload to its call without blocking; it runs on the
// subscriber's goroutine, with channel and payload valid only meanwhile.
// viaPattern says the message came through the client's pattern, not a
// subscription of the channel itself.
func (c *Client) route(channel []byte, viaPattern bool, payload []byte) {
	// The client hears its own "accepted" on the channel; dropping it here
	// keeps a call's buffer down to what the server sends.
	if bytes.Equal(payload, messages.AcceptedJSON) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.calls[string(channel)]
	if !ok {
		return // a late message for a call that has ended
	}
	if cl.exact && cl.direct == viaPattern {
		// Once the channel's own subscription is confirmed, Redis sends
		// every message twice: as a message, then as a pmessage of the
		// pattern. Before, only the pmessage comes.
		return
	}
	select {
	case cl.inbox <- bytes.Clone(payload): // the one copy: Row keeps it
	default:
		cl.fail(fmt.Errorf("more than %d messages in flight on %s: %w", cap(cl.inbox), cl.channel, ErrProtocol))
	}
}

// pattern matches every response channel of the client, and only those:
// the prefix with Redis's glob characters escaped, then anything.
func (c *Client) pattern() string {
	return globEscaper.Replace(c.prefix) + "*"
}

var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// subscribe makes sure the client's pattern subscription is confirmed, so
// that a server's first message on a new channel cannot be lost. Only the
// first call waits for Redis (and the first after a reconnection); a
// failure is retried by the next call.
func (c *Client) subscribe(ctx context.Context) error {
	if c.subscribed.Load() {
		return nil
	}
	c.patternMu.Lock()
	defer c.patternMu.Unlock()
	if c.subscribed.Load() {
		return nil
	}
	subCtx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	// Redis out of reach fails the call as soon as a dial fails, as
	// go-redis's own dial would, rather than when its context ends.
	if err := c.sub.PSubscribeWait(subCtx, c.pattern()); err != nil {
		return fmt.Errorf("psubscribe %s: %w", c.pattern(), busError(err))
	}
	c.subscribed.Store(true)
	return nil
}

func (c *Client) interrupt(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.calls {
		cl.fail(fmt.Errorf("%w: %w", ErrInterrupted, err))
	}
}

// direct notes that the channel's own subscription is confirmed: from now
// on its messages come through it.
func (c *Client) direct(channel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.calls[channel]; ok && cl.exact {
		cl.direct = true
	}
}

// subscribeChannel SUBSCRIBEs the call's own channel, besides the
// pattern: a followed stream's server counts the channel's subscribers
// (PUBSUB NUMSUB, which leaves patterns out) to tell that its client is
// still there. Nothing waits for Redis to confirm it: the pattern hears
// the channel meanwhile, and route switches over at the confirmation.
func (c *Client) subscribeChannel(ctx context.Context, cl *call) error {
	c.mu.Lock()
	cl.exact = true
	c.mu.Unlock()
	if err := c.sub.Subscribe(ctx, cl.channel); err != nil {
		return fmt.Errorf("subscribe %s: %w", cl.channel, busError(err))
	}
	return nil
}

// call is one request in flight: its response channel and what the reader
// has delivered for it.
type call struct {
	channel string
	inbox   chan []byte
	// exact says the call subscribes its channel itself (subscribeChannel)
	// and direct that Redis confirmed it; both under Client.mu.
	exact, direct bool
	broken        chan struct{} // closed by fail
	// err is written with Client.mu held, and read after broken is closed,
	// which orders it.
	err error
}

// fail ends the call with err unless it has failed already. Client.mu held.
func (cl *call) fail(err error) {
	if cl.err != nil {
		return
	}
	cl.err = err
	close(cl.broken)
}

// begin opens a call on a fresh response channel that may have up to
// inbox messages in flight. The channel is under the client's pattern
// subscription, confirmed before the first call: whatever the server
// publishes there is heard.
func (c *Client) begin(ctx context.Context, inbox int) (*call, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.unusable != nil {
		return nil, c.unusable
	}
	if err := c.subscribe(ctx); err != nil {
		return nil, err
	}
	name := c.prefix + strconv.FormatUint(c.seq.Add(1), 10)
	if err := messages.ValidateChannel(name, 0); err != nil {
		return nil, fmt.Errorf("response channel %q: %w", name, err)
	}
	cl := &call{
		channel: name,
		inbox:   make(chan []byte, inbox),
		broken:  make(chan struct{}),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	c.calls[name] = cl
	return cl, nil
}

// finish forgets the call: what still arrives on its channel is dropped.
// A call that subscribed its channel unsubscribes it, best effort.
func (c *Client) finish(cl *call) {
	c.mu.Lock()
	delete(c.calls, cl.channel)
	exact, closed := cl.exact, c.closed
	c.mu.Unlock()
	if exact && !closed {
		_ = c.sub.Unsubscribe(context.Background(), cl.channel)
	}
}

// request publishes req on a request channel. PUBLISH counts who heard it;
// zero means no server is listening, and waiting would be in vain.
func (c *Client) request(ctx context.Context, channel string, req messages.Request) error {
	// req.Query was checked by encodeQuery.
	n, err := c.publishWait(ctx, channel, req.AppendJSON(make([]byte, 0, requestSize(req))))
	if err != nil {
		return fmt.Errorf("publish request on %s: %w", channel, err)
	}
	if n == 0 && !c.hasServer(ctx, channel) {
		return fmt.Errorf("publish request on %s: %w", channel, ErrNoServer)
	}
	return nil
}

// hasServer tells, on a Redis Cluster, whether some node has a subscriber
// of the request channel: there PUBLISH counts only the subscribers of the
// node that ran it. An answer that some node has one holds for a second.
// On one Redis, PUBLISH counted them all: none.
func (c *Client) hasServer(ctx context.Context, channel string) bool {
	cc, ok := c.rdb.(*redis.ClusterClient)
	if !ok {
		return false
	}
	if time.Since(time.Unix(0, c.serversSeen.Load())) < time.Second {
		return true
	}
	var found atomic.Bool
	_ = cc.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		if n, err := node.PubSubNumSub(ctx, channel).Result(); err == nil && n[channel] > 0 {
			found.Store(true)
		}
		return nil
	})
	if found.Load() {
		c.serversSeen.Store(time.Now().UnixNano())
	}
	return found.Load()
}

// publish queues payload on channel without waiting for Redis; done, if
// not nil, hears the reply, on a publishing goroutine. A full queue (a
// burst beyond thousands of messages) makes the caller wait its turn.
func (c *Client) publish(ctx context.Context, channel string, payload []byte, done func(int64, error)) error {
	return busError(redisbus.WhenRoom(ctx, func() error { return c.pub.PublishCounted(channel, payload, done) }))
}

// publishWait publishes payload on channel and returns how many
// subscribers heard it. When ctx ends first the message may still go out.
func (c *Client) publishWait(ctx context.Context, channel string, payload []byte) (int64, error) {
	type reply struct {
		receivers int64
		err       error
	}
	replied := make(chan reply, 1)
	if err := c.publish(ctx, channel, payload, func(n int64, err error) { replied <- reply{n, err} }); err != nil {
		return 0, err
	}
	select {
	case r := <-replied:
		return r.receivers, busError(r.err)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// busError names the client's own ErrClosed for the connections' closing.
func busError(err error) error {
	if errors.Is(err, redisbus.ErrClosed) || errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// receive returns the next message of the call. Delivered messages come
// before a failure, since they arrived before whatever broke the call.
func (c *Client) receive(ctx context.Context, cl *call) ([]byte, error) {
	select {
	case p := <-cl.inbox:
		return p, nil
	default:
	}
	select {
	case p := <-cl.inbox:
		return p, nil
	case <-cl.broken:
		return nil, cl.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// withTimeout applies the client's default timeout to a context without a
// deadline.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.cfg.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.cfg.timeout)
}

// marshal encodes v without escaping <, > and &, which encoding/json does
// by default and which would change the bytes of strings in queries.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// encodeQuery turns a query given as JSON text (json.RawMessage, []byte or
// string) or as a value to marshal into the JSON object of a request.
func encodeQuery(query any) (json.RawMessage, error) {
	var raw []byte
	valid := false
	switch q := query.(type) {
	case nil:
		return nil, fmt.Errorf("query is nil: %w", ErrInvalidQuery)
	case json.RawMessage:
		raw = q
	case []byte:
		raw = q
	case string:
		raw = []byte(q)
	default:
		b, err := marshal(q)
		if err != nil {
			return nil, fmt.Errorf("encode query: %w", err)
		}
		// What encoding/json writes is valid: no second scan.
		raw, valid = b, true
	}
	raw = bytes.TrimSpace(raw)
	if !valid && !json.Valid(raw) {
		return nil, fmt.Errorf("query is not valid JSON: %w", ErrInvalidQuery)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("query is not an object: %w", ErrInvalidQuery)
	}
	return raw, nil
}

// kind is what a message heard on a response channel means to the client.
type kind int

const (
	kindIgnore  kind = iota // anything the protocol lets the client skip
	kindObject              // a row, or the OK reply of a persist
	kindEnd                 // "end"
	kindTimeout             // "timeout"
	kindError               // "error", or an ErrorReply when reasons were asked for
)

// classify reads a payload heard on a response channel. With reasons on,
// an object of only "error" and "message" is taken for an ErrorReply: the
// protocol leaves that ambiguous with a row of just such columns.
func classify(payload []byte, reason bool) (kind, *ServerError) {
	b := bytes.TrimSpace(payload)
	if len(b) == 0 {
		return kindIgnore, nil
	}
	switch b[0] {
	case '{':
		if reason {
			if reply, ok := errorReply(b); ok {
				return kindError, &ServerError{Reason: reply.Error, Message: reply.Message}
			}
		}
		return kindObject, nil
	case '"':
		// The terminals as the server writes them, then any other
		// spelling JSON allows.
		switch string(b) {
		case `"` + messages.End + `"`:
			return kindEnd, nil
		case `"` + messages.Timeout + `"`:
			return kindTimeout, nil
		case `"` + messages.Error + `"`:
			return kindError, &ServerError{}
		}
		var s string
		if json.Unmarshal(b, &s) != nil {
			return kindIgnore, nil
		}
		switch s {
		case messages.End:
			return kindEnd, nil
		case messages.Timeout:
			return kindTimeout, nil
		case messages.Error:
			return kindError, &ServerError{}
		}
	}
	// Unknown strings are ignored, as the server ignores them: a later
	// version may add notices that older clients should skip.
	return kindIgnore, nil
}

func errorReply(b []byte) (messages.ErrorReply, bool) {
	// Rows and OK replies are most objects, and few mention the key: they
	// skip the decoder.
	if !bytes.Contains(b, []byte(`"error"`)) {
		return messages.ErrorReply{}, false
	}
	var reply messages.ErrorReply
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(&reply) != nil || reply.Error == "" {
		return messages.ErrorReply{}, false
	}
	return reply, true
}
