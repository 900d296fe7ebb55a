// Package retention is the retention worker: it keeps forensic holds
// copied into the never-dropped "hold" class, places holds from capture
// rules, builds evidence bundles, and applies the retention in force: it
// drops the (date, retention_class) partitions whose days are over and
// deletes the rows a shortened policy no longer keeps, never letting one
// tenant's failing hold or trigger stall another. It runs inside
// `aftertrace run`; `aftertrace retention enforce` runs one enforcement.
package retention

import (
	"errors"
	"fmt"
	"time"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// Config tunes the worker.
type Config struct {
	// EnforceInterval is how often partitions are dropped; 0 disables
	// periodic enforcement (holds, capture rules and bundles still run).
	EnforceInterval time.Duration
	// HoldSyncInterval is how often open holds copy new rows.
	HoldSyncInterval time.Duration
	// CaptureInterval is how often capture rules look at new events.
	CaptureInterval time.Duration
	// BundlePollInterval is how often pending evidence bundles are looked for.
	BundlePollInterval time.Duration
	// DefaultDays keeps rows no policy matched ("default" class) per signal.
	DefaultDays map[retention.Signal]int
	// MaxBytes is the disk guard: when the managed tables hold more, the
	// oldest non-held partitions are dropped first (0: off).
	MaxBytes uint64
	// SettleDelay: hold copies run up to now minus this, so rows still
	// arriving for a second are not skipped by the watermark.
	SettleDelay time.Duration
	// CaptureLookback re-reads this much before the capture watermark, for
	// events that arrive late (holds are placed once per trigger anyway).
	CaptureLookback time.Duration
	// MaxBundleRows caps each signal's rows in an evidence bundle.
	MaxBundleRows int
	// SpoolDir is where bundles are built, one temp dir each, removed
	// after the build ("": the system's temp dir).
	SpoolDir string
	// MaxBundleBytes caps a bundle's files (the NDJSON, uncompressed): a
	// bigger one fails with error code bundle_too_large.
	MaxBundleBytes int64
	// MaxTenantBundleBytes caps the stored archives of one tenant's
	// bundles: one that would go over fails with error code
	// tenant_quota_exceeded (0: no cap).
	MaxTenantBundleBytes int64
	// MaxBundleAttempts bounds the builds of one bundle: a build that died
	// (crash, out of memory, restart) is retried until then, and the bundle
	// then fails with error code attempts_exhausted.
	MaxBundleAttempts int
	// BundleStaleAfter: a building bundle whose heartbeat is this old is
	// taken to have lost its builder.
	BundleStaleAfter time.Duration
	// MaxCaptureAttempts bounds the passes that retry a trigger whose holds
	// cannot be placed; it is then skipped (recorded and counted).
	MaxCaptureAttempts int
	// MutationTimeout bounds how long an enforcement waits for the row
	// deletions it started (they finish in the background after it).
	MutationTimeout time.Duration
}

// DefaultConfig: enforce hourly, 30 days for rows without a policy.
func DefaultConfig() Config {
	return Config{
		EnforceInterval:    time.Hour,
		HoldSyncInterval:   time.Minute,
		CaptureInterval:    15 * time.Second,
		BundlePollInterval: 2 * time.Second,
		DefaultDays: map[retention.Signal]int{
			retention.SignalSpans: 30, retention.SignalLogs: 30, retention.SignalMetrics: 30,
			retention.SignalEvents: 30, retention.SignalLinks: 30,
		},
		SettleDelay:          30 * time.Second,
		CaptureLookback:      time.Hour,
		MaxBundleRows:        200_000,
		MaxBundleBytes:       2 << 30,
		MaxTenantBundleBytes: 20 << 30,
		MaxBundleAttempts:    3,
		BundleStaleAfter:     10 * time.Minute,
		MaxCaptureAttempts:   5,
		MutationTimeout:      30 * time.Minute,
	}
}

// LongestDefaultDays is the longest of DefaultDays.
func (c Config) LongestDefaultDays() int {
	n := 0
	for _, d := range c.DefaultDays {
		n = max(n, d)
	}
	return n
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.EnforceInterval < 0 {
		errs = append(errs, errors.New("retention enforce interval: must not be negative"))
	}
	for name, d := range map[string]time.Duration{
		"retention hold sync interval": c.HoldSyncInterval, "retention capture interval": c.CaptureInterval,
		"retention bundle poll interval": c.BundlePollInterval, "retention bundle stale after": c.BundleStaleAfter,
		"retention mutation timeout": c.MutationTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive", name))
		}
	}
	for sig, d := range c.DefaultDays {
		if !sig.Valid() {
			errs = append(errs, fmt.Errorf("retention default days: unknown signal %q", sig))
		}
		if d < 0 {
			errs = append(errs, fmt.Errorf("retention default days of %s: must not be negative (0: keep forever)", sig))
		}
	}
	if c.SettleDelay < 0 || c.CaptureLookback < 0 {
		errs = append(errs, errors.New("retention settle delay and capture lookback: must not be negative"))
	}
	if c.MaxBundleRows < 1 {
		errs = append(errs, errors.New("retention max bundle rows: must be at least 1"))
	}
	if c.MaxBundleBytes < 1 {
		errs = append(errs, errors.New("retention bundle max bytes: must be at least 1"))
	}
	if c.MaxTenantBundleBytes < 0 {
		errs = append(errs, errors.New("retention tenant bundle max bytes: must not be negative (0: no cap)"))
	}
	if c.MaxBundleAttempts < 1 || c.MaxCaptureAttempts < 1 {
		errs = append(errs, errors.New("retention bundle and capture attempts: must be at least 1"))
	}
	return errors.Join(errs...)
}
