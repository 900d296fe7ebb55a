package retention

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// rescue copies, before anything of plan is dropped, what must outlive
// the drops: late rows of open holds (rows whose time is before the
// hold's watermark, which its syncs never look at again) into the hold
// class, and rows a lengthened policy keeps into their class. One copy
// per table (and hold) covers all its partitions to drop. A failed policy
// copy keeps those partitions this time; a failed hold copy protects the
// hold's tenant like a failed sync.
func (e *enforcement) rescue(ctx context.Context, plan []retention.Drop) {
	byTable := map[string][]retention.Drop{}
	for _, d := range plan {
		if _, _, source, _ := chstore.KeepTable(d.Table); source { // index tables follow through their views
			byTable[d.Table] = append(byTable[d.Table], d)
		}
	}
	for _, table := range slices.Sorted(maps.Keys(byTable)) {
		dates := map[time.Time]bool{}
		var parts []retention.Partition // expired ones: the disk guard drops rows within their days on purpose
		for _, d := range byTable[table] {
			dates[retention.Day(d.Date)] = true
			if d.Reason == retention.ReasonExpired {
				parts = append(parts, d.Partition)
			}
		}
		for i := range e.holds {
			e.copyLate(ctx, &e.holds[i], table, dates)
		}
		tenants := e.longerKept(table, parts)
		if len(tenants) == 0 {
			continue
		}
		n, err := e.s.deps.Data.RescueKept(ctx, table, parts, e.asOf, e.keep, tenants)
		e.rescued(table, reasonLongerPolicy, n)
		if err != nil {
			for _, p := range parts {
				e.skip[partKey(p.Date, p.Class)] = true
			}
			e.fail("rescue", fmt.Errorf("retention: %s partitions kept: %w", table, err))
		}
	}
}

// copyLate copies h's late rows of table on the dates (those of its
// window) into the hold class; a failure protects h's tenant's window
// like a failed sync.
func (e *enforcement) copyLate(ctx context.Context, h *heldScope, table string, dates map[time.Time]bool) {
	if slices.ContainsFunc(e.protected[h.hold.TenantID], func(f HoldFailure) bool { return f.HoldID == h.hold.ID }) {
		return
	}
	var in []time.Time
	for d := range dates {
		key := h.hold.ID + "/" + table + "/" + d.Format(time.DateOnly)
		if !e.lateDone[key] && inWindow(d, timeOf(h.hold.Start), timeOf(h.hold.End)) {
			e.lateDone[key] = true
			in = append(in, d)
		}
	}
	if len(in) == 0 {
		return
	}
	slices.SortFunc(in, time.Time.Compare)
	n, err := e.s.deps.Data.CopyLateHeld(ctx, h.sel, table, in)
	e.rescued(table, reasonLateHold, n)
	if err != nil {
		f := e.s.holdFailed(ctx, h.hold, reasonLateCopyFailed, err, true)
		e.r.HoldFailures = append(e.r.HoldFailures, f)
		e.protect(f)
		return
	}
	if n > 0 {
		e.s.log.Info("retention: late rows copied into a hold before removal", "hold", h.hold.ID,
			"tenant", h.hold.TenantID, "table", table, "rows", n)
	}
}

func (e *enforcement) rescued(table, reason string, n uint64) {
	if n == 0 {
		return
	}
	e.r.Rescued[table] += n
	e.s.m.rowsRescued.WithLabelValues(table, reason).Add(float64(n))
}

// longerKept lists the tenants with policies that may keep some of their
// rows of table in parts longer than their partition does (the youngest
// partition's age decides): those rows are copied into their class
// before the partitions are dropped.
func (e *enforcement) longerKept(table string, parts []retention.Partition) []string {
	signals, _, _, ok := chstore.KeepTable(table)
	if !ok || len(parts) == 0 {
		return nil
	}
	youngest := e.age(parts[0].Date)
	for _, p := range parts {
		youngest = min(youngest, e.age(p.Date))
	}
	var out []string
	for tenant := range e.keep.Policies {
		if _, hi, _ := e.keep.Bounds(tenant, signals...); hi >= youngest {
			out = append(out, tenant)
		}
	}
	slices.Sort(out)
	return out
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
