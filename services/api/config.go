package api

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/aftertrace/aftertrace/internal/tlsconfig"
)

// Config configures the query API.
type Config struct {
	// Addr is the listen address (port 0 picks a free port). It serves the
	// API and /healthz and /readyz (/metrics and /debug/pprof/ are on the
	// process's ops listener, not here).
	Addr string
	// ShutdownTimeout bounds the graceful drain on shutdown; after it,
	// remaining connections are closed and in-flight queries cancelled.
	ShutdownTimeout time.Duration
	// DefaultSearchWindow is the trace search window when start is not
	// given: [end - DefaultSearchWindow, end].
	DefaultSearchWindow time.Duration
	// MaxSearchWindow bounds end - start of a trace search and of a service
	// listing.
	MaxSearchWindow time.Duration
	// DefaultLimit is the page size of a trace search without limit.
	DefaultLimit int
	// MaxLimit bounds the limit parameter of a trace search.
	MaxLimit int
	// TLS, when its certificate is set, serves the API over TLS (and
	// requires client certificates if its ClientCAFile is set).
	TLS tlsconfig.Config
	// Reads bounds what one request and one tenant may read (read_limits.go).
	Reads ReadLimits
}

// DefaultConfig returns the configuration of a local API.
func DefaultConfig() Config {
	return Config{
		Addr:                "127.0.0.1:8080",
		ShutdownTimeout:     10 * time.Second,
		DefaultSearchWindow: time.Hour,
		MaxSearchWindow:     7 * 24 * time.Hour,
		DefaultLimit:        20,
		MaxLimit:            1000,
		Reads:               DefaultReadLimits(),
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("api: Addr must be set (host:port)"))
	} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("api: Addr %q is not host:port: %w", c.Addr, err))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("api: ShutdownTimeout must be positive, got %v", c.ShutdownTimeout))
	}
	if c.DefaultSearchWindow <= 0 {
		errs = append(errs, fmt.Errorf("api: DefaultSearchWindow must be positive, got %v", c.DefaultSearchWindow))
	}
	if c.MaxSearchWindow <= 0 {
		errs = append(errs, fmt.Errorf("api: MaxSearchWindow must be positive, got %v", c.MaxSearchWindow))
	}
	if c.DefaultSearchWindow > 0 && c.MaxSearchWindow > 0 && c.DefaultSearchWindow > c.MaxSearchWindow {
		errs = append(errs, fmt.Errorf("api: DefaultSearchWindow %v exceeds MaxSearchWindow %v", c.DefaultSearchWindow, c.MaxSearchWindow))
	}
	if c.MaxLimit <= 0 {
		errs = append(errs, fmt.Errorf("api: MaxLimit must be positive, got %d", c.MaxLimit))
	} else if c.MaxLimit > maxMaxLimit {
		errs = append(errs, fmt.Errorf("api: MaxLimit must be at most %d, got %d", maxMaxLimit, c.MaxLimit))
	}
	if c.DefaultLimit <= 0 {
		errs = append(errs, fmt.Errorf("api: DefaultLimit must be positive, got %d", c.DefaultLimit))
	} else if c.MaxLimit > 0 && c.DefaultLimit > c.MaxLimit {
		errs = append(errs, fmt.Errorf("api: DefaultLimit %d exceeds MaxLimit %d", c.DefaultLimit, c.MaxLimit))
	}
	errs = append(errs, c.Reads.validate())
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("api: %w", err))
	}
	return errors.Join(errs...)
}

// maxMaxLimit bounds MaxLimit: one page is summarized by a single query
// whose trace id list grows with it.
const maxMaxLimit = 10000
