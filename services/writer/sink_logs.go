package writer

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// LogStore inserts log batches (implemented by *chstore.Store).
type LogStore interface {
	InsertLogs(ctx context.Context, b *otlpconv.LogBatch) error
}

// logSink turns logs messages into rows of the logs table.
type logSink struct {
	store    LogStore
	classify Classifier
	batch    otlpconv.LogBatch
	um       plog.ProtoUnmarshaler
	// events, if set, collects the container events found in the logs
	// (Kubernetes receivers' records, events.FromLogs): they are stored
	// in container_events too and published for correlation.
	events    *eventBatch
	newEvents func() *eventBatch // a fresh events for the next batch; nil without events
	ins       *chstore.Inserter  // reused insert batch, when the store offers one
}

// logInserters is a log store that hands out reusable inserters
// (chstore.Store).
type logInserters interface{ LogInserter() *chstore.Inserter }

func newLogSink(store LogStore, classify Classifier, newEvents func() *eventBatch) *logSink {
	ls := &logSink{store: store, classify: classify, newEvents: newEvents}
	if newEvents != nil {
		ls.events = newEvents()
	}
	if src, ok := store.(logInserters); ok {
		ls.ins = src.LogInserter()
	}
	return ls
}

// Reset empties the sink for the next batch; its insert batch is kept.
func (s *logSink) Reset() {
	s.batch = otlpconv.LogBatch{}
	if s.newEvents != nil {
		s.events = s.newEvents()
	}
}

// Close releases the sink's insert batch.
func (s *logSink) Close() {
	if s.ins != nil {
		s.ins.Close()
	}
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
	if s.events != nil {
		if evs := events.FromLogs(tenantID, ld); len(evs) > 0 {
			s.events.add(tenantID, evs)
		}
	}
	return ld.LogRecordCount(), nil
}

func (s *logSink) Rows() int { return s.batch.Len() }

func (s *logSink) Insert(ctx context.Context) error {
	if s.classify != nil {
		s.classify.ClassifyLogs(&s.batch)
	}
	insert := s.store.InsertLogs
	if s.ins != nil {
		insert = s.ins.InsertLogs
	}
	if err := insert(ctx, &s.batch); err != nil {
		return err
	}
	if s.events != nil {
		return s.events.Insert(ctx)
	}
	return nil
}
