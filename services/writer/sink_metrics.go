package writer

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// MetricStore inserts metric point batches (implemented by *chstore.Store).
type MetricStore interface {
	InsertMetrics(ctx context.Context, b *otlpconv.MetricBatch) error
}

// metricSink turns metrics messages into rows of the metric_points table,
// one per data point.
type metricSink struct {
	store    MetricStore
	classify Classifier
	batch    otlpconv.MetricBatch
	um       pmetric.ProtoUnmarshaler
}

func (s *metricSink) Add(tenantID string, data []byte) (int, error) {
	if tenantID == "" {
		return 0, apperr.Permanent(fmt.Errorf("message has no %s header", bus.HeaderTenant))
	}
	md, err := s.um.UnmarshalMetrics(data)
	if err != nil {
		return 0, apperr.Permanent(fmt.Errorf("decode metrics: %w", err))
	}
	before := s.batch.Len()
	s.batch.AppendMetrics(tenantID, md)
	return s.batch.Len() - before, nil
}

func (s *metricSink) Rows() int { return s.batch.Len() }

func (s *metricSink) Insert(ctx context.Context) error {
	if s.classify != nil {
		s.classify.ClassifyMetrics(&s.batch)
	}
	return s.store.InsertMetrics(ctx, &s.batch)
}
