package chstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// insertMetricsSQL names every column, as ClickHouse 18.16 needs for a
// native-protocol insert.
var insertMetricsSQL = "INSERT INTO metric_points (" + strings.Join(otlpconv.MetricColumns, ", ") + ")"

// InsertMetrics writes the whole batch of data points in one insert,
// column by column.
func (s *Store) InsertMetrics(ctx context.Context, b *otlpconv.MetricBatch) error {
	if b.Len() == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, insertMetricsSQL)
	if err != nil {
		return fmt.Errorf("prepare metric insert: %w", err)
	}
	defer batch.Abort() //nolint:errcheck // no-op after Send
	if err := appendColumns(batch, otlpconv.MetricColumns, b.Columns()); err != nil {
		return fmt.Errorf("append metric columns: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d metric points: %w", b.Len(), err)
	}
	return nil
}
