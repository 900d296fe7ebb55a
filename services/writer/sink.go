package writer

import (
	"context"
	"fmt"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/chstore"
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
	ins      *chstore.Inserter // reused insert batch, when the store offers one
}

// spanInserters is a span store that hands out reusable inserters
// (chstore.Store): an insert then reuses the previous one's buffers.
type spanInserters interface{ SpanInserter() *chstore.Inserter }

func newTraceSink(store SpanStore, classify Classifier) *traceSink {
	sk := &traceSink{store: store, classify: classify}
	if src, ok := store.(spanInserters); ok {
		sk.ins = src.SpanInserter()
	}
	return sk
}

func (s *traceSink) Add(tenantID string, data []byte) (int, error) {
	if tenantID == "" {
		return 0, apperr.Permanent(fmt.Errorf("message has no %s header", bus.HeaderTenant))
	}
	// A message's data is a buffer of its own that nobody writes to.
	n, err := s.batch.AppendTracesProtoOwned(tenantID, data)
	if err != nil {
		return 0, apperr.Permanent(fmt.Errorf("decode traces: %w", err))
	}
	return n, nil
}

func (s *traceSink) Rows() int { return s.batch.Len() }

// Reset empties the sink for the next batch, keeping its column capacity.
func (s *traceSink) Reset() { s.batch.Reset() }

// resetter is a sink that can be reused after its batch was inserted.
type resetter interface{ Reset() }

// next returns an empty sink for the next batch: sk itself when it can be
// reused, else a new one.
func (sig signalDef) next(sk sink) sink {
	if r, ok := sk.(resetter); ok {
		r.Reset()
		return sk
	}
	return sig.newSink()
}

func (s *traceSink) Insert(ctx context.Context) error {
	if s.classify != nil {
		s.classify.ClassifySpans(&s.batch)
	}
	if s.ins != nil {
		return s.ins.InsertSpans(ctx, &s.batch)
	}
	return s.store.InsertSpans(ctx, &s.batch)
}

// Close releases the sink's insert batch.
func (s *traceSink) Close() {
	if s.ins != nil {
		s.ins.Close()
	}
}

// closeSink releases what sk holds, if anything.
func closeSink(sk sink) {
	if c, ok := sk.(interface{ Close() }); ok {
		c.Close()
	}
}
