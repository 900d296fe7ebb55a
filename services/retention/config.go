// Package retention is the retention worker: it keeps forensic holds
// copied into the never-dropped "hold" class, places holds from capture
// rules, builds evidence bundles, and drops the (date, retention_class)
// partitions whose days are over. It runs inside `aftertrace run`;
// `aftertrace retention enforce` runs one enforcement.
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
		SettleDelay:     30 * time.Second,
		CaptureLookback: time.Hour,
		MaxBundleRows:   200_000,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.EnforceInterval < 0 {
		errs = append(errs, errors.New("retention enforce interval: must not be negative"))
	}
	for name, d := range map[string]time.Duration{
		"retention hold sync interval": c.HoldSyncInterval, "retention capture interval": c.CaptureInterval,
		"retention bundle poll interval": c.BundlePollInterval,
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
	return errors.Join(errs...)
}
