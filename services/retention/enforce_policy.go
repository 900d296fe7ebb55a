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

// deleteExpired deletes, by a mutation per table, the rows the retention
// in force no longer keeps from the partitions that still hold them:
// rows written under a longer policy, or before a policy existed. Their
// partition is kept for its class's days, so without this a shortened
// policy would reach stored rows only weeks later. Rows of a tenant with a
// failing hold stay; late rows of open holds are copied first; hold rows
// are never deleted. A dry run only counts.
func (e *enforcement) deleteExpired(ctx context.Context, parts []retention.Partition, plan []retention.Drop) {
	planned := map[string]bool{}
	for _, d := range plan {
		planned[d.Table+"/"+partKey(d.Date, d.Class)] = true
	}
	byTable := map[string][]retention.Partition{}
	for _, p := range parts {
		if p.Class != retention.ClassHold && !planned[p.Table+"/"+partKey(p.Date, p.Class)] {
			byTable[p.Table] = append(byTable[p.Table], p)
		}
	}
	for _, table := range slices.Sorted(maps.Keys(byTable)) {
		tenants, upto := e.expiring(table, byTable[table])
		if len(tenants) == 0 {
			continue
		}
		counts, err := e.s.deps.Data.ExpiredRows(ctx, table, e.asOf, upto, e.keep, tenants)
		if err != nil {
			e.fail("policy", fmt.Errorf("retention: %w", err))
			continue
		}
		if total(counts) == 0 {
			continue
		}
		if !e.r.DryRun && e.holdLateRows(ctx, table, tenants, counts) {
			// A hold of one of them could not copy: leave its tenant out.
			tenants = slices.DeleteFunc(tenants, func(t string) bool { _, p := e.protected[t]; return p })
			if len(tenants) == 0 {
				continue
			}
			if counts, err = e.s.deps.Data.ExpiredRows(ctx, table, e.asOf, upto, e.keep, tenants); err != nil {
				e.fail("policy", fmt.Errorf("retention: %w", err))
				continue
			}
		}
		n := total(counts)
		if n == 0 {
			continue
		}
		if e.r.DryRun {
			e.r.Deletes = append(e.r.Deletes, Deletion{Table: table, Rows: n, Reason: reasonPolicy})
			e.s.log.Info("retention: would delete rows the policy in force no longer keeps", "table", table, "rows", n, "tenants", tenants)
			continue
		}
		if err := e.s.deps.Data.DeleteExpired(ctx, table, e.asOf, upto, e.keep, tenants); err != nil {
			e.fail("policy", fmt.Errorf("retention: %w", err))
			continue
		}
		e.mutated[table] = true
		e.r.Deletes = append(e.r.Deletes, Deletion{Table: table, Rows: n, Reason: reasonPolicy})
		e.s.m.rowsDeleted.WithLabelValues(table, reasonPolicy).Add(float64(n))
		e.s.log.Info("retention: deleted rows the policy in force no longer keeps", "table", table, "rows", n, "tenants", tenants)
	}
}

// expiring lists the tenants with policies (not protected) that may have
// rows of table in ps older than the policy in force keeps them, and the
// latest date of such partitions.
func (e *enforcement) expiring(table string, ps []retention.Partition) (tenants []string, upto time.Time) {
	signals, exact, _, ok := chstore.KeepTable(table)
	if !ok {
		return nil, upto
	}
	for _, tenant := range slices.Sorted(maps.Keys(e.keep.Policies)) {
		if _, p := e.protected[tenant]; p {
			continue
		}
		lo, hi, _ := e.keep.Bounds(tenant, signals...)
		if !exact {
			lo = hi // rows of these tables are deleted only past the tenant's longest days
		}
		found := false
		for _, p := range ps {
			if e.age(p.Date) > lo {
				found = true
				if p.Date.After(upto) {
					upto = p.Date
				}
			}
		}
		if found {
			tenants = append(tenants, tenant)
		}
	}
	return tenants, upto
}

// holdLateRows copies the late rows of the tenants' open holds of table on
// the dates about to lose rows; it reports whether one failed.
func (e *enforcement) holdLateRows(ctx context.Context, table string, tenants []string, counts map[time.Time]uint64) (failed bool) {
	if _, _, source, _ := chstore.KeepTable(table); !source {
		return false
	}
	dates := map[time.Time]bool{}
	for d, n := range counts {
		if n > 0 {
			dates[retention.Day(d)] = true
		}
	}
	for i := range e.holds {
		h := &e.holds[i]
		if !slices.Contains(tenants, h.hold.TenantID) {
			continue
		}
		before := len(e.protected[h.hold.TenantID])
		e.copyLate(ctx, h, table, dates)
		failed = failed || len(e.protected[h.hold.TenantID]) > before
	}
	return failed
}

func total(m map[time.Time]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}
