package rca

import "context"

// Source reads the aggregated signals the engine judges. Every method
// returns what it has: no rows means the signal is missing, and the
// engine does without it.
type Source interface {
	// SpanStats aggregates spans starting in r by kind, service, pod,
	// operation, caller and bucket.
	SpanStats(ctx context.Context, r Range) ([]SpanStat, error)
	// MetricStats averages the gauge and sum points of every pod metric
	// by bucket.
	MetricStats(ctx context.Context, r Range) ([]MetricStat, error)
	// LogStats counts log records (all, and with an error severity) per pod
	// and bucket.
	LogStats(ctx context.Context, r Range) ([]LogStat, error)
	// Events returns the container events in r.
	Events(ctx context.Context, r Range) ([]Event, error)
	// SlowTraces returns, for each of services, the ids of up to n traces
	// with its slowest spans in r (errors first).
	SlowTraces(ctx context.Context, r Range, services []string, n int) (map[string][]string, error)
}
