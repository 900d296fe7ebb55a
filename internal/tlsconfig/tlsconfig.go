// Package tlsconfig builds the server TLS configuration of Aftertrace's
// listeners (OTLP gRPC and HTTP, query API) from certificate files: TLS
// when a certificate is given, mutual TLS when a client CA is given too.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Config names the PEM files of a server's TLS setup. The zero value means
// plain TCP.
type Config struct {
	CertFile string // server certificate chain (PEM)
	KeyFile  string // its private key (PEM)
	// ClientCAFile, if set, turns on mutual TLS: clients must present a
	// certificate signed by one of these CAs.
	ClientCAFile string
}

// Enabled reports whether TLS is configured.
func (c Config) Enabled() bool { return c.CertFile != "" }

// Validate reports every inconsistency of c at once (files are read by
// Server).
func (c Config) Validate() error {
	var errs []error
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("TLS: the certificate file and key file must be set together"))
	}
	if c.ClientCAFile != "" && c.CertFile == "" {
		errs = append(errs, errors.New("TLS: a client CA file (mutual TLS) needs a server certificate and key"))
	}
	return errors.Join(errs...)
}

// Server loads the files and returns the server configuration, or nil when
// TLS is not enabled. HTTP/2 ("h2") and HTTP/1.1 are offered by ALPN, as
// gRPC needs h2.
func (c Config) Server() (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS: loading certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS: reading client CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS: client CA file %s holds no PEM certificate", c.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
