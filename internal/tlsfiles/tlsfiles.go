// Package tlsfiles builds the TLS configuration of a client connection
// (to Redis, to MySQL) from PEM files named in the configuration.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files names what a client connection verifies and presents.
type Files struct {
	// CA is a PEM file of the certificates that verify the server's;
	// empty means the system's roots.
	CA string
	// Cert and Key are the PEM files of the client's certificate and key,
	// for a server that asks for one; both empty means none.
	Cert, Key string
	// ServerName is the name the server's certificate must carry; empty
	// means the host dialled.
	ServerName string
	// Insecure skips verifying the server's certificate.
	Insecure bool
}

// ErrHalfPair is a certificate without its key, or a key without its
// certificate.
var ErrHalfPair = errors.New("a client certificate needs both its certificate and its key file")

// Check reports what is wrong with f without reading the files.
func (f Files) Check() error {
	if (f.Cert == "") != (f.Key == "") {
		return ErrHalfPair
	}
	return nil
}

// Load reads the files and returns the configuration: TLS 1.2 at least.
func Load(f Files) (*tls.Config, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName, InsecureSkipVerify: f.Insecure} //nolint:gosec // Insecure is the operator's explicit choice
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", f.CA)
		}
		cfg.RootCAs = pool
	}
	if f.Cert != "" {
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
