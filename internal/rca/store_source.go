package rca

import (
	"context"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
)

// childMargin is how far beyond a range a span's children are looked for.
const childMargin = time.Minute

// StoreSource reads the signals from the Aftertrace ClickHouse tables
// through chstore.
type StoreSource struct {
	Store *chstore.Store
}

var _ Source = StoreSource{}

// SpanStats implements Source.
func (s StoreSource) SpanStats(ctx context.Context, r Range) ([]SpanStat, error) {
	return s.Store.RCASpanStats(ctx, r, r.From, childMargin)
}

// LogPatterns implements Source.
func (s StoreSource) LogPatterns(ctx context.Context, r Range) ([]LogPattern, error) {
	return s.Store.RCALogPatterns(ctx, r)
}

// MetricStats implements Source.
func (s StoreSource) MetricStats(ctx context.Context, r Range) ([]MetricStat, error) {
	return s.Store.RCAMetricStats(ctx, r)
}

// Events implements Source.
func (s StoreSource) Events(ctx context.Context, r Range) ([]Event, error) {
	return s.Store.RCAEvents(ctx, r)
}

// ExampleTraces implements Source.
func (s StoreSource) ExampleTraces(ctx context.Context, r Range, services []string, n int) (map[string][]string, error) {
	return s.Store.RCAExampleTraces(ctx, r, services, n)
}

// ErrorTraces implements Source.
func (s StoreSource) ErrorTraces(ctx context.Context, r Range) ([]ErrorTrace, error) {
	return s.Store.RCAErrorTracesIn(ctx, r)
}
