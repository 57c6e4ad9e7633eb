package replicas

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/redisbus"
)

// Config says how the servers of a group keep claims and registrations.
// Zero durations take the defaults of Defaults.
type Config struct {
	// Group names the servers that act as one: those that hear the same
	// request channels (the server passes its fetch channel).
	Group string
	// FinishedChannel is where every ended claim is announced; each server
	// subscribes to it and passes what it hears to Finished (reserved: no
	// response channel).
	FinishedChannel string
	// Server describes this server in its registration; an empty ID gets
	// a random one.
	Server Replica
	// Lease is how long a claim holds without renewal; it is renewed every
	// third of it.
	Lease time.Duration
	// Registration is how long a registration holds without a heartbeat;
	// heartbeats go every fifth of it. A server silent for longer is taken
	// for dead.
	Registration time.Duration
	// ReapEvery is how often a server looks for dead ones.
	ReapEvery time.Duration
	// Tombstone is how long an ended claim keeps a lagging server from
	// serving its request again.
	Tombstone time.Duration
	// TerminalRetry is how long a terminal that could not be published is
	// sent again.
	TerminalRetry time.Duration
}

// Defaults: a dead server's streams hear "error" within Registration +
// ReapEvery (7 s) of its last heartbeat.
var Defaults = Config{Lease: 10 * time.Second, Registration: 5 * time.Second, ReapEvery: 2 * time.Second, Tombstone: 30 * time.Second,
	TerminalRetry: 30 * time.Second}

func (c Config) withDefaults() Config {
	if c.Lease <= 0 {
		c.Lease = Defaults.Lease
	}
	if c.Registration <= 0 {
		c.Registration = Defaults.Registration
	}
	if c.ReapEvery <= 0 {
		c.ReapEvery = Defaults.ReapEvery
	}
	if c.Tombstone <= 0 {
		c.Tombstone = Defaults.Tombstone
	}
	if c.TerminalRetry <= 0 {
		c.TerminalRetry = Defaults.TerminalRetry
	}
	if c.Server.ID == "" {
		c.Server.ID = NewID()
	}
	return c
}

// NewID is a random server id: 16 hex digits.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Replica is one live server as its registration describes it.
type Replica struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	// Streams is how many streams and persists it serves.
	Streams int `json:"streams"`
	// Admin is its admin listener's address, if it has one.
	Admin string `json:"admin,omitempty"`
}

// Lanes send commands on a channel's connection, in order with the rows
// published there (redisbus.Publisher).
// Either returns ErrFull or ErrClosed without sending, or calls done.
type Lanes interface {
	Eval(channel string, script redisbus.Script, keys []string, args [][]byte, done func(int64, error)) error
	Do(channel string, args []string, done func(null bool, err error)) error
}

// Hooks are how the keeper tells the server what happened. Any may be nil.
type Hooks struct {
	// Lost hears that a claim this server held is gone (another server's
	// now, or ended by a survivor while this one was silent): the stream
	// must end without publishing anything more.
	Lost func(channel string)
	// Streams counts the server's open streams, for its registration.
	Streams func() int
	// Claimed counts claims: outcome "won" or "lost".
	Claimed func(outcome string)
	// Reaped counts the streams of a dead server this one ended.
	Reaped func(n int)
	// TerminalDropped counts a terminal given up on (see Finish).
	TerminalDropped func()
}

// Keeper holds this server's claims and registration, and ends the streams
// of dead servers. Safe for concurrent use.
type Keeper struct {
	rdb     redis.UniversalClient
	cluster bool
	pub     Lanes
	cfg     Config
	hooks   Hooks
	logger  *slog.Logger
	epoch   time.Time

	seq atomic.Uint64
	// registeredUntil is when the registration may have expired, on the
	// monotonic clock, counted from the last heartbeat sent: past it,
	// survivors may be ending this server's streams.
	registeredUntil atomic.Int64
	// voidBefore: claims confirmed (won or renewed) by a command sent
	// before it are not vouched for. Set when a heartbeat finds that the
	// registration may have lapsed: survivors may have ended those claims
	// meanwhile, and only their next renewal can tell.
	voidBefore atomic.Int64
	mu         sync.Mutex
	held       map[string]*Claim // by channel
	released   []string          // ended claims still in the owned record
	waiting    []claimRequest
	kick       chan struct{}
	terminals  waiting

	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// Claim is a channel this server may answer on.
type Claim struct {
	Channel string
	key     string
	token   string
	k       *Keeper
	// validUntil is when the lease may run out, on the keeper's monotonic
	// clock (nanoseconds since its epoch): a fifth of the lease before it
	// would, counted from when the claim or its last renewal was sent;
	// confirmed is when that command was sent.
	validUntil atomic.Int64
	confirmed  atomic.Int64
	// finishing is set once its terminal is on its way: a renewal that
	// finds the claim gone then met the terminal's own release, not a loss.
	finishing atomic.Bool
}

// Valid reports whether the claim surely still holds, its lease and the
// server's registration both: rows may be published on its channel. (A
// survivor ends the streams of a server whose registration expired, even
// while their leases run.)
func (c *Claim) Valid() bool {
	now := c.k.now()
	return now < c.validUntil.Load() && now < c.k.registeredUntil.Load() && c.confirmed.Load() >= c.k.voidBefore.Load()
}

// confirm records that Redis held the claim for this server as of a
// command sent at sent.
func (c *Claim) confirm(sent int64) {
	c.confirmed.Store(sent)
	c.validUntil.Store(sent + int64(c.k.cfg.Lease)*4/5)
}

type claimRequest struct {
	channel  string
	token    string
	takeover bool
	done     func(*Claim, error)
	// since and attempt count the tries of a claim whose outcome was
	// unknown (see claimAttempt).
	since   time.Time
	attempt int
}

// New returns a keeper for one server of cfg.Group; Start begins its
// heartbeat, renewals and reaping. pub carries the claims (on one Redis)
// and the terminals' scripts, in order with the rows.
func New(rdb redis.UniversalClient, pub Lanes, cfg Config, hooks Hooks, logger *slog.Logger) *Keeper {
	_, cluster := rdb.(*redis.ClusterClient)
	k := &Keeper{rdb: rdb, cluster: cluster, pub: pub, cfg: cfg.withDefaults(), hooks: hooks, logger: logger,
		epoch: time.Now(), held: map[string]*Claim{}, kick: make(chan struct{}, 1), quit: make(chan struct{})}
	k.terminals.kick = make(chan struct{}, 1)
	return k
}

// Tombstone is how long an ended claim lasts.
func (k *Keeper) Tombstone() time.Duration { return k.cfg.Tombstone }

// ID is this server's id.
func (k *Keeper) ID() string { return k.cfg.Server.ID }

func (k *Keeper) now() int64 { return int64(time.Since(k.epoch)) }

// Keys of the group: one hash tag, one slot.
func (k *Keeper) registryKey(suffix string) string {
	return "eventsource:{" + k.cfg.Group + "}:" + suffix
}
func (k *Keeper) serverKey(id string) string { return k.registryKey("server:" + id) }
func (k *Keeper) ownedKey(id string) string  { return k.registryKey("owned:" + id) }
func (k *Keeper) serversKey() string         { return k.registryKey("servers") }

// ClaimKey is the key of channel's claim: the channel is its hash tag, so
// that on a Redis Cluster the channel's publishes can be routed to the
// node of its claim.
func ClaimKey(group, channel string) string {
	return "eventsource:{" + channel + "}:claim:" + group
}

// Start registers the server, loads the scripts and starts its loops.
func (k *Keeper) Start(ctx context.Context) error {
	if err := k.heartbeat(ctx); err != nil {
		return err
	}
	load := func(ctx context.Context, node *redis.Client) error {
		for _, s := range []redisbus.Script{claimScript, finishScript} {
			if err := node.ScriptLoad(ctx, s.Text).Err(); err != nil {
				return fmt.Errorf("load a script: %w", err)
			}
		}
		return nil
	}
	var err error
	switch rdb := k.rdb.(type) {
	case *redis.ClusterClient:
		err = rdb.ForEachShard(ctx, load)
	case *redis.Client:
		err = load(ctx, rdb)
	}
	if err != nil {
		// EVAL stands in for EVALSHA wherever a script is missing.
		k.logger.Warn("replicas: scripts not loaded", slog.Any("err", err))
	}
	k.wg.Add(5)
	go k.retryTerminals()
	go k.every(k.cfg.Registration/5, "heartbeat", k.heartbeat)
	go k.every(k.cfg.Lease/3, "renew claims", k.renew)
	go k.every(k.cfg.ReapEvery, "reap dead servers", k.reap)
	go k.claimBatches()
	return nil
}

// every runs step every interval until Close, each with a deadline of one
// interval (at least a second).
func (k *Keeper) every(interval time.Duration, what string, step func(context.Context) error) {
	defer k.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-k.quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(interval, time.Second))
		if err := step(ctx); err != nil {
			k.logger.Warn("replicas: "+what+" failed", slog.Any("err", err))
		}
		cancel()
	}
}

// Close stops the loops and removes the server's registration. Claims
// still held stay until their leases run out.
func (k *Keeper) Close(ctx context.Context) error {
	var err error
	k.once.Do(func() {
		close(k.quit)
		k.wg.Wait()
		id := k.ID()
		_, err = k.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, k.serverKey(id), k.ownedKey(id))
			p.SRem(ctx, k.serversKey(), id)
			return nil
		})
		if err != nil {
			err = fmt.Errorf("replicas: deregister %s: %w", id, err)
		}
	})
	return err
}

// Claim asks for channel's claim for a request (reason: it asked for
// reasons, which a survivor's "error" then carries; takeover: the request
// is newer than the channel's last end, so a tombstone does not stop it).
// Claims are sent in batches; done runs on another goroutine with the
// claim, or nil when another server (or a live stream) holds the channel.
func (k *Keeper) Claim(channel string, reason, takeover bool, done func(*Claim, error)) {
	token := k.ID() + ":" + strconv.FormatUint(k.seq.Add(1), 10)
	if reason {
		token += ":r"
	}
	if !k.cluster {
		k.claimOnLane(channel, token, takeover, done)
		return
	}
	k.queueClaim(claimRequest{channel: channel, token: token, takeover: takeover, done: done, since: time.Now()})
}

// queueClaim adds r to the next batch.
func (k *Keeper) queueClaim(r claimRequest) {
	k.mu.Lock()
	k.waiting = append(k.waiting, r)
	k.mu.Unlock()
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// claimFailed tries r again later, as claimAttempt does, or gives up.
func (k *Keeper) claimFailed(r claimRequest, err error) {
	if time.Since(r.since) < ClaimRetry {
		wait := min(claimRetryFirst<<r.attempt, time.Second)
		r.attempt++
		time.AfterFunc(wait, func() { k.queueClaim(r) })
		return
	}
	r.done(nil, fmt.Errorf("replicas: claim %s: %w", r.channel, err))
}

// claimOnLane claims on one Redis, through the channel's own connection:
// pipelined with the rows and replies of other channels, the record of the
// channel first and its claim after it, in order.
func (k *Keeper) claimOnLane(channel, token string, takeover bool, done func(*Claim, error)) {
	k.claimAttempt(channel, token, takeover, done, time.Now(), 0)
}

// claimAttempt is one try of claimOnLane. A try whose outcome is unknown
// (its connection died, Redis did not answer) goes again, by the script,
// which finds the claim this token's if the first try took it: a request
// is not left unanswered, nor its channel held for a lease, because a
// connection died under its claim. It goes again until ClaimRetry.
func (k *Keeper) claimAttempt(channel, token string, takeover bool, done func(*Claim, error), since time.Time, attempt int) {
	key := ClaimKey(k.cfg.Group, channel)
	sent := k.now()
	answer := func(won bool, err error) {
		switch {
		case err != nil && !errors.Is(err, redisbus.ErrClosed) && time.Since(since) < ClaimRetry:
			wait := min(claimRetryFirst<<attempt, time.Second)
			time.AfterFunc(wait, func() { k.claimAttempt(channel, token, takeover, done, since, attempt+1) })
		case err != nil:
			k.mu.Lock()
			k.released = append(k.released, channel) // its record may have gone in
			k.mu.Unlock()
			done(nil, fmt.Errorf("replicas: claim %s: %w", channel, err))
		case won:
			c := &Claim{Channel: channel, key: key, token: token, k: k}
			c.confirm(sent)
			k.mu.Lock()
			k.held[channel] = c
			k.mu.Unlock()
			k.count("won")
			done(c, nil)
		default:
			k.mu.Lock()
			k.released = append(k.released, channel) // out of the record with the next renewal
			k.mu.Unlock()
			k.count("lost")
			done(nil, nil)
		}
	}
	// The record first: a server that dies once its claim is won must be
	// found holding it. (A full queue refuses both, or the claim alone.)
	if err := k.pub.Do(channel, []string{"SADD", k.ownedKey(k.ID()), channel}, nil); err != nil {
		answer(false, err)
		return
	}
	lease := strconv.FormatInt(k.cfg.Lease.Milliseconds(), 10)
	var err error
	if takeover || attempt > 0 {
		flag := "0"
		if takeover {
			flag = "1"
		}
		err = k.pub.Eval(channel, claimScript, []string{key}, [][]byte{[]byte(token), []byte(lease), []byte(flag)},
			func(n int64, err error) { answer(n == 1, err) })
	} else {
		// A free channel needs no script: SET NX is the claim.
		err = k.pub.Do(channel, []string{"SET", key, token, "NX", "PX", lease}, func(null bool, err error) { answer(!null, err) })
	}
	if err != nil {
		answer(false, err)
	}
}

// ClaimRetry is how long a claim whose outcome is unknown is tried again;
// claimRetryFirst, the first wait, doubled each time up to a second.
const (
	ClaimRetry      = 5 * time.Second
	claimRetryFirst = 50 * time.Millisecond
)

// claimBatches sends what waits, as one batch, whenever something does.
func (k *Keeper) claimBatches() {
	defer k.wg.Done()
	for {
		select {
		case <-k.quit:
			k.mu.Lock()
			batch := k.waiting
			k.waiting = nil
			k.mu.Unlock()
			for _, r := range batch {
				r.done(nil, errors.New("replicas: closed"))
			}
			return
		case <-k.kick:
		}
		k.mu.Lock()
		batch := k.waiting
		k.waiting = nil
		k.mu.Unlock()
		if len(batch) > 0 {
			k.claimBatch(batch)
		}
	}
}

// claimBatch records the channels among this server's, then claims them:
// a server that dies between the two leaves a record without a claim,
// which the reaper skips, never a claim that nobody could find.
func (k *Keeper) claimBatch(batch []claimRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	channels := make([]any, len(batch))
	for i, r := range batch {
		channels[i] = r.channel
	}
	lease := strconv.FormatInt(k.cfg.Lease.Milliseconds(), 10)
	sent := k.now()
	claims := func(p redis.Pipeliner) []*redis.Cmd {
		cmds := make([]*redis.Cmd, len(batch))
		for i, r := range batch {
			takeover := "0"
			if r.takeover {
				takeover = "1"
			}
			cmds[i] = p.Eval(ctx, claimScript.Text, []string{ClaimKey(k.cfg.Group, r.channel)}, r.token, lease, takeover)
		}
		return cmds
	}
	var cmds []*redis.Cmd
	var err error
	if k.cluster {
		// The record and the claims live on other nodes: the record first.
		if err = k.rdb.SAdd(ctx, k.ownedKey(k.ID()), channels...).Err(); err == nil {
			_, err = k.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { cmds = claims(p); return nil })
		}
	} else {
		// One connection runs a pipeline in order: the record first.
		_, err = k.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.SAdd(ctx, k.ownedKey(k.ID()), channels...)
			cmds = claims(p)
			return nil
		})
	}
	if err != nil && cmds == nil {
		for _, r := range batch {
			k.claimFailed(r, err)
		}
		return
	}
	var lost []any
	for i, r := range batch {
		won, err := cmds[i].Int64()
		switch {
		case err != nil:
			k.claimFailed(r, err)
		case won == 1:
			c := &Claim{Channel: r.channel, key: ClaimKey(k.cfg.Group, r.channel), token: r.token, k: k}
			c.confirm(sent)
			k.mu.Lock()
			k.held[r.channel] = c
			k.mu.Unlock()
			k.count("won")
			r.done(c, nil)
		default:
			lost = append(lost, r.channel)
			k.count("lost")
			r.done(nil, nil)
		}
	}
	if len(lost) > 0 {
		if err := k.rdb.SRem(ctx, k.ownedKey(k.ID()), lost...).Err(); err != nil {
			k.logger.Debug("replicas: forget lost claims", slog.Any("err", err))
		}
	}
}

func (k *Keeper) count(outcome string) {
	if k.hooks.Claimed != nil {
		k.hooks.Claimed(outcome)
	}
}

// forget stops renewing c; its channel leaves the owned record with the
// next renewal.
func (k *Keeper) forget(c *Claim) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.held[c.Channel] != c {
		return false
	}
	delete(k.held, c.Channel)
	k.released = append(k.released, c.Channel)
	return true
}

// Held is how many claims the server holds.
func (k *Keeper) Held() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.held)
}

// renew extends every claim held, records them again (a restarted Redis
// lost the record) and drops the ended ones from the record.
func (k *Keeper) renew(ctx context.Context) error {
	k.mu.Lock()
	claims := make([]*Claim, 0, len(k.held))
	for _, c := range k.held {
		claims = append(claims, c)
	}
	released := k.released
	k.released = nil
	k.mu.Unlock()
	owned := k.ownedKey(k.ID())
	record := func(p redis.Pipeliner) {
		if len(released) > 0 {
			p.SRem(ctx, owned, toAny(released)...)
		}
		if len(claims) > 0 {
			channels := make([]any, len(claims))
			for i, c := range claims {
				channels[i] = c.Channel
			}
			p.SAdd(ctx, owned, channels...)
		}
	}
	lease := strconv.FormatInt(k.cfg.Lease.Milliseconds(), 10)
	sent := k.now()
	renewals := func(p redis.Pipeliner) []*redis.Cmd {
		cmds := make([]*redis.Cmd, len(claims))
		for i, c := range claims {
			cmds[i] = p.Eval(ctx, renewScript, []string{c.key}, c.token, lease)
		}
		return cmds
	}
	var cmds []*redis.Cmd
	var err error
	if k.cluster {
		if _, err = k.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { record(p); return nil }); err == nil {
			_, err = k.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { cmds = renewals(p); return nil })
		}
	} else {
		_, err = k.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { record(p); cmds = renewals(p); return nil })
	}
	if cmds == nil {
		if err != nil {
			k.mu.Lock()
			k.released = append(k.released, released...)
			k.mu.Unlock()
			return fmt.Errorf("renew %d claims: %w", len(claims), err)
		}
		return nil
	}
	failed := 0
	for i, c := range claims {
		n, err := cmds[i].Int64()
		switch {
		case err != nil:
			failed++
		case n == 0 && c.finishing.Load():
			k.forget(c)
		case n == 0:
			if k.forget(c) && k.hooks.Lost != nil {
				k.logger.Warn("replicas: claim lost; the stream ends without a word", slog.String("channel", c.Channel))
				k.hooks.Lost(c.Channel)
			}
		default:
			c.confirm(sent)
		}
	}
	if failed > 0 {
		return fmt.Errorf("renew %d of %d claims: %w", failed, len(claims), err)
	}
	return nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// heartbeat renews the server's registration.
func (k *Keeper) heartbeat(ctx context.Context) error {
	me := k.cfg.Server
	if k.hooks.Streams != nil {
		me.Streams = k.hooks.Streams()
	}
	info, err := json.Marshal(me)
	if err != nil {
		return fmt.Errorf("encode registration: %w", err)
	}
	sent := k.now()
	_, err = k.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, k.serverKey(me.ID), info, k.cfg.Registration)
		p.SAdd(ctx, k.serversKey(), me.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("register server %s: %w", me.ID, err)
	}
	if sent >= k.registeredUntil.Load() {
		// The registration may have lapsed before this heartbeat (the
		// server was paused, or Redis did not answer): survivors may have
		// ended its claims. None is vouched for again until renewed.
		k.voidBefore.Store(sent)
	}
	k.registeredUntil.Store(sent + int64(k.cfg.Registration)*4/5)
	return nil
}

// reap ends the streams of every server whose registration expired.
func (k *Keeper) reap(ctx context.Context) error {
	ids, err := k.rdb.SMembers(ctx, k.serversKey()).Result()
	if err != nil {
		return fmt.Errorf("list servers: %w", err)
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == k.ID() })
	if len(ids) == 0 {
		return nil
	}
	exists := make([]*redis.IntCmd, len(ids))
	if _, err := k.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			exists[i] = p.Exists(ctx, k.serverKey(id))
		}
		return nil
	}); err != nil {
		return fmt.Errorf("check servers: %w", err)
	}
	for i, id := range ids {
		if exists[i].Val() == 1 {
			continue
		}
		// One survivor reaps; the scripts would let several do it safely,
		// this only saves them the work.
		won, err := k.rdb.SetNX(ctx, k.registryKey("reaping:"+id), k.ID(), 30*time.Second).Result()
		if err != nil || !won {
			continue
		}
		if err := k.reapServer(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// reapServer publishes "error" on each channel the dead server id still
// holds, and removes its records.
func (k *Keeper) reapServer(ctx context.Context, id string) error {
	channels, err := k.rdb.SMembers(ctx, k.ownedKey(id)).Result()
	if err != nil {
		return fmt.Errorf("list the channels of dead server %s: %w", id, err)
	}
	const why = "the server streaming to this channel stopped"
	plain := messages.ErrorPayload(false, messages.ReasonUnavailable, why)
	reasoned := messages.ErrorPayload(true, messages.ReasonUnavailable, why)
	tombstone := strconv.FormatInt(k.cfg.Tombstone.Milliseconds(), 10)
	cmds := make([]*redis.Cmd, len(channels))
	if len(channels) > 0 {
		_, err = k.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, ch := range channels {
				cmds[i] = p.Eval(ctx, reapScript, []string{ClaimKey(k.cfg.Group, ch)}, id+":", tombstone, ch, k.cfg.FinishedChannel, plain, reasoned)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("end the streams of dead server %s: %w", id, err)
		}
	}
	ended := 0
	for _, c := range cmds {
		if n, _ := c.Int64(); n == 1 {
			ended++
		}
	}
	_, err = k.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, k.ownedKey(id))
		p.SRem(ctx, k.serversKey(), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove dead server %s: %w", id, err)
	}
	k.logger.Warn("replicas: ended the streams of a dead server", slog.String("server", id), slog.Int("streams", ended))
	if k.hooks.Reaped != nil {
		k.hooks.Reaped(ended)
	}
	return nil
}

// List returns the live servers of the group, by id.
func List(ctx context.Context, rdb redis.UniversalClient, group string) ([]Replica, error) {
	k := &Keeper{cfg: Config{Group: group}}
	ids, err := rdb.SMembers(ctx, k.serversKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	slices.Sort(ids)
	out := make([]Replica, 0, len(ids))
	for _, id := range ids {
		info, err := rdb.Get(ctx, k.serverKey(id)).Bytes()
		if errors.Is(err, redis.Nil) {
			continue // gone since the list was read
		}
		if err != nil {
			return nil, fmt.Errorf("read server %s: %w", id, err)
		}
		var r Replica
		if err := json.Unmarshal(info, &r); err != nil {
			return nil, fmt.Errorf("decode server %s: %w", id, err)
		}
		out = append(out, r)
	}
	return out, nil
}
