package server

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventsource/eventsource/gateway"
	"github.com/eventsource/eventsource/messages"
	"github.com/eventsource/eventsource/mysqlstore"
	"github.com/eventsource/eventsource/replicas"
	"github.com/eventsource/eventsource/sqlbuild"
)

// Config is everything the server needs. cmd/eventsource builds it once from
// the environment and flags; nothing below reads either.
type Config struct {
	MySQL MySQLConfig
	Redis RedisConfig

	// FetchChannel, PersistChannel and FetchNextChannel are the request
	// channels the server subscribes to.
	FetchChannel     string
	PersistChannel   string
	FetchNextChannel string
	// CommitChannel is where servers announce the events they committed
	// (messages.Committed), for the HTTP gateways on the same Redis. It is
	// reserved: no client may answer there.
	CommitChannel string
	// FinishedChannel is where servers announce the end of each response
	// channel's claim (replicas), so that a request heard after it may take
	// the channel again. Reserved like CommitChannel.
	FinishedChannel string
	// Replicas times the claims and registrations of the servers that act
	// as one (zero fields: replicas.Defaults). Group, the finished channel
	// and the server's description are filled in by the server.
	Replicas replicas.Config
	// Version is the server's version, for its registration.
	Version string

	// AcceptTimeout is how long a stream waits for "accepted" before it
	// publishes "timeout".
	AcceptTimeout time.Duration
	// MaxStreams bounds concurrent fetch streams and persists together; past
	// it a request gets "error" at once. Zero means no limit.
	MaxStreams int
	// PageSize is how many rows a stream reads from MySQL at a time.
	PageSize int
	// MaxBufferedRows bounds a result that cannot be paged (a table without
	// an id column) and must be read whole.
	MaxBufferedRows int
	// PersistBatch is the most persist requests committed together, in one
	// INSERT or one transaction; 1 commits each request on its own.
	PersistBatch int
	// ShutdownGrace is how long shutdown waits for in-flight persists.
	ShutdownGrace time.Duration
	// ReadTimeout bounds each read of a stream's rows (a page, or a result
	// read whole); a stream whose read runs past it ends with "error".
	ReadTimeout time.Duration
	// ResubscribeGrace is how long the terminals held through a Redis
	// outage wait, once the server has resubscribed, for the clients to
	// resubscribe too (node-redis retries within half a second).
	ResubscribeGrace time.Duration
	// FollowGapWait is how long an id no commit announcement covers holds
	// followed streams back before it counts as rolled back.
	FollowGapWait time.Duration
	// FollowIdle ends a followed stream whose channel has had no
	// subscriber that long.
	FollowIdle time.Duration
	// Tables is the allow-list of tables, as schema.table. The first one is
	// the default table of queries that name none.
	Tables []string
	// WritableTables are allowed tables (of Tables) whose inserts may carry
	// $onDuplicateKeyUpdate; the others, the event table first, are
	// append-only.
	WritableTables []string
	// Request bounds request size, channel length and window.
	Request messages.RequestLimits
	// Query bounds the queries themselves (nesting, values, $in lists,
	// $limit, documents); zero fields take sqlbuild's defaults.
	Query sqlbuild.Limits

	// Admin is the address of the operators' HTTP listener (actor tree,
	// metrics, health); empty means none.
	Admin string
	// AdminToken, if set, is the bearer token the admin listener requires.
	// It must be set when Admin is not a loopback address.
	AdminToken string
	// Instrument keeps the live actor registry and the metrics.
	Instrument bool

	// HTTP configures the HTTP gateway for browsers; its zero value (no
	// address) means none.
	HTTP gateway.Config
}

// MySQLConfig says how to reach MySQL or MariaDB.
type MySQLConfig struct {
	Host     string
	Port     int
	User     string
	Password string
	// Charset is the connection character set (MYSQL_CHAR).
	Charset string
	// Database is the schema that holds the event table.
	Database string
	// TLS is "" (plain), "true", "skip-verify" or "custom" with TLSCA,
	// TLSCert and TLSKey (MYSQL_TLS*; see mysqlstore.Config).
	TLS, TLSCA, TLSCert, TLSKey string
	// PoolSize bounds open connections.
	PoolSize int
	// StatementCache is how many prepared statements (by SQL text) the
	// server keeps; each is prepared once per pooled connection.
	StatementCache int
}

// StoreConfig is the mysqlstore view of c.
func (c MySQLConfig) StoreConfig() mysqlstore.Config {
	return mysqlstore.Config{
		Host: c.Host, Port: c.Port, User: c.User, Password: c.Password,
		Charset: c.Charset, Database: c.Database, PoolSize: c.PoolSize,
		TLS: c.TLS, TLSCA: c.TLSCA, TLSCert: c.TLSCert, TLSKey: c.TLSKey,
	}
}

// RedisConfig says how to reach Redis.
type RedisConfig struct {
	// Cluster, when set, are seed nodes (host:port) of a Redis Cluster,
	// which the server uses instead of Host and Port (REDIS_CLUSTER).
	Cluster  []string
	Host     string
	Port     int
	Password string
	DB       int
	// Username is the ACL user (REDIS_USERNAME); empty means the default
	// user, authenticated by Password alone.
	Username string
	// TLS says how connections speak TLS; zero: plain TCP (REDIS_TLS*).
	TLS RedisTLS
	// ClientName names the server's connections in CLIENT LIST.
	ClientName string
	// Publishers is how many pipelines publish rows and replies at once.
	// Fewer means bigger batches, so fewer writes: on a small machine one
	// keeps up best (see docs/performance.md).
	Publishers int
	// PublishQueue is how many messages wait for each pipeline; a stream
	// whose message finds it full holds its rows and tries again.
	PublishQueue int
}

// Addr is host:port.
func (c RedisConfig) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// DefaultConfig returns the defaults of the original server where it had
// them (127.0.0.1, root, no password, utf8mb4) and ours elsewhere.
func DefaultConfig() Config {
	return Config{
		MySQL: MySQLConfig{
			Host: "127.0.0.1", Port: 3306, User: "root", Charset: "utf8mb4",
			Database: "eventsource", PoolSize: 16, StatementCache: 256,
		},
		Redis:            RedisConfig{Host: "127.0.0.1", Port: 6379, ClientName: "eventsource", Publishers: 1, PublishQueue: 4096},
		FetchChannel:     "fetch",
		PersistChannel:   "persist",
		FetchNextChannel: "fetch-next",
		CommitChannel:    messages.DefaultCommitChannel,
		FinishedChannel:  messages.DefaultFinishedChannel,
		AcceptTimeout:    5 * time.Second,
		MaxStreams:       20000,
		PageSize:         256,
		MaxBufferedRows:  100000,
		PersistBatch:     256,
		ShutdownGrace:    10 * time.Second,
		ReadTimeout:      30 * time.Second,
		ResubscribeGrace: time.Second,
		FollowGapWait:    time.Second,
		FollowIdle:       30 * time.Second,
		Replicas:         replicas.Config{TerminalRetry: replicas.Defaults.TerminalRetry},
		Tables:           []string{"eventsource.event"},
		Request:          messages.DefaultRequestLimits(),
		Instrument:       true,
		HTTP:             gateway.DefaultConfig(),
	}
}

// FromEnv overrides c with the variables the original server read, and ours.
// getenv is os.Getenv in the binary and a map lookup in tests.
func (c *Config) FromEnv(getenv func(string) string) error {
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	num := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not a number", name, v))
				return
			}
			*dst = n
		}
	}
	str("MYSQL_HOST", &c.MySQL.Host)
	num("MYSQL_PORT", &c.MySQL.Port)
	str("MYSQL_USER", &c.MySQL.User)
	str("MYSQL_PASS", &c.MySQL.Password)
	str("MYSQL_CHAR", &c.MySQL.Charset)
	str("MYSQL_DATABASE", &c.MySQL.Database)
	str("REDIS_HOST", &c.Redis.Host)
	num("REDIS_PORT", &c.Redis.Port)
	str("REDIS_PASSWORD", &c.Redis.Password)
	num("REDIS_DB", &c.Redis.DB)
	if v := getenv("REDIS_CLUSTER"); v != "" {
		c.Redis.Cluster = strings.Split(v, ",")
	}
	errs = append(errs, c.connectionsFromEnv(getenv)...)
	return errors.Join(errs...)
}

// Channels are the request channels and the commit channel.
func (c Config) Channels() messages.Channels {
	return messages.Channels{Fetch: c.FetchChannel, Persist: c.PersistChannel, FetchNext: c.FetchNextChannel,
		Commit: c.CommitChannel, Finished: c.FinishedChannel}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.FetchChannel != "" && c.PersistChannel != "" && c.FetchNextChannel != "", "request channel names must not be empty")
	check(c.FetchChannel != c.PersistChannel && c.FetchChannel != c.FetchNextChannel && c.PersistChannel != c.FetchNextChannel,
		"request channels must differ: fetch=%q persist=%q fetch-next=%q", c.FetchChannel, c.PersistChannel, c.FetchNextChannel)
	check(c.CommitChannel != "" && c.CommitChannel != c.FetchChannel && c.CommitChannel != c.PersistChannel && c.CommitChannel != c.FetchNextChannel,
		"the commit channel %q must be set and differ from the request channels", c.CommitChannel)
	check(c.FinishedChannel != "" && c.FinishedChannel != c.CommitChannel && c.FinishedChannel != c.FetchChannel &&
		c.FinishedChannel != c.PersistChannel && c.FinishedChannel != c.FetchNextChannel,
		"the finished channel %q must be set and differ from the request and commit channels", c.FinishedChannel)
	if err := c.HTTP.Validate(); err != nil {
		errs = append(errs, err)
	}
	check(c.AcceptTimeout > 0, "accept timeout must be positive, got %s", c.AcceptTimeout)
	check(c.MaxStreams >= 0, "max streams must not be negative, got %d", c.MaxStreams)
	check(c.PageSize > 0, "page size must be positive, got %d", c.PageSize)
	check(c.PersistBatch > 0, "persist batch must be positive, got %d", c.PersistBatch)
	check(c.ReadTimeout > 0, "MySQL read timeout must be positive, got %s", c.ReadTimeout)
	check(c.ResubscribeGrace >= 0, "resubscribe grace must not be negative, got %s", c.ResubscribeGrace)
	check(c.FollowGapWait > 0, "follow gap wait must be positive, got %s", c.FollowGapWait)
	check(c.FollowIdle > 0, "follow idle time must be positive, got %s", c.FollowIdle)
	check(c.Replicas.TerminalRetry >= 0, "terminal retry must not be negative, got %s", c.Replicas.TerminalRetry)
	check(c.MySQL.PoolSize > 0, "MySQL pool size must be positive, got %d", c.MySQL.PoolSize)
	check(c.MySQL.StatementCache >= 0, "MySQL statement cache must not be negative, got %d", c.MySQL.StatementCache)
	check(c.MySQL.Port > 0 && c.MySQL.Port < 65536, "MYSQL_PORT %d out of range", c.MySQL.Port)
	check(len(c.Redis.Cluster) == 0 || c.Redis.DB == 0, "a Redis Cluster has no REDIS_DB but 0, got %d", c.Redis.DB)
	for _, node := range c.Redis.Cluster {
		_, _, err := net.SplitHostPort(node)
		check(err == nil, "REDIS_CLUSTER node %q: want host:port", node)
	}
	check(c.Redis.Port > 0 && c.Redis.Port < 65536, "REDIS_PORT %d out of range", c.Redis.Port)
	check(c.Redis.Publishers > 0, "redis publishers must be positive, got %d", c.Redis.Publishers)
	check(c.Redis.PublishQueue > 0, "redis publish queue must be positive, got %d", c.Redis.PublishQueue)
	errs = append(errs, c.checkConnections()...)
	check(len(c.Tables) > 0, "at least one table must be allowed")
	for _, w := range c.WritableTables {
		check(slices.Contains(c.Tables, w), "writable table %q is not an allowed table", w)
	}
	if c.Admin != "" {
		host, _, err := net.SplitHostPort(c.Admin)
		check(err == nil, "admin address %q: want host:port", c.Admin)
		if err == nil {
			ip := net.ParseIP(host)
			loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
			check(loopback || c.AdminToken != "", "admin address %q is not loopback: set an admin token", c.Admin)
		}
	}
	return errors.Join(errs...)
}
