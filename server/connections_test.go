package server_test

import (
	"strings"
	"testing"

	"github.com/eventsource/eventsource/redisbus"
	"github.com/eventsource/eventsource/server"
)

func TestConnectionsFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c server.Config)
		want  string // substring of FromEnv's or Validate's error; empty: none
	}{
		{"plain by default", nil, func(t *testing.T, c server.Config) {
			if c.Redis.TLS != (server.RedisTLS{}) || c.Redis.Username != "" || c.MySQL.TLS != "" {
				t.Errorf("redis TLS %+v, username %q, MySQL TLS %q; want none", c.Redis.TLS, c.Redis.Username, c.MySQL.TLS)
			}
		}, ""},
		{"TLS and ACL variables", map[string]string{
			"REDIS_TLS": "true", "REDIS_TLS_CA": "ca.pem", "REDIS_TLS_CERT": "c.pem", "REDIS_TLS_KEY": "k.pem",
			"REDIS_TLS_SERVER_NAME": "redis.internal", "REDIS_USERNAME": "app", "REDIS_PASSWORD": "pw",
			"MYSQL_TLS": "custom", "MYSQL_TLS_CA": "my-ca.pem", "MYSQL_TLS_CERT": "my-c.pem", "MYSQL_TLS_KEY": "my-k.pem",
		}, func(t *testing.T, c server.Config) {
			want := server.RedisTLS{Enabled: true, CA: "ca.pem", Cert: "c.pem", Key: "k.pem", ServerName: "redis.internal"}
			if c.Redis.TLS != want || c.Redis.Username != "app" || c.Redis.Password != "pw" {
				t.Errorf("redis %+v %q %q, want %+v app pw", c.Redis.TLS, c.Redis.Username, c.Redis.Password, want)
			}
			s := c.MySQL.StoreConfig()
			if s.TLS != "custom" || s.TLSCA != "my-ca.pem" || s.TLSCert != "my-c.pem" || s.TLSKey != "my-k.pem" {
				t.Errorf("MySQL TLS %q %q %q %q", s.TLS, s.TLSCA, s.TLSCert, s.TLSKey)
			}
		}, ""},
		{"rediss URL", map[string]string{"REDIS_HOST": "ignored", "REDIS_URL": "rediss://app:s%40cret@redis.example:6380/2"},
			func(t *testing.T, c server.Config) {
				r := c.Redis
				if r.Host != "redis.example" || r.Port != 6380 || r.Username != "app" || r.Password != "s@cret" || r.DB != 2 || !r.TLS.Enabled {
					t.Errorf("got %+v", r)
				}
			}, ""},
		{"URL without credentials keeps the variables", map[string]string{
			"REDIS_URL": "redis://10.0.0.5:7000", "REDIS_USERNAME": "app", "REDIS_PASSWORD": "pw", "REDIS_DB": "3",
		}, func(t *testing.T, c server.Config) {
			r := c.Redis
			if r.Addr() != "10.0.0.5:7000" || r.Username != "app" || r.Password != "pw" || r.DB != 3 || r.TLS.Enabled {
				t.Errorf("got %+v", r)
			}
		}, ""},
		{"rediss URL with skip_verify and a CA", map[string]string{"REDIS_URL": "rediss://h:6380?skip_verify=true", "REDIS_TLS_CA": "ca.pem"},
			func(t *testing.T, c server.Config) {
				if !c.Redis.TLS.Enabled || !c.Redis.TLS.Insecure || c.Redis.TLS.CA != "ca.pem" {
					t.Errorf("got %+v", c.Redis.TLS)
				}
			}, ""},
		{"bad REDIS_TLS", map[string]string{"REDIS_TLS": "sure"}, nil, `REDIS_TLS="sure"`},
		{"not a redis URL", map[string]string{"REDIS_URL": "http://h:1"}, nil, "redis:// or rediss://"},
		{"bad database in the URL hides the password", map[string]string{"REDIS_URL": "redis://u:hunter2@h:1/x"}, nil, "invalid database number"},
		{"TLS files without TLS", map[string]string{"REDIS_TLS_CA": "ca.pem"}, nil, "REDIS_TLS is off"},
		{"certificate without its key", map[string]string{"REDIS_TLS": "1", "REDIS_TLS_CERT": "c.pem"}, nil, "both its certificate and its key"},
		{"bad MYSQL_TLS", map[string]string{"MYSQL_TLS": "required"}, nil, `MYSQL_TLS="required"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := server.DefaultConfig()
			err := c.FromEnv(func(k string) string { return tt.env[k] })
			if err == nil {
				err = c.Validate()
			}
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the password: %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// The options of one Redis and of a cluster carry the ACL user and TLS to
// every connection: the cluster's node connections of redisbus too.
func TestRedisOptionsCarryUserAndTLS(t *testing.T) {
	t.Parallel()
	c := server.DefaultConfig().Redis
	c.Username, c.Password = "app", "pw"
	c.TLS = server.RedisTLS{Enabled: true, ServerName: "redis.internal"}
	opt, err := c.Options()
	if err != nil {
		t.Fatal(err)
	}
	if opt.Username != "app" || opt.Password != "pw" || opt.TLSConfig == nil || opt.TLSConfig.ServerName != "redis.internal" {
		t.Errorf("options %+v", opt)
	}
	c.Cluster = []string{"10.0.0.1:6379", "10.0.0.2:6379"}
	copt, err := c.ClusterOptions()
	if err != nil {
		t.Fatal(err)
	}
	node := redisbus.ConnOptions(copt)
	if node.Username != "app" || node.Password != "pw" || node.TLSConfig == nil || node.TLSConfig.ServerName != "redis.internal" {
		t.Errorf("cluster node options %+v", node)
	}
	c.TLS = server.RedisTLS{}
	if opt, err := c.Options(); err != nil || opt.TLSConfig != nil {
		t.Errorf("without TLS: %+v, %v", opt, err)
	}
}
