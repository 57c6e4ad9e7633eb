package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/internal/tlsfiles"
)

// RedisTLS says how the server's connections to Redis speak TLS: every one
// of them, the go-redis clients' and the subscriber's and publishers' own.
// Its zero value means plain TCP.
type RedisTLS struct {
	// Enabled turns TLS on (REDIS_TLS=true, or a rediss:// REDIS_URL).
	Enabled bool
	// CA is a PEM file of the certificates that verify Redis's; empty
	// means the system's roots (REDIS_TLS_CA).
	CA string
	// Cert and Key are the PEM files of a client certificate, for a Redis
	// with tls-auth-clients; empty means none (REDIS_TLS_CERT,
	// REDIS_TLS_KEY).
	Cert, Key string
	// ServerName is the name Redis's certificate must carry; empty means
	// the host dialled, each node's for a cluster (REDIS_TLS_SERVER_NAME).
	ServerName string
	// Insecure encrypts without verifying Redis's certificate
	// (REDIS_TLS_INSECURE): for tests, never for production.
	Insecure bool
}

// RedisTLSFromEnv reads REDIS_TLS, REDIS_TLS_CA, REDIS_TLS_CERT,
// REDIS_TLS_KEY, REDIS_TLS_SERVER_NAME and REDIS_TLS_INSECURE.
func RedisTLSFromEnv(getenv func(string) string) (RedisTLS, error) {
	var errs []error
	flag := func(name string) bool {
		v := getenv(name)
		if v == "" {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", name, v))
		}
		return b
	}
	t := RedisTLS{
		Enabled: flag("REDIS_TLS"), CA: getenv("REDIS_TLS_CA"), Cert: getenv("REDIS_TLS_CERT"), Key: getenv("REDIS_TLS_KEY"),
		ServerName: getenv("REDIS_TLS_SERVER_NAME"), Insecure: flag("REDIS_TLS_INSECURE"),
	}
	return t, errors.Join(errs...)
}

func (t RedisTLS) files() tlsfiles.Files {
	return tlsfiles.Files{CA: t.CA, Cert: t.Cert, Key: t.Key, ServerName: t.ServerName, Insecure: t.Insecure}
}

// Check reports what is wrong with t without reading its files.
func (t RedisTLS) Check() error {
	if !t.Enabled {
		if t.CA != "" || t.Cert != "" || t.Key != "" || t.ServerName != "" || t.Insecure {
			return errors.New("REDIS_TLS_* settings are given but REDIS_TLS is off: set REDIS_TLS=true (--redis-tls) or use a rediss:// URL")
		}
		return nil
	}
	if err := t.files().Check(); err != nil {
		return fmt.Errorf("REDIS_TLS_CERT and REDIS_TLS_KEY: %w", err)
	}
	return nil
}

// Config reads the files and returns the TLS configuration of the
// connections, or nil when TLS is off.
func (t RedisTLS) Config() (*tls.Config, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	if !t.Enabled {
		return nil, nil
	}
	cfg, err := tlsfiles.Load(t.files())
	if err != nil {
		return nil, fmt.Errorf("redis TLS: %w", err)
	}
	return cfg, nil
}

// ApplyURL sets c from a redis:// or rediss:// URL (REDIS_URL): host and
// port always; the ACL user, the password and the database when the URL
// has them; TLS for rediss (and skip_verify=true). Other query parameters
// are checked by go-redis and otherwise ignored.
func (c *RedisConfig) ApplyURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("REDIS_URL is not a URL") // its error would repeat the password
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Errorf("REDIS_URL %s: want a redis:// or rediss:// URL", u.Redacted())
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return fmt.Errorf("REDIS_URL %s: %w", u.Redacted(), err)
	}
	host, port, err := net.SplitHostPort(opt.Addr)
	if err != nil {
		return fmt.Errorf("REDIS_URL %s: %w", u.Redacted(), err)
	}
	if c.Port, err = strconv.Atoi(port); err != nil {
		return fmt.Errorf("REDIS_URL %s: port %q is not a number", u.Redacted(), port)
	}
	c.Host = host
	if opt.Username != "" {
		c.Username = opt.Username
	}
	if opt.Password != "" {
		c.Password = opt.Password
	}
	if strings.Trim(u.Path, "/") != "" || u.Query().Has("db") {
		c.DB = opt.DB
	}
	if opt.TLSConfig != nil {
		c.TLS.Enabled = true
		c.TLS.Insecure = c.TLS.Insecure || opt.TLSConfig.InsecureSkipVerify
	}
	return nil
}

// Options are the go-redis options of one Redis as c says: address, ACL
// user, password, database, client name and TLS. The server's own
// connections (redisbus) dial with the same options.
func (c RedisConfig) Options() (*redis.Options, error) {
	tc, err := c.TLS.Config()
	if err != nil {
		return nil, err
	}
	return &redis.Options{Addr: c.Addr(), Username: c.Username, Password: c.Password, DB: c.DB, ClientName: c.ClientName, TLSConfig: tc}, nil
}

// ClusterOptions are the go-redis options of the cluster of c.Cluster,
// with the same credentials, client name and TLS as Options.
func (c RedisConfig) ClusterOptions() (*redis.ClusterOptions, error) {
	tc, err := c.TLS.Config()
	if err != nil {
		return nil, err
	}
	return &redis.ClusterOptions{Addrs: c.Cluster, Username: c.Username, Password: c.Password, ClientName: c.ClientName, TLSConfig: tc}, nil
}

// connectionsFromEnv reads what production connections add to the
// original variables: REDIS_USERNAME, REDIS_TLS*, REDIS_URL (which wins
// over REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD and REDIS_DB
// for the parts it has) and MYSQL_TLS*.
func (c *Config) connectionsFromEnv(getenv func(string) string) []error {
	var errs []error
	if v := getenv("REDIS_USERNAME"); v != "" {
		c.Redis.Username = v
	}
	t, err := RedisTLSFromEnv(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	c.Redis.TLS = t
	if v := getenv("REDIS_URL"); v != "" {
		if err := c.Redis.ApplyURL(v); err != nil {
			errs = append(errs, err)
		}
	}
	for name, dst := range map[string]*string{
		"MYSQL_TLS": &c.MySQL.TLS, "MYSQL_TLS_CA": &c.MySQL.TLSCA, "MYSQL_TLS_CERT": &c.MySQL.TLSCert, "MYSQL_TLS_KEY": &c.MySQL.TLSKey,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	return errs
}

// checkConnections reports what is wrong with the TLS settings, without
// reading their files.
func (c Config) checkConnections() []error {
	var errs []error
	if err := c.Redis.TLS.Check(); err != nil {
		errs = append(errs, err)
	}
	if err := c.MySQL.StoreConfig().CheckTLS(); err != nil {
		errs = append(errs, err)
	}
	return errs
}
