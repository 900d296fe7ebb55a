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

// drop removes the partitions of plan: whole, unless a failing hold's
// tenant has rows in one, whose rows then stay while the other tenants'
// are deleted (one mutation per table), or its copy before the drop
// failed.
func (e *enforcement) drop(ctx context.Context, plan []retention.Drop) {
	s := e.s
	partial := map[string][]partialDrop{}
	defer func() { e.deletePartitionRows(ctx, partial) }()
	for _, d := range plan {
		if e.skip[partKey(d.Date, d.Class)] {
			e.kept(d, nil, reasonRescueFailed)
			continue
		}
		if tenants := e.protectedOn(d.Date); len(tenants) > 0 {
			of, others, err := s.deps.Data.PartitionTenantRows(ctx, d.Table, d.Date, d.Class, tenants)
			if err != nil {
				e.fail("drop", fmt.Errorf("retention: %w", err))
				continue
			}
			if of > 0 {
				e.kept(d, tenants, reasonHoldNotSynced)
				if others > 0 {
					partial[d.Table] = append(partial[d.Table], partialDrop{d, tenants, others})
				}
				continue
			}
		}
		if err := s.deps.Data.DropPartition(ctx, d.Table, d.Date, d.Class); err != nil {
			e.fail("drop", err)
			continue
		}
		e.r.Drops = append(e.r.Drops, d)
		s.m.partitionsDropped.WithLabelValues(d.Table, d.Class, d.Reason).Inc()
		s.m.rowsDropped.WithLabelValues(d.Table, d.Class).Add(float64(d.Rows))
		s.log.Info("retention: dropped partition", "table", d.Table, "date", d.Date.Format(time.DateOnly),
			"class", d.Class, "rows", d.Rows, "bytes", d.Bytes, "reason", d.Reason)
	}
}

// kept records an expired partition that stays (partly).
func (e *enforcement) kept(d retention.Drop, tenants []string, reason string) {
	e.r.Kept = append(e.r.Kept, Kept{Partition: d.Partition, Tenants: tenants, Reason: reason})
	e.s.m.partitionsKept.WithLabelValues(d.Table, reason).Inc()
	e.s.log.Warn("retention: expired partition kept", "table", d.Table, "date", d.Date.Format(time.DateOnly),
		"class", d.Class, "reason", reason, "tenants kept", tenants)
}

// partialDrop is a kept partition whose other tenants' rows go.
type partialDrop struct {
	retention.Drop
	keep   []string
	others uint64
}

// deletePartitionRows deletes, per table, the rows of the kept partitions
// of every tenant but theirs.
func (e *enforcement) deletePartitionRows(ctx context.Context, partial map[string][]partialDrop) {
	for _, table := range slices.Sorted(maps.Keys(partial)) {
		ps := partial[table]
		kept := make([]chstore.KeptRows, len(ps))
		for i, p := range ps {
			kept[i] = chstore.KeptRows{Date: p.Date, Class: p.Class, Keep: p.keep}
		}
		if err := e.s.deps.Data.DeletePartitionRows(ctx, table, kept); err != nil {
			e.fail("drop", fmt.Errorf("retention: %w", err))
			continue
		}
		e.mutated[table] = true
		for _, p := range ps {
			e.r.Deletes = append(e.r.Deletes, Deletion{Table: table, Date: p.Date, Class: p.Class, Rows: p.others, Reason: p.Reason})
			e.s.m.rowsDeleted.WithLabelValues(table, p.Reason).Add(float64(p.others))
			e.s.log.Info("retention: deleted the other tenants' rows of a kept partition", "table", table,
				"date", p.Date.Format(time.DateOnly), "class", p.Class, "rows", p.others, "reason", p.Reason)
		}
	}
}
