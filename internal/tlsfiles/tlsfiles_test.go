package tlsfiles_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventsource/eventsource/internal/testcerts"
	"github.com/eventsource/eventsource/internal/tlsfiles"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs, err := testcerts.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		files tlsfiles.Files
		want  string // substring of the error; empty: none
	}{
		{"system roots", tlsfiles.Files{}, ""},
		{"CA and client certificate", tlsfiles.Files{CA: certs.CA, Cert: certs.ClientCert, Key: certs.ClientKey, ServerName: "redis"}, ""},
		{"missing CA", tlsfiles.Files{CA: certs.CA + ".missing"}, "read CA file"},
		{"CA not PEM", tlsfiles.Files{CA: notPEM}, "no PEM certificate"},
		{"certificate without key", tlsfiles.Files{Cert: certs.ClientCert}, tlsfiles.ErrHalfPair.Error()},
		{"key of another certificate", tlsfiles.Files{Cert: certs.ClientCert, Key: certs.ServerKey}, "client certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := tlsfiles.Load(tt.files)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Load = %v, want an error with %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (cfg.RootCAs != nil) != (tt.files.CA != "") || len(cfg.Certificates) != map[bool]int{true: 1}[tt.files.Cert != ""] ||
				cfg.ServerName != tt.files.ServerName {
				t.Errorf("config %+v for %+v", cfg, tt.files)
			}
		})
	}
	if !errors.Is(tlsfiles.Files{Key: "k"}.Check(), tlsfiles.ErrHalfPair) {
		t.Error("a key without its certificate passes Check")
	}
}
