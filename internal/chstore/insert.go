package chstore

import (
	"context"
	"strings"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// insertSQL names every column: ClickHouse 18.16 needs the explicit list
// for the native-protocol insert to know the block structure.
func insertSQL(table string, columns []string) string {
	return "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ")"
}

var (
	insertSpansSQL   = insertSQL("spans", otlpconv.SpanColumns)
	insertLogsSQL    = insertSQL("logs", otlpconv.LogColumns)
	insertMetricsSQL = insertSQL("metric_points", otlpconv.MetricColumns)
)

// InsertSpans writes the whole batch in one insert, column by column.
func (s *Store) InsertSpans(ctx context.Context, b *otlpconv.SpanBatch) error {
	return s.insertColumns(ctx, insertSpansSQL, otlpconv.SpanColumns, b.Columns(), b.Len(), "spans")
}

// InsertLogs writes the whole batch in one insert, column by column.
func (s *Store) InsertLogs(ctx context.Context, b *otlpconv.LogBatch) error {
	return s.insertColumns(ctx, insertLogsSQL, otlpconv.LogColumns, b.Columns(), b.Len(), "log records")
}

// InsertMetrics writes the whole batch of data points in one insert,
// column by column.
func (s *Store) InsertMetrics(ctx context.Context, b *otlpconv.MetricBatch) error {
	return s.insertColumns(ctx, insertMetricsSQL, otlpconv.MetricColumns, b.Columns(), b.Len(), "metric points")
}

// insertColumns sends rows given column by column (cols in the order of
// names) as one insert through a one-shot Inserter; what names the rows in
// errors.
func (s *Store) insertColumns(ctx context.Context, query string, names []string, cols []any, rows int, what string) error {
	in := &Inserter{s: s, query: query, names: names, what: what}
	defer in.Close()
	return in.insert(ctx, cols, rows)
}
