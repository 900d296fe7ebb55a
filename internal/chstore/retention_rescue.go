package chstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// selectionTable returns the selection rules of a signal table.
func selectionTable(table string) (*selTable, bool) {
	for i := range selectionTables {
		if selectionTables[i].name == table {
			return &selectionTables[i], true
		}
	}
	return nil, false
}

// copyInto copies the rows of table matching where into the same table,
// with retention_class set by classExpr, if there are any; it returns how
// many. Index tables follow through their materialized views.
func (s *Store) copyInto(ctx context.Context, table, where string, whereArgs []any, classExpr string, classArgs []any) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+table+" WHERE "+where, whereArgs...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	if n == 0 {
		return 0, nil
	}
	cols, err := s.tableColumns(ctx, table)
	if err != nil || len(cols) == 0 {
		return 0, err
	}
	names := make([]string, len(cols))
	exprs := make([]string, len(cols))
	var args []any
	for j, c := range cols {
		names[j] = quoteIdent(c.name)
		exprs[j] = names[j]
		if c.name == "retention_class" {
			exprs[j] = classExpr
			args = append(args, classArgs...)
		}
	}
	q := "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ") SELECT " + strings.Join(exprs, ", ") +
		" FROM " + table + " WHERE " + where
	if err := s.conn.Exec(ctx, q, append(args, whereArgs...)...); err != nil {
		return 0, fmt.Errorf("copy %s: %w", table, err)
	}
	return n, nil
}

// datesIn is a condition on the date column for dates (bounds first, so
// ClickHouse reads only those partitions), and its args.
func datesIn(dates []time.Time) (string, []any) {
	lo, hi := dates[0], dates[0]
	marks := make([]string, len(dates))
	args := make([]any, 0, len(dates)+2)
	for i, d := range dates {
		lo, hi = minTime(lo, d), maxTime(hi, d)
		marks[i] = "toDate(?)"
	}
	args = append(args, dateArg(lo), dateArg(hi))
	for _, d := range dates {
		args = append(args, dateArg(d))
	}
	return "date >= toDate(?) AND date <= toDate(?) AND date IN (" + strings.Join(marks, ", ") + ")", args
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// CopyLateHeld copies into the hold class the rows of table dated one of
// dates that sel (an open hold's scope and window) selects and that have
// no hold copy yet, whatever their time relative to the hold's watermark:
// rows that arrived late (collector retries, a backlog after an outage,
// late Falco alerts) are held before their partition is dropped or their
// rows deleted. A copy keeps its row's date, so copies are found by row
// identity among the hold rows of the same dates: nothing is copied twice.
// It returns the rows copied.
func (s *Store) CopyLateHeld(ctx context.Context, sel retention.Selection, table string, dates []time.Time) (uint64, error) {
	t, ok := selectionTable(table)
	if !ok || sel.Empty() || len(dates) == 0 {
		return 0, nil
	}
	where, args, ok := t.where(&sel)
	if !ok {
		return 0, nil
	}
	dw, dargs := datesIn(dates)
	where += " AND " + dw + " AND retention_class != 'hold' AND (" + t.identity + ") NOT IN (SELECT " + t.identity +
		" FROM " + t.name + " WHERE tenant_id = ? AND " + dw + " AND retention_class = 'hold')"
	args = append(append(append(args, dargs...), sel.TenantID), dargs...)
	n, err := s.copyInto(ctx, t.name, where, args, "?", []any{retention.ClassHold})
	if err != nil {
		return n, fmt.Errorf("late rows into a hold: %w", err)
	}
	return n, nil
}

// RescueKept copies, before the partitions parts of table are dropped as
// of asOf, the rows of tenants that the retention in force keeps longer
// than their partition's class into the class it gives them: rows written
// under a shorter policy outlive its drop when the policy was lengthened.
// Only source tables are copied (the index tables follow through their
// views). It returns the rows copied.
func (s *Store) RescueKept(ctx context.Context, table string, parts []retention.Partition, asOf time.Time, k retention.Keep, tenants []string) (uint64, error) {
	kt, ok := keepTables[table]
	if !ok || !kt.source || len(tenants) == 0 || len(parts) == 0 {
		return 0, nil
	}
	dates := make([]time.Time, len(parts))
	pairs := make([]string, len(parts))
	var pargs []any
	for i, p := range parts {
		if !retention.ValidClass(p.Class) || p.Class == retention.ClassHold {
			return 0, fmt.Errorf("rescue: class %q", p.Class)
		}
		dates[i] = p.Date
		pairs[i] = "(toDate(?), ?)"
		pargs = append(pargs, dateArg(p.Date), p.Class)
	}
	dw, dargs := datesIn(dates)
	var total uint64
	for _, chunk := range kt.tenantChunks(k, tenants) {
		e := kt.keepExprs(k, chunk)
		where := dw + " AND (date, retention_class) IN (" + strings.Join(pairs, ", ") + ") AND has(?, tenant_id) AND " +
			ageExpr + " <= " + e.days
		args := append(append(append(append([]any{}, dargs...), pargs...), chunk, dateArg(asOf)), e.daysArgs...)
		n, err := s.copyInto(ctx, table, where, args, e.class, e.classArgs)
		total += n
		if err != nil {
			return total, fmt.Errorf("rows a policy keeps longer: %w", err)
		}
	}
	return total, nil
}
