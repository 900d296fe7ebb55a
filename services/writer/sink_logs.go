package writer

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// LogStore inserts log batches (implemented by *chstore.Store).
type LogStore interface {
	InsertLogs(ctx context.Context, b *otlpconv.LogBatch) error
}

// logSink turns logs messages into rows of the logs table.
type logSink struct {
	store LogStore
	batch otlpconv.LogBatch
	um    plog.ProtoUnmarshaler
}

func (s *logSink) Add(tenantID string, data []byte) (int, error) {
	if tenantID == "" {
		return 0, apperr.Permanent(fmt.Errorf("message has no %s header", bus.HeaderTenant))
	}
	ld, err := s.um.UnmarshalLogs(data)
	if err != nil {
		return 0, apperr.Permanent(fmt.Errorf("decode logs: %w", err))
	}
	s.batch.AppendLogs(tenantID, ld)
	return ld.LogRecordCount(), nil
}

func (s *logSink) Rows() int { return s.batch.Len() }

func (s *logSink) Insert(ctx context.Context) error { return s.store.InsertLogs(ctx, &s.batch) }
