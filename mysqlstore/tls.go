package mysqlstore

import (
	"crypto/tls"
	"fmt"

	"github.com/eventsource/eventsource/internal/tlsfiles"
)

// The values of Config.TLS.
const (
	TLSOff        = "false"
	TLSVerify     = "true"
	TLSSkipVerify = "skip-verify"
	TLSCustom     = "custom"
)

// CheckTLS reports what is wrong with the TLS settings, without reading
// their files.
func (c Config) CheckTLS() error {
	files := c.TLSCA != "" || c.TLSCert != "" || c.TLSKey != ""
	switch c.TLS {
	case "", TLSOff, TLSVerify, TLSSkipVerify:
		if files {
			return fmt.Errorf("MYSQL_TLS_CA, MYSQL_TLS_CERT and MYSQL_TLS_KEY need MYSQL_TLS=%s, not %q", TLSCustom, c.TLS)
		}
		return nil
	case TLSCustom:
		if !files {
			return fmt.Errorf("MYSQL_TLS=%s needs MYSQL_TLS_CA, or MYSQL_TLS_CERT and MYSQL_TLS_KEY", TLSCustom)
		}
		if err := c.tlsFiles().Check(); err != nil {
			return fmt.Errorf("MYSQL_TLS_CERT and MYSQL_TLS_KEY: %w", err)
		}
		return nil
	}
	return fmt.Errorf("MYSQL_TLS=%q: want %s, %s, %s or %s", c.TLS, TLSOff, TLSVerify, TLSSkipVerify, TLSCustom)
}

func (c Config) tlsFiles() tlsfiles.Files {
	return tlsfiles.Files{CA: c.TLSCA, Cert: c.TLSCert, Key: c.TLSKey}
}

// tlsConfig is the driver's TLS configuration, nil for none. It goes in
// mysql.Config.TLS rather than under a name registered with
// mysql.RegisterTLSConfig, which is process-wide: each Open keeps its own.
// The driver verifies the certificate against the host dialled.
func (c Config) tlsConfig() (*tls.Config, error) {
	if err := c.CheckTLS(); err != nil {
		return nil, err
	}
	switch c.TLS {
	case TLSVerify:
		return &tls.Config{MinVersion: tls.VersionTLS12}, nil
	case TLSSkipVerify:
		return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}, nil //nolint:gosec // the operator's explicit choice
	case TLSCustom:
		cfg, err := tlsfiles.Load(c.tlsFiles())
		if err != nil {
			return nil, fmt.Errorf("mysql TLS: %w", err)
		}
		return cfg, nil
	}
	return nil, nil
}
