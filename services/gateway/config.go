package gateway

import (
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/aftertrace/aftertrace/internal/limits"
	"github.com/aftertrace/aftertrace/internal/tlsconfig"
)

// Config configures the OTLP gateway.
type Config struct {
	// GRPCAddr is the OTLP/gRPC listen address (port 0 picks a free port).
	GRPCAddr string
	// HTTPAddr is the OTLP/HTTP listen address; it also answers /healthz
	// and /readyz (/metrics and /debug/pprof/ are on the process's ops
	// listener, not here).
	HTTPAddr string
	// GRPCMaxConnections caps the open OTLP/gRPC connections; connections
	// over it are closed at once (and counted). Each connection carries at
	// most MaxConcurrentRequests streams.
	GRPCMaxConnections int
	// MaxRequestBytes bounds one export request, both as received and after
	// decompression.
	MaxRequestBytes int64
	// MaxConcurrentRequests bounds the exports being read, decoded and
	// published at once; requests over it are shed with 503 / UNAVAILABLE
	// and a retry hint. On gRPC it also caps the streams per connection.
	MaxConcurrentRequests int
	// PublishTimeout bounds how long one export waits for the bus to
	// acknowledge its data.
	PublishTimeout time.Duration
	// ShutdownTimeout bounds the graceful drain of both servers; after it,
	// remaining connections are closed and in-flight exports cancelled.
	ShutdownTimeout time.Duration
	// DrainDelay is how long the gateway keeps serving after it reported
	// not-ready on shutdown, so load balancers can stop routing to it before
	// the listeners close. Zero drains at once.
	DrainDelay time.Duration
	// MaxInflightBytes bounds the bytes of all export requests being
	// decoded and published at once (each counted at its decompressed
	// size); requests over it are shed with 503 / UNAVAILABLE and a retry
	// hint instead of growing memory. At least MaxRequestBytes.
	MaxInflightBytes int64
	// TenantLimit is every tenant's default ingest rate limit (records/s
	// and bytes/s token buckets; 0 is unlimited) and window of record
	// times (older than MaxAge, else the longest retention, or more than
	// MaxFuture ahead: rejected through OTLP partial success). Rows of the
	// Postgres tenant_limits table override it per tenant. Over the rate,
	// exports are answered 429 / RESOURCE_EXHAUSTED with a retry hint.
	TenantLimit limits.Limit
	// LateAfter sends requests holding a record older than this to the
	// bulk lane (a backfill must not delay live data); 0: never.
	LateAfter time.Duration
	// TenantLimitsRefresh is how often the per-tenant overrides are re-read.
	TenantLimitsRefresh time.Duration
	// TLS, when its certificate is set, serves both OTLP listeners over TLS
	// (and requires client certificates if its ClientCAFile is set).
	TLS tlsconfig.Config
}

// DefaultConfig returns the configuration for a local gateway on the
// standard OTLP ports.
func DefaultConfig() Config {
	return Config{
		GRPCAddr:              "127.0.0.1:4317",
		HTTPAddr:              "127.0.0.1:4318",
		GRPCMaxConnections:    1024,
		MaxRequestBytes:       16 << 20,
		MaxConcurrentRequests: 64,
		PublishTimeout:        10 * time.Second,
		ShutdownTimeout:       10 * time.Second,
		MaxInflightBytes:      256 << 20,
		TenantLimit: limits.Limit{
			RecordsPerSecond: 100_000,
			RecordsBurst:     200_000,
			BytesPerSecond:   64 << 20,
			BytesBurst:       128 << 20,
			MaxFuture:        time.Hour,
			Retention:        30 * 24 * time.Hour,

			ShareRecordsPerSecond: 20_000,
		},
		LateAfter:           time.Hour,
		TenantLimitsRefresh: 30 * time.Second,
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	checkAddr := func(name, addr string) {
		if addr == "" {
			errs = append(errs, fmt.Errorf("gateway: %s must be set (host:port)", name))
			return
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("gateway: %s %q is not host:port: %w", name, addr, err))
		}
	}
	checkAddr("GRPCAddr", c.GRPCAddr)
	checkAddr("HTTPAddr", c.HTTPAddr)
	if c.GRPCAddr != "" && c.GRPCAddr == c.HTTPAddr {
		if _, port, err := net.SplitHostPort(c.GRPCAddr); err == nil && port != "0" {
			errs = append(errs, fmt.Errorf("gateway: GRPCAddr and HTTPAddr are both %q", c.GRPCAddr))
		}
	}
	if c.MaxRequestBytes <= 0 || c.MaxRequestBytes > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("gateway: MaxRequestBytes must be in 1..%d, got %d", math.MaxInt32, c.MaxRequestBytes))
	}
	if c.GRPCMaxConnections <= 0 {
		errs = append(errs, fmt.Errorf("gateway: GRPCMaxConnections must be positive, got %d", c.GRPCMaxConnections))
	}
	if c.MaxConcurrentRequests <= 0 || c.MaxConcurrentRequests > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("gateway: MaxConcurrentRequests must be positive, got %d", c.MaxConcurrentRequests))
	}
	if c.PublishTimeout <= 0 {
		errs = append(errs, fmt.Errorf("gateway: PublishTimeout must be positive, got %v", c.PublishTimeout))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("gateway: ShutdownTimeout must be positive, got %v", c.ShutdownTimeout))
	}
	if c.DrainDelay < 0 {
		errs = append(errs, fmt.Errorf("gateway: DrainDelay must not be negative, got %v", c.DrainDelay))
	}
	if c.MaxInflightBytes < c.MaxRequestBytes {
		errs = append(errs, fmt.Errorf("gateway: MaxInflightBytes must be at least MaxRequestBytes (%d), got %d", c.MaxRequestBytes, c.MaxInflightBytes))
	}
	if err := c.TenantLimit.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("gateway: TenantLimit: %w", err))
	}
	if c.LateAfter < 0 {
		errs = append(errs, fmt.Errorf("gateway: LateAfter must not be negative, got %v", c.LateAfter))
	}
	if c.TenantLimitsRefresh <= 0 {
		errs = append(errs, fmt.Errorf("gateway: TenantLimitsRefresh must be positive, got %v", c.TenantLimitsRefresh))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("gateway: %w", err))
	}
	return errors.Join(errs...)
}
