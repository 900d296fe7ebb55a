package chstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// selTable is how a retention.Selection applies to one signal table; the
// expressions are fixed here (closed), only values are bound.
type selTable struct {
	name      string
	signal    string // bundle file name stem
	container string // expression matched against short container ids ("" none)
	pod       string
	namespace string
	trace     string // expression giving the lower-case hex trace id
	// viaEvents: rows match through the container events they belong to
	// (event_links has no container columns).
	viaEvents bool
	// viaLinks: rows match a trace through event_links (container_events).
	viaLinks bool
	seconds  string // the row time in unix seconds, for the window
	identity string // LIMIT 1 BY (read-time dedup)
	order    string
}

// SelectionTables are the tables a hold copies and a bundle exports, in
// bundle order. Index tables (trace_index, log_trace_index,
// trace_event_index, container_sightings) are filled by their materialized
// views from the copies.
var selectionTables = []selTable{
	{name: "spans", signal: "spans", container: "substring(container_id, 1, 12)", pod: "k8s_pod_uid", namespace: "k8s_namespace_name",
		trace: "lower(hex(trace_id))", seconds: "toUInt32(timestamp)", identity: "trace_id, span_id", order: "start_time_unix_nano, span_id"},
	{name: "logs", signal: "logs", container: "substring(container_id, 1, 12)", pod: "k8s_pod_uid", namespace: "k8s_namespace_name",
		trace: "lower(hex(trace_id))", seconds: "toUInt32(timestamp)", identity: "record_id", order: "timestamp, record_id"},
	{name: "metric_points", signal: "metrics", container: "substring(container_id, 1, 12)", pod: "k8s_pod_uid", namespace: "k8s_namespace_name",
		seconds: "toUInt32(timestamp)", identity: "metric_name, series_id, time_unix_nano", order: "metric_name, series_id, time_unix_nano"},
	{name: "container_events", signal: "events", container: "container_id_short", pod: "k8s_pod_uid", namespace: "k8s_namespace_name",
		viaLinks: true, seconds: "toUInt32(timestamp)", identity: "event_id", order: "time_unix_nano, event_id"},
	{name: "event_links", signal: "links", viaEvents: true, trace: "lower(hex(trace_id))",
		seconds: "intDiv(event_time_unix_nano, 1000000000)", identity: "event_id, trace_id", order: "event_time_unix_nano, event_id, trace_id"},
}

// eventsMatch is the condition on container_events columns for sel's
// containers, pods and namespaces ("" when it has none).
func eventsMatch(sel *retention.Selection) (string, []any) {
	var conds []string
	var args []any
	add := func(expr string, vals []string) {
		if len(vals) > 0 {
			conds = append(conds, "has(?, "+expr+")")
			args = append(args, vals)
		}
	}
	add("container_id_short", sel.Containers)
	add("k8s_pod_uid", sel.Pods)
	add("k8s_namespace_name", sel.Namespaces)
	return strings.Join(conds, " OR "), args
}

// where builds the WHERE clause of sel on t; ok is false when sel can
// match no row of t.
func (t *selTable) where(sel *retention.Selection) (string, []any, bool) {
	var conds []string
	var args []any
	add := func(expr string, vals []string) {
		if expr != "" && len(vals) > 0 {
			conds = append(conds, "has(?, "+expr+")")
			args = append(args, vals)
		}
	}
	add(t.container, sel.Containers)
	add(t.pod, sel.Pods)
	add(t.namespace, sel.Namespaces)
	add(t.trace, sel.TraceIDs)
	if t.viaEvents {
		if m, a := eventsMatch(sel); m != "" {
			conds = append(conds, "event_id IN (SELECT event_id FROM container_events WHERE tenant_id = ? AND ("+m+"))")
			args = append(args, sel.TenantID)
			args = append(args, a...)
		}
	}
	if t.viaLinks && len(sel.TraceIDs) > 0 {
		conds = append(conds, "event_id IN (SELECT event_id FROM event_links WHERE tenant_id = ? AND has(?, lower(hex(trace_id))))")
		args = append(args, sel.TenantID, sel.TraceIDs)
	}
	if len(conds) == 0 {
		return "", nil, false
	}
	w := "tenant_id = ? AND (" + strings.Join(conds, " OR ") + ")"
	args = append([]any{sel.TenantID}, args...)
	if !sel.After.IsZero() {
		w += " AND " + t.seconds + " > ?"
		args = append(args, sel.After.Unix())
	}
	if !sel.Upto.IsZero() {
		w += " AND " + t.seconds + " <= ?"
		args = append(args, sel.Upto.Unix())
	}
	return w, args, true
}

// tableColumn is one column of a table as system.columns describes it.
type tableColumn struct {
	name, typ string
}

// tableColumns returns the stored (not MATERIALIZED/ALIAS) columns of a
// table in table order; the names come from the server, never a client.
func (s *Store) tableColumns(ctx context.Context, table string) ([]tableColumn, error) {
	rows, err := s.conn.Query(ctx,
		`SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = ? AND default_kind NOT IN ('MATERIALIZED', 'ALIAS')`, table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	defer rows.Close()
	var out []tableColumn
	for rows.Next() {
		var c tableColumn
		if err := rows.Scan(&c.name, &c.typ); err != nil {
			return nil, fmt.Errorf("columns of %s: %w", table, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	return out, nil
}

// quoteIdent quotes a column name from system.columns.
func quoteIdent(name string) string { return "`" + strings.ReplaceAll(name, "`", "\\`") + "`" }

// CopyHeld copies the rows sel selects (that are not hold copies already)
// of every signal table into the same table with retention_class 'hold',
// where no partition is ever dropped; the index tables follow through
// their materialized views. Reads dedup by identity, so the copies stay
// invisible next to the originals and remain once these are dropped. It
// returns the rows copied per table.
func (s *Store) CopyHeld(ctx context.Context, sel retention.Selection) (map[string]uint64, error) {
	out := map[string]uint64{}
	if sel.Empty() {
		return out, nil
	}
	for i := range selectionTables {
		t := &selectionTables[i]
		where, args, ok := t.where(&sel)
		if !ok {
			continue
		}
		cols, err := s.tableColumns(ctx, t.name)
		if err != nil {
			return out, err
		}
		if len(cols) == 0 {
			continue // the table does not exist (yet)
		}
		where += " AND retention_class != 'hold'"
		var n uint64
		if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+t.name+" WHERE "+where, args...).Scan(&n); err != nil {
			return out, fmt.Errorf("hold copy: count %s: %w", t.name, err)
		}
		if n == 0 {
			continue
		}
		names := make([]string, len(cols))
		exprs := make([]string, len(cols))
		for j, c := range cols {
			names[j] = quoteIdent(c.name)
			exprs[j] = names[j]
			if c.name == "retention_class" {
				exprs[j] = "'" + retention.ClassHold + "'"
			}
		}
		q := "INSERT INTO " + t.name + " (" + strings.Join(names, ", ") + ") SELECT " + strings.Join(exprs, ", ") +
			" FROM " + t.name + " WHERE " + where
		if err := s.conn.Exec(ctx, q, args...); err != nil {
			return out, fmt.Errorf("hold copy: %s: %w", t.name, err)
		}
		out[t.name] = n
	}
	return out, nil
}

// ExportRow is called with each exported row as a JSON object.
type ExportRow func(signal string, row []byte) error

// ExportSelection writes the rows sel selects of every signal table, each
// once (whatever its class), oldest first, at most maxRows per table, as
// JSON objects with the table's columns (ids as lower-case hex; the
// retention class left out). It returns the rows written per signal and
// the signals cut short by maxRows.
func (s *Store) ExportSelection(ctx context.Context, sel retention.Selection, maxRows int, emit ExportRow) (map[string]int64, map[string]bool, error) {
	counts := map[string]int64{}
	truncated := map[string]bool{}
	for i := range selectionTables {
		t := &selectionTables[i]
		counts[t.signal] = 0
		where, args, ok := t.where(&sel)
		if !ok || sel.Empty() {
			continue
		}
		cols, err := s.tableColumns(ctx, t.name)
		if err != nil {
			return counts, truncated, err
		}
		if len(cols) == 0 {
			continue
		}
		var exprs []string
		var names []string
		for _, c := range cols {
			if c.name == "retention_class" {
				continue
			}
			e := quoteIdent(c.name)
			if strings.HasPrefix(c.typ, "FixedString(") {
				// A new name: an alias named like its column would stand
				// for it in WHERE too (ClickHouse substitutes aliases
				// there), turning the selection's id conditions into
				// comparisons of hex text with bytes.
				e = "lower(hex(" + e + ")) AS " + quoteIdent("export_hex_"+c.name)
			}
			exprs = append(exprs, e)
			names = append(names, c.name)
		}
		q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + t.name + " WHERE " + where +
			" ORDER BY " + t.order + " LIMIT 1 BY " + t.identity + " LIMIT ?"
		rows, err := s.conn.Query(ctx, q, append(args, maxRows+1)...)
		if err != nil {
			return counts, truncated, fmt.Errorf("export %s: %w", t.name, err)
		}
		n, err := exportRows(rows, names, maxRows, func(b []byte) error { return emit(t.signal, b) })
		rows.Close()
		if err != nil {
			return counts, truncated, fmt.Errorf("export %s: %w", t.name, err)
		}
		counts[t.signal] = int64(min(n, maxRows))
		truncated[t.signal] = n > maxRows
	}
	return counts, truncated, nil
}
