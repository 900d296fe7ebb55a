package chstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// checkPartition validates what reaches an ALTER: a retention-managed
// table and a class retention may remove.
func checkPartition(table, class string) error {
	if _, ok := keepTables[table]; !ok {
		return fmt.Errorf("%q is not a retention-managed table", table)
	}
	if !retention.ValidClass(class) || class == retention.ClassHold {
		return fmt.Errorf("class %q may not be removed", class)
	}
	return nil
}

// PartitionTenantRows counts the rows of a (date, class) partition that
// belong to tenants and to the other tenants.
func (s *Store) PartitionTenantRows(ctx context.Context, table string, date time.Time, class string, tenants []string) (of, others uint64, err error) {
	if err := checkPartition(table, class); err != nil {
		return 0, 0, err
	}
	err = s.conn.QueryRow(ctx,
		"SELECT countIf(has(?, tenant_id)), countIf(NOT has(?, tenant_id)) FROM "+table+" WHERE date = toDate(?) AND retention_class = ?",
		tenants, tenants, dateArg(date), class).Scan(&of, &others)
	if err != nil {
		return 0, 0, fmt.Errorf("count partition rows of %s: %w", table, err)
	}
	return of, others, nil
}

// KeptRows is an expired partition whose rows of the Keep tenants stay
// while the other tenants' go.
type KeptRows struct {
	Date  time.Time
	Class string
	Keep  []string
}

// maxKeptPerMutation bounds the partitions one mutation names.
const maxKeptPerMutation = 100

// DeletePartitionRows deletes, by one mutation per up to 100 partitions,
// the rows of each partition of table of every tenant but its Keep:
// enforcement's partial drop while a hold of those tenants cannot copy.
// ClickHouse rewrites only the parts that hold such rows, in the
// background (WaitMutations).
func (s *Store) DeletePartitionRows(ctx context.Context, table string, parts []KeptRows) error {
	for len(parts) > 0 {
		n := min(len(parts), maxKeptPerMutation)
		var conds []string
		var args []any
		for _, p := range parts[:n] {
			if err := checkPartition(table, p.Class); err != nil {
				return err
			}
			conds = append(conds, "(date = toDate(?) AND retention_class = ? AND NOT has(?, tenant_id))")
			args = append(args, dateArg(p.Date), p.Class, p.Keep)
		}
		if err := s.conn.Exec(ctx, "ALTER TABLE "+s.ddlTarget(table)+" DELETE WHERE "+strings.Join(conds, " OR "), args...); err != nil {
			return fmt.Errorf("delete partition rows of %s: %w", table, err)
		}
		parts = parts[n:]
	}
	return nil
}

// expiredWhere selects the rows of tenants dated up to upto that the
// retention in force no longer keeps as of asOf (hold copies never).
func expiredWhere(e keepExpr, tenants []string, asOf, upto time.Time) (string, []any) {
	return "has(?, tenant_id) AND retention_class != 'hold' AND date <= toDate(?) AND " + ageExpr + " > " + e.days,
		append([]any{tenants, dateArg(upto), dateArg(asOf)}, e.daysArgs...)
}

// ExpiredRows counts, per date, the rows of tenants in table dated up to
// upto that the retention in force no longer keeps as of asOf although
// their partition still does (written under a longer policy).
func (s *Store) ExpiredRows(ctx context.Context, table string, asOf, upto time.Time, k retention.Keep, tenants []string) (map[time.Time]uint64, error) {
	kt, ok := keepTables[table]
	if !ok {
		return nil, fmt.Errorf("expired rows: %q is not a retention-managed table", table)
	}
	out := map[time.Time]uint64{}
	for _, chunk := range kt.tenantChunks(k, tenants) {
		where, args := expiredWhere(kt.keepExprs(k, chunk), chunk, asOf, upto)
		rows, err := s.conn.Query(ctx, "SELECT date, count() FROM "+table+" WHERE "+where+" GROUP BY date", args...)
		if err != nil {
			return nil, fmt.Errorf("expired rows of %s: %w", table, err)
		}
		for rows.Next() {
			var d time.Time
			var n uint64
			if err := rows.Scan(&d, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("expired rows of %s: %w", table, err)
			}
			out[retention.Day(d)] += n
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("expired rows of %s: %w", table, err)
		}
	}
	return out, nil
}

// DeleteExpired deletes, by mutations, the rows ExpiredRows counts: a
// shortened policy applies to rows already stored. ClickHouse rewrites
// only the parts that hold such rows, in the background (WaitMutations).
func (s *Store) DeleteExpired(ctx context.Context, table string, asOf, upto time.Time, k retention.Keep, tenants []string) error {
	kt, ok := keepTables[table]
	if !ok {
		return fmt.Errorf("delete expired rows: %q is not a retention-managed table", table)
	}
	for _, chunk := range kt.tenantChunks(k, tenants) {
		where, args := expiredWhere(kt.keepExprs(k, chunk), chunk, asOf, upto)
		if err := s.conn.Exec(ctx, "ALTER TABLE "+s.ddlTarget(table)+" DELETE WHERE "+where, args...); err != nil {
			return fmt.Errorf("delete expired rows of %s: %w", table, err)
		}
	}
	return nil
}

// mutationPoll is how often WaitMutations looks.
const mutationPoll = 200 * time.Millisecond

// WaitMutations waits until table has no unfinished mutation, or ctx ends.
func (s *Store) WaitMutations(ctx context.Context, table string) error {
	t := time.NewTicker(mutationPoll)
	defer t.Stop()
	local := table
	if s.cfg.Cluster != "" {
		local += "_local"
	}
	for {
		var n uint64
		if err := s.conn.QueryRow(ctx,
			"SELECT count() FROM "+s.systemTable("mutations")+" WHERE database = ? AND table = ? AND is_done = 0", s.cfg.Database, local).Scan(&n); err != nil {
			return fmt.Errorf("mutations of %s: %w", table, err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mutations of %s still running (they finish in the background): %w", table, ctx.Err())
		case <-t.C:
		}
	}
}
