package mysqlstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/eventsource/eventsource/internal/tlsdb"
	"github.com/eventsource/eventsource/mysqlstore"
)

func TestCheckTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  mysqlstore.Config
		want string // substring of the error; empty: none
	}{
		{"off", mysqlstore.Config{}, ""},
		{"false", mysqlstore.Config{TLS: "false"}, ""},
		{"true", mysqlstore.Config{TLS: "true"}, ""},
		{"skip-verify", mysqlstore.Config{TLS: "skip-verify"}, ""},
		{"custom with a CA", mysqlstore.Config{TLS: "custom", TLSCA: "ca.pem"}, ""},
		{"custom with a client certificate", mysqlstore.Config{TLS: "custom", TLSCert: "c.pem", TLSKey: "k.pem"}, ""},
		{"unknown mode", mysqlstore.Config{TLS: "yes"}, `MYSQL_TLS="yes"`},
		{"custom without files", mysqlstore.Config{TLS: "custom"}, "needs MYSQL_TLS_CA"},
		{"files without custom", mysqlstore.Config{TLS: "true", TLSCA: "ca.pem"}, "need MYSQL_TLS=custom"},
		{"certificate without its key", mysqlstore.Config{TLS: "custom", TLSCert: "c.pem"}, "both its certificate and its key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.CheckTLS()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("CheckTLS() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// A MariaDB that requires TLS: Open reaches it with MYSQL_TLS=custom and
// its CA, and encrypts; without TLS, or verified against the system's
// roots, it is refused.
func TestOpenTLS(t *testing.T) {
	t.Parallel()
	srv := tlsdb.Start(t)
	base := mysqlstore.Config{Host: srv.Host, Port: srv.Port, User: srv.User, Charset: "utf8mb4", PoolSize: 1}
	tests := []struct {
		name    string
		tls     func(c *mysqlstore.Config)
		refused string // substring of the error; empty: connects over TLS
	}{
		{"custom CA", func(c *mysqlstore.Config) { c.TLS, c.TLSCA = "custom", srv.Certs.CA }, ""},
		{"custom CA and client certificate", func(c *mysqlstore.Config) {
			c.TLS, c.TLSCA, c.TLSCert, c.TLSKey = "custom", srv.Certs.CA, srv.Certs.ClientCert, srv.Certs.ClientKey
		}, ""},
		{"skip-verify", func(c *mysqlstore.Config) { c.TLS = "skip-verify" }, ""},
		{"statement timeout over TLS", func(c *mysqlstore.Config) {
			c.TLS, c.TLSCA, c.StatementTimeout = "custom", srv.Certs.CA, time.Minute
		}, ""},
		{"no TLS", func(c *mysqlstore.Config) {}, "Access denied"},
		{"system roots", func(c *mysqlstore.Config) { c.TLS = "true" }, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := base
			tt.tls(&cfg)
			db, err := mysqlstore.Open(cfg)
			if err != nil {
				if tt.refused != "" && strings.Contains(err.Error(), tt.refused) {
					return // the statement timeout's probe connects in Open
				}
				t.Fatal(err)
			}
			defer db.Close()
			var name, cipher string
			err = db.QueryRowContext(testContext(t), "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher)
			switch {
			case tt.refused == "" && err != nil:
				t.Fatalf("query over TLS: %v", err)
			case tt.refused == "" && cipher == "":
				t.Fatal("connected without TLS: Ssl_cipher is empty")
			case tt.refused != "" && err == nil:
				t.Fatalf("connected (cipher %q), want a refusal", cipher)
			case tt.refused != "" && !strings.Contains(err.Error(), tt.refused):
				t.Fatalf("refused with %v, want an error with %q", err, tt.refused)
			}
		})
	}
}
