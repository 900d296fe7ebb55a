package chstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// insertLogsSQL names every column: ClickHouse 18.16 needs the explicit
// list for the native-protocol insert to know the block structure.
var insertLogsSQL = "INSERT INTO logs (" + strings.Join(otlpconv.LogColumns, ", ") + ")"

// InsertLogs writes the whole batch in one insert, column by column.
func (s *Store) InsertLogs(ctx context.Context, b *otlpconv.LogBatch) error {
	if b.Len() == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, insertLogsSQL)
	if err != nil {
		return fmt.Errorf("prepare log insert: %w", err)
	}
	defer batch.Abort() //nolint:errcheck // no-op after Send
	if err := appendColumns(batch, otlpconv.LogColumns, b.Columns()); err != nil {
		return fmt.Errorf("append log columns: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d log records: %w", b.Len(), err)
	}
	return nil
}
