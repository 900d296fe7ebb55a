// Package bus is Aftertrace's durable queue: NATS JetStream streams between
// the gateway and the writers, an embedded NATS server for dev and tests,
// and the publisher and message format both sides share.
package bus

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process NATS server with JetStream.
type EmbeddedConfig struct {
	StoreDir   string // JetStream file store
	Host       string // listen host; loopback by default
	Port       int    // -1 picks a free port
	MaxPayload int32  // largest message the server accepts
	// SyncAlways fsyncs the JetStream store on every write, before the
	// publish acknowledgement: an acknowledged message survives a power
	// loss. Off, the store is flushed to the OS on every write and fsynced
	// every SyncInterval (server default 2 min): an acknowledged message
	// survives the process dying, not the machine.
	SyncAlways   bool
	SyncInterval time.Duration // 0: the server's default
}

// DefaultEmbeddedConfig listens on 127.0.0.1:4222 with an 8 MiB payload cap.
func DefaultEmbeddedConfig() EmbeddedConfig {
	return EmbeddedConfig{Host: "127.0.0.1", Port: 4222, MaxPayload: 8 << 20}
}

// Validate reports every problem with c.
func (c EmbeddedConfig) Validate() error {
	var errs []error
	if c.StoreDir == "" {
		errs = append(errs, errors.New("nats store dir: must not be empty for the embedded server"))
	}
	if c.MaxPayload <= 0 {
		errs = append(errs, errors.New("nats max payload: must be positive"))
	}
	if c.SyncInterval < 0 {
		errs = append(errs, errors.New("nats sync interval: must not be negative"))
	}
	return errors.Join(errs...)
}

// StartEmbedded starts a NATS server with JetStream in this process and
// waits until it accepts connections. Call Shutdown and WaitForShutdown to
// stop it.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: "aftertrace-embedded",
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		MaxPayload: cfg.MaxPayload,
		NoSigs:     true,
		NoLog:      true,

		SyncAlways:   cfg.SyncAlways,
		SyncInterval: cfg.SyncInterval,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("embedded nats: not ready after 10s")
	}
	return srv, nil
}
