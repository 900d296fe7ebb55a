package retention

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// Report is what one enforcement did (or, dry, would do).
type Report struct {
	AsOf   time.Time
	DryRun bool
	Drops  []retention.Drop
	// HoldRows are the rows the hold sync before the drops copied, per table.
	HoldRows map[string]uint64
}

// Enforce syncs every open hold (so held rows are copied before anything
// is dropped), then drops every partition whose class's days are over as
// of asOf, and with the disk guard the oldest others while over MaxBytes.
// "hold" partitions are never dropped. With dryRun nothing is written:
// the report is the plan. Every drop is logged and counted.
func (s *Service) Enforce(ctx context.Context, asOf time.Time, dryRun bool) (Report, error) {
	r := Report{AsOf: asOf, DryRun: dryRun}
	if !dryRun {
		rows, err := s.SyncHolds(ctx)
		if err != nil {
			return r, fmt.Errorf("retention: hold sync before enforcement (nothing dropped): %w", err)
		}
		r.HoldRows = rows
	}
	parts, err := s.deps.Data.ListPartitions(ctx)
	if err != nil {
		return r, fmt.Errorf("retention: %w", err)
	}
	r.Drops = retention.Plan(parts, retention.PlanConfig{AsOf: asOf, DefaultDays: s.cfg.DefaultDays, MaxBytes: s.cfg.MaxBytes})
	if dryRun {
		for _, d := range r.Drops {
			s.log.Info("retention: would drop partition", "table", d.Table, "date", d.Date.Format(time.DateOnly),
				"class", d.Class, "rows", d.Rows, "bytes", d.Bytes, "reason", d.Reason)
		}
		return r, nil
	}
	var errs []error
	done := r.Drops[:0:0]
	for _, d := range r.Drops {
		if err := s.deps.Data.DropPartition(ctx, d.Table, d.Date, d.Class); err != nil {
			errs = append(errs, err)
			s.m.failures.WithLabelValues("drop").Inc()
			continue
		}
		done = append(done, d)
		s.m.partitionsDropped.WithLabelValues(d.Table, d.Class, d.Reason).Inc()
		s.m.rowsDropped.WithLabelValues(d.Table, d.Class).Add(float64(d.Rows))
		s.log.Info("retention: dropped partition", "table", d.Table, "date", d.Date.Format(time.DateOnly),
			"class", d.Class, "rows", d.Rows, "bytes", d.Bytes, "reason", d.Reason)
	}
	r.Drops = done
	return r, errors.Join(errs...)
}
