package writer

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// sink accumulates the rows of one signal and inserts them. A new sink
// is used for every batch.
type sink interface {
	// Add decodes one message into rows; a decode failure is permanent.
	Add(tenantID string, data []byte) (rows int, err error)
	Rows() int
	// Insert writes every row added so far in one insert.
	Insert(ctx context.Context) error
}

// signalDef ties a signal to its sink.
type signalDef struct {
	signal  bus.Signal
	newSink func() sink
}

// SpanStore inserts span batches (implemented by *chstore.Store).
type SpanStore interface {
	InsertSpans(ctx context.Context, b *otlpconv.SpanBatch) error
}

type traceSink struct {
	store    SpanStore
	classify Classifier
	batch    otlpconv.SpanBatch
	um       ptrace.ProtoUnmarshaler
}

func (s *traceSink) Add(tenantID string, data []byte) (int, error) {
	if tenantID == "" {
		return 0, apperr.Permanent(fmt.Errorf("message has no %s header", bus.HeaderTenant))
	}
	td, err := s.um.UnmarshalTraces(data)
	if err != nil {
		return 0, apperr.Permanent(fmt.Errorf("decode traces: %w", err))
	}
	s.batch.AppendTraces(tenantID, td)
	return td.SpanCount(), nil
}

func (s *traceSink) Rows() int { return s.batch.Len() }

func (s *traceSink) Insert(ctx context.Context) error {
	if s.classify != nil {
		s.classify.ClassifySpans(&s.batch)
	}
	return s.store.InsertSpans(ctx, &s.batch)
}
