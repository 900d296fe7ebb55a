package chstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// insertSpansSQL names every column: ClickHouse 18.16 needs the explicit
// list for the native-protocol insert to know the block structure.
var insertSpansSQL = "INSERT INTO spans (" + strings.Join(otlpconv.SpanColumns, ", ") + ")"

// InsertSpans writes the whole batch in one insert, column by column.
func (s *Store) InsertSpans(ctx context.Context, b *otlpconv.SpanBatch) error {
	if b.Len() == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, insertSpansSQL)
	if err != nil {
		return fmt.Errorf("prepare span insert: %w", err)
	}
	defer batch.Abort() //nolint:errcheck // no-op after Send
	if err := appendColumns(batch, otlpconv.SpanColumns, b.Columns()); err != nil {
		return fmt.Errorf("append span columns: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d spans: %w", b.Len(), err)
	}
	return nil
}
