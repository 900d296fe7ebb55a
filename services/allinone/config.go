// Package allinone composes Aftertrace's services into one process from a
// module graph (modules.go): `aftertrace run --target …` and the
// single-target commands (`aftertrace gateway|writer|api|correlator`)
// share this wiring.
package allinone

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/tlsconfig"
	"github.com/aftertrace/aftertrace/services/api"
	"github.com/aftertrace/aftertrace/services/correlator"
	"github.com/aftertrace/aftertrace/services/gateway"
	retentionsvc "github.com/aftertrace/aftertrace/services/retention"
	"github.com/aftertrace/aftertrace/services/writer"
)

// Config is the whole process configuration.
type Config struct {
	// Targets are the modules this process runs (TargetNames; "all" is
	// every one), with what they need (moduleDeps).
	Targets    []string
	Gateway    gateway.Config
	Writer     writer.Config
	API        api.Config
	Correlator correlator.Config
	Retention  retentionsvc.Config
	ClickHouse chstore.Config
	Streams    bus.StreamConfig
	Publisher  bus.PublisherConfig

	// NATSURL points at an external NATS cluster; empty starts an embedded
	// server (dev/all-in-one) with its store in NATSStoreDir.
	NATSURL      string
	EmbeddedNATS bus.EmbeddedConfig

	// PostgresDSN is the relational store; empty skips Postgres.
	PostgresDSN string

	// StackDir, when set, starts private ClickHouse and Postgres servers with
	// their data under this folder (the `make run` dev stack) and points the
	// ClickHouse and Postgres settings at them.
	StackDir          string
	StackClickHouse   int // native port of the dev ClickHouse
	StackClickHouseHT int // HTTP port of the dev ClickHouse
	StackPostgres     int // port of the dev Postgres
	// StackTopology "cluster" makes the dev stack a cluster on one host:
	// ClickHouse 2 shards × 2 replicas with ZooKeeper (native ports
	// StackClickHouse..+3) and three embedded NATS servers with R3 streams.
	StackTopology string
	// EmbeddedNATSNodes is how many embedded NATS servers run (1, or ≥ 3
	// for a JetStream cluster).
	EmbeddedNATSNodes int

	// Migrate applies migrations at start.
	Migrate bool

	// TLS, when set, serves the OTLP and API listeners over TLS (mutual TLS
	// with a client CA); it is copied into Gateway.TLS and API.TLS by New.
	TLS tlsconfig.Config

	// DevAPIKey is the key of the dev tenant DevTenantID. With Postgres it
	// is stored there (hashed) next to the keys made by `aftertrace key
	// create` and may be empty; without Postgres it is the only key.
	DevAPIKey   string
	DevTenantID string
	// AdminAPIKey opens /admin/v1 on the API listener (tenants and keys;
	// needs Postgres). Empty: the admin API is off (404).
	AdminAPIKey string
	// AuthCache bounds the cache of looked-up API keys, the lookups and the
	// failed attempts per source address (with Postgres).
	AuthCache authn.CacheConfig

	// OpsAddr is the process's ops listener when it runs the gateway or the
	// API: /healthz, /readyz, /metrics and /debug/pprof/, which the public
	// OTLP and API listeners do not serve. Keep it on loopback or a private
	// network: it has no authentication. Empty: no ops listener. (A writer
	// or correlator run alone serves them on Writer.OpsAddr /
	// Correlator.OpsAddr.)
	OpsAddr string

	ShutdownBudget time.Duration

	// APIClickHouseMaxConns is the size of the API's own ClickHouse pool
	// (apart from ClickHouse.MaxOpenConns, the writer's and correlator's).
	APIClickHouseMaxConns int

	// LeaseInterval is how often a process that does not run a background
	// loop (retention, anomalies) tries to take it over, and how often the
	// one that runs it checks its lease (internal/lease; with Postgres).
	LeaseInterval time.Duration
}

// DefaultConfig returns the all-in-one defaults on loopback.
func DefaultConfig() Config {
	return Config{
		Targets:           []string{TargetAll},
		Gateway:           gateway.DefaultConfig(),
		Writer:            writer.DefaultConfig(),
		API:               api.DefaultConfig(),
		Correlator:        correlator.DefaultConfig(),
		Retention:         retentionsvc.DefaultConfig(),
		ClickHouse:        chstore.DefaultConfig(),
		Streams:           bus.DefaultStreamConfig(),
		Publisher:         bus.DefaultPublisherConfig(),
		EmbeddedNATS:      bus.DefaultEmbeddedConfig(),
		StackClickHouse:   19000,
		StackClickHouseHT: 18123,
		StackPostgres:     15432,
		StackTopology:     "single",
		EmbeddedNATSNodes: 1,
		Migrate:           true,
		DevTenantID:       "dev",
		AuthCache:         authn.DefaultCacheConfig(),
		OpsAddr:           "127.0.0.1:9464",
		ShutdownBudget:    15 * time.Second,

		APIClickHouseMaxConns: defaultAPIClickHouseMaxConns,
		LeaseInterval:         2 * time.Second,
	}
}

// Validate reports every problem of every enabled part at once.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, c.validateTargets())
	if c.runs(TargetCorrelator) {
		errs = append(errs, c.Correlator.Validate())
	}
	if c.LeaseInterval <= 0 {
		errs = append(errs, fmt.Errorf("lease interval: must be positive, got %v", c.LeaseInterval))
	}
	if c.StackTopology != "single" && c.StackTopology != "cluster" {
		errs = append(errs, fmt.Errorf("stack topology: must be single or cluster, got %q", c.StackTopology))
	}
	if c.EmbeddedNATSNodes != 1 && c.EmbeddedNATSNodes < 3 {
		errs = append(errs, fmt.Errorf("embedded nats nodes: must be 1 or at least 3, got %d", c.EmbeddedNATSNodes))
	}
	if c.runs(TargetRetention) && c.PostgresDSN != "" {
		errs = append(errs, c.Retention.Validate())
	}
	if c.runs(TargetGateway) {
		errs = append(errs, c.Gateway.Validate())
	}
	if c.runs(TargetWriter) {
		errs = append(errs, c.Writer.Validate())
	}
	if c.runs(TargetAPI) {
		errs = append(errs, c.API.Validate(), c.validateAPIReads())
	}
	if c.runs(modClickHouse) || c.runs(modAPIReads) {
		errs = append(errs, c.ClickHouse.Validate())
	}
	if c.NATSURL == "" && c.runs(modNATS) {
		if c.EmbeddedNATS.StoreDir == "" && c.StackDir == "" {
			errs = append(errs, errors.New("nats: set nats-url for an external cluster, or nats-store-dir (or stack-dir) for the embedded server"))
		}
		if c.EmbeddedNATS.MaxPayload <= 0 {
			errs = append(errs, errors.New("nats max payload: must be positive"))
		}
	}
	if c.Publisher.MaxMessageBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("nats max message bytes: must be at least 64 KiB, got %d", c.Publisher.MaxMessageBytes))
	}
	if c.DevAPIKey == "" && c.StackDir == "" && c.PostgresDSN == "" && c.runs(modTenancy) {
		errs = append(errs, errors.New("dev api key: set AFTERTRACE_DEV_API_KEY (or --dev-api-key)"))
	}
	if c.DevAPIKey != "" && len(c.DevAPIKey) < 8 {
		errs = append(errs, errors.New("dev api key: must be at least 8 characters"))
	}
	if c.AdminAPIKey != "" {
		if len(c.AdminAPIKey) < api.MinAdminKeyLen {
			errs = append(errs, fmt.Errorf("admin api key: must be at least %d characters", api.MinAdminKeyLen))
		}
		if c.PostgresDSN == "" && c.StackDir == "" {
			errs = append(errs, errors.New("admin api key: the admin API needs Postgres (postgres-dsn or stack-dir)"))
		}
		if c.AdminAPIKey == c.DevAPIKey {
			errs = append(errs, errors.New("admin api key: must differ from the dev api key"))
		}
	}
	if c.runs(modTenancy) {
		errs = append(errs, c.AuthCache.Validate())
		if c.OpsAddr != "" {
			if _, _, err := net.SplitHostPort(c.OpsAddr); err != nil {
				errs = append(errs, fmt.Errorf("ops addr %q is not host:port: %w", c.OpsAddr, err))
			}
		}
	}
	if c.DevTenantID == "" {
		errs = append(errs, errors.New("dev tenant id: must not be empty"))
	}
	if c.StackDir != "" {
		for name, p := range map[string]int{"stack clickhouse port": c.StackClickHouse, "stack clickhouse http port": c.StackClickHouseHT, "stack postgres port": c.StackPostgres} {
			if p <= 0 || p > 65535 {
				errs = append(errs, fmt.Errorf("%s: %d is not a port", name, p))
			}
		}
	}
	return errors.Join(errs...)
}
