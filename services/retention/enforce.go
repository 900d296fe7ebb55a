package retention

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// Report is what one enforcement did (or, dry, would do).
type Report struct {
	AsOf   time.Time
	DryRun bool
	// Drops are the partitions dropped whole (dry run: to drop).
	Drops []retention.Drop
	// Kept are expired partitions not dropped whole: a hold of Tenants
	// could not copy (their rows stay, the other tenants' are deleted), or
	// the copy before the drop failed.
	Kept []Kept
	// Deletes are rows deleted by mutation: the other tenants' rows of
	// kept partitions, and rows a shortened policy no longer keeps (dry
	// run: to delete).
	Deletes []Deletion
	// Rescued are the rows copied before drops and deletes, per table:
	// late rows into open holds, and rows a lengthened policy keeps.
	Rescued map[string]uint64
	// HoldRows are the rows the hold sync before the drops copied, per table.
	HoldRows map[string]uint64
	// HoldFailures are the holds that could not copy.
	HoldFailures []HoldFailure
}

// Kept is an expired partition that was not dropped whole, and why.
type Kept struct {
	retention.Partition
	Tenants []string // whose rows stay
	Reason  string
}

// Deletion is rows deleted by a mutation of one table (Date and Class set
// for a kept partition's other tenants).
type Deletion struct {
	Table  string
	Date   time.Time
	Class  string
	Rows   uint64
	Reason string
}

// Enforce applies the retention in force as of asOf, one tenant never
// stalling another:
//
//  1. every open hold copies its new rows; a hold that cannot is recorded
//     and only its tenant's rows of its window are kept below;
//  2. before anything is removed, late rows of open holds are copied into
//     the hold class, and rows a lengthened policy keeps longer than their
//     partition are copied into their class;
//  3. every partition older than its class keeps (and, with the disk
//     guard, the oldest others while over MaxBytes) is dropped, or, where
//     a failing hold's tenant has rows, those rows stay and the others are
//     deleted;
//  4. rows a shortened policy no longer keeps are deleted from the
//     partitions that still hold them.
//
// "hold" rows are never removed. With dryRun nothing is written: the
// report is the plan. Every removal is logged and counted.
func (s *Service) Enforce(ctx context.Context, asOf time.Time, dryRun bool) (Report, error) {
	r := Report{AsOf: asOf, DryRun: dryRun, Rescued: map[string]uint64{}}
	var synced syncResult
	if !dryRun {
		var err error
		if synced, err = s.syncHolds(ctx); err != nil {
			return r, fmt.Errorf("retention: hold sync before enforcement (nothing dropped): %w", err)
		}
		r.HoldRows, r.HoldFailures = synced.rows, synced.failures
	}
	keep, err := s.keep(ctx)
	if err != nil {
		return r, fmt.Errorf("retention: policies (nothing dropped): %w", err)
	}
	parts, err := s.deps.Data.ListPartitions(ctx)
	if err != nil {
		return r, fmt.Errorf("retention: %w", err)
	}
	plan := retention.Plan(parts, retention.PlanConfig{AsOf: asOf, DefaultDays: s.cfg.DefaultDays, MaxBytes: s.cfg.MaxBytes})
	e := &enforcement{s: s, r: &r, asOf: asOf, keep: keep, holds: synced.holds, mutated: map[string]bool{}, skip: map[string]bool{},
		lateDone: map[string]bool{}}
	for _, f := range synced.failures {
		if f.Protects {
			e.protect(f)
		}
	}
	if dryRun {
		r.Drops = plan
		for _, d := range plan {
			s.log.Info("retention: would drop partition", "table", d.Table, "date", d.Date.Format(time.DateOnly),
				"class", d.Class, "rows", d.Rows, "bytes", d.Bytes, "reason", d.Reason)
		}
		e.deleteExpired(ctx, parts, plan)
		return r, errors.Join(e.errs...)
	}
	e.rescue(ctx, plan)
	e.drop(ctx, plan)
	e.waitMutations(ctx)
	e.deleteExpired(ctx, parts, plan)
	e.waitMutations(ctx)
	return r, errors.Join(e.errs...)
}

// keep is the retention in force.
func (s *Service) keep(ctx context.Context) (retention.Keep, error) {
	ps, err := s.deps.State.AllPolicies(ctx)
	if err != nil {
		return retention.Keep{}, err
	}
	return retention.Keep{Policies: ps, DefaultDays: s.cfg.DefaultDays}, nil
}

// enforcement is the state of one Enforce.
type enforcement struct {
	s     *Service
	r     *Report
	asOf  time.Time
	keep  retention.Keep
	holds []heldScope
	// protected are the windows of failing holds, per tenant.
	protected map[string][]HoldFailure
	// skip are the (date, class) keys whose copy before the drop failed.
	skip map[string]bool
	// lateDone are the hold/table/date late copies made (one covers every
	// class of the date).
	lateDone map[string]bool
	mutated  map[string]bool // tables with mutations to wait for
	errs     []error
}

func partKey(date time.Time, class string) string { return date.Format(time.DateOnly) + "/" + class }

// protect keeps f's tenant's rows of f's window from removal.
func (e *enforcement) protect(f HoldFailure) {
	if e.protected == nil {
		e.protected = map[string][]HoldFailure{}
	}
	e.protected[f.TenantID] = append(e.protected[f.TenantID], f)
}

// inWindow reports whether day's rows may fall in [from, to] (zero:
// unbounded).
func inWindow(day, from, to time.Time) bool {
	day = retention.Day(day)
	return (from.IsZero() || !day.Before(retention.Day(from))) && (to.IsZero() || !day.After(retention.Day(to)))
}

// protectedOn lists the tenants whose rows of day are kept.
func (e *enforcement) protectedOn(day time.Time) []string {
	var out []string
	for tenant, fs := range e.protected {
		if slices.ContainsFunc(fs, func(f HoldFailure) bool { return inWindow(day, f.From, f.To) }) {
			out = append(out, tenant)
		}
	}
	slices.Sort(out)
	return out
}

// age is a partition's age in days as of the enforcement.
func (e *enforcement) age(date time.Time) int {
	return int(retention.Day(e.asOf).Sub(retention.Day(date)).Hours() / 24)
}

func (e *enforcement) fail(task string, err error) {
	e.s.m.failures.WithLabelValues(task).Inc()
	e.errs = append(e.errs, err)
}

// waitMutations waits, up to MutationTimeout, for the deletions started.
func (e *enforcement) waitMutations(ctx context.Context) {
	if len(e.mutated) == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, e.s.cfg.MutationTimeout)
	defer cancel()
	for _, table := range slices.Sorted(maps.Keys(e.mutated)) {
		if err := e.s.deps.Data.WaitMutations(wctx, table); err != nil {
			e.fail("mutation", fmt.Errorf("retention: %w", err))
		}
	}
	clear(e.mutated)
}
