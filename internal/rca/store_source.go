package rca

import (
	"context"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
)

// childMargin is how far beyond a range a span's children are looked for.
const childMargin = time.Minute

// StoreSource reads the signals from the Aftertrace ClickHouse tables
// through chstore, keeping settled buckets in rca_buckets (cache.go).
type StoreSource struct {
	Store *chstore.Store
	// NoCache computes every bucket instead of reusing stored ones.
	NoCache bool
	// Now is the clock deciding which buckets have settled (nil: time.Now).
	Now func() time.Time

	w *cacheWriter // nil: buckets are stored before a read returns
}

// NewStoreSource reads store and stores new buckets in the background;
// Close stops that.
func NewStoreSource(store *chstore.Store) StoreSource {
	return StoreSource{Store: store, w: newCacheWriter(store)}
}

// Close waits for the background writes.
func (s StoreSource) Close() error {
	if s.w != nil {
		s.w.close()
	}
	return nil
}

var _ Source = StoreSource{}

func (s StoreSource) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func read[T any](ctx context.Context, s StoreSource, spec cacheSpec[T], r Range) ([]T, error) {
	if s.NoCache {
		return spec.compute(ctx, r, r.From)
	}
	return cachedRead(ctx, s.Store, s.w, s.now(), spec, r)
}

// SpanStats implements Source.
func (s StoreSource) SpanStats(ctx context.Context, r Range) ([]SpanStat, error) {
	return read(ctx, s, cacheSpec[SpanStat]{signal: "spans/v1", tables: []string{"spans"}, margin: childMargin,
		compute: func(ctx context.Context, r Range, childFrom time.Time) ([]SpanStat, error) {
			return s.Store.RCASpanStats(ctx, r, childFrom, childMargin)
		},
		bucket: func(x SpanStat) int64 { return x.T }}, r)
}

// LogPatterns implements Source.
func (s StoreSource) LogPatterns(ctx context.Context, r Range) ([]LogPattern, error) {
	return read(ctx, s, cacheSpec[LogPattern]{signal: "logs/v1", tables: []string{"logs"},
		compute: func(ctx context.Context, r Range, _ time.Time) ([]LogPattern, error) {
			return s.Store.RCALogPatterns(ctx, r)
		},
		bucket: func(x LogPattern) int64 { return x.T }}, r)
}

// ErrorTraces implements Source. A trace is counted in the piece of the
// range where its first failure falls; at a piece's edge one trace may
// count in both.
func (s StoreSource) ErrorTraces(ctx context.Context, r Range) ([]ErrorTrace, error) {
	return read(ctx, s, cacheSpec[ErrorTrace]{signal: "errtraces/v1", tables: []string{"spans", "logs"},
		compute: func(ctx context.Context, r Range, _ time.Time) ([]ErrorTrace, error) {
			return s.Store.RCAErrorTracesIn(ctx, r)
		},
		bucket: func(x ErrorTrace) int64 { return x.T }}, r)
}

// MetricStats implements Source. Metric means are cheap to aggregate and
// large to store (every series in every bucket): they are not cached.
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
