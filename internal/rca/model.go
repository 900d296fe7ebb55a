package rca

import (
	"context"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
)

// Query asks for the root causes of what happened from Start to End.
type Query struct {
	TenantID  string
	Start     time.Time
	End       time.Time
	Namespace string // "" = every namespace
	Service   string // "" = every service; else only candidates that are this service or reachable from it as callees
}

// Window describes the analysed time ranges: the window and the baseline
// around it (before it and, for a window in the past, after it).
type Window struct {
	Start         time.Time     `json:"start"`
	End           time.Time     `json:"end"`
	BaselineStart time.Time     `json:"baselineStart"`
	BaselineEnd   time.Time     `json:"baselineEnd"` // after End when data after the window was used
	Step          time.Duration `json:"-"`
	StepSeconds   float64       `json:"stepSeconds"`
}

// Verdicts of an answer (Result.Status).
const (
	StatusRanked          = "ranked"            // candidates ranked on signals that moved
	StatusNoBaseline      = "no_baseline"       // nothing to compare the window with
	StatusInsufficentData = "insufficient_data" // too little data in the window or the baseline
	StatusNoSignalMoved   = "no_signal_moved"   // every signal stayed within its baseline
)

// Result is the ranked answer.
type Result struct {
	// Status says whether candidates were ranked and, if not, why not:
	// an empty list never silently means "nothing wrong".
	Status string `json:"status"`
	// Reasons explain the status in plain language (which signals and
	// baseline the analysis had, why it could not rank).
	Reasons []string `json:"reasons,omitempty"`
	// Suggestions say what to send or which window to try.
	Suggestions []string    `json:"suggestions,omitempty"`
	Candidates  []Candidate `json:"candidates"`
	Window      Window      `json:"window"`
	// Signals says, per signal family, how many series were judged (0:
	// the signal was missing and the ranking did without it).
	Signals map[string]int `json:"signals"`
	// Coverage says, per signal, how many buckets of data the window and
	// the baseline had.
	Coverage map[string]Coverage `json:"coverage"`
}

// Coverage is how much of one signal an analysis had.
type Coverage struct {
	WindowBuckets   int `json:"windowBuckets"`
	BaselineBuckets int `json:"baselineBuckets"`
	Services        int `json:"services"`
}

// Candidate is one possible root cause.
type Candidate struct {
	Service   string     `json:"service"`
	Pod       string     `json:"pod"`
	Container string     `json:"container"`
	Score     float64    `json:"score"`
	Onset     *time.Time `json:"onset,omitempty"`
	// Signals lists the signal families that moved on this candidate.
	Signals  []string   `json:"signals"`
	Evidence []Evidence `json:"evidence"`
}

// Evidence is one fact supporting (or qualifying) a candidate, in plain
// language, with a reference to check it through the query API.
type Evidence struct {
	Kind    string  `json:"kind"` // latency, errors, logs, metric, event, structure, propagation, trace
	Summary string  `json:"summary"`
	Z       float64 `json:"z,omitempty"`     // robust z-score of the judged value against its baseline
	Score   float64 `json:"score,omitempty"` // this piece's share of the candidate's score
	Ref     string  `json:"ref,omitempty"`   // an API path with query, e.g. /api/v1/traces/{id}
}

// The aggregated rows a Source returns (see chstore).
type (
	SpanStat   = chstore.RCASpanStat
	LogPattern = chstore.RCALogPattern
	MetricStat = chstore.RCAMetricStat
	Event      = chstore.RCAEvent
	ErrorTrace = chstore.RCAErrorTraces
	Range      = chstore.RCARange
)

// Span statistic kinds.
const (
	SpanSelf    = chstore.RCASpanSelf
	SpanInbound = chstore.RCASpanInbound
)

// Source reads the aggregated signals the engine judges. Every method
// returns what it has: no rows means the signal is missing, and the
// engine does without it.
type Source interface {
	// SpanStats aggregates spans starting in r by kind, service, pod,
	// operation, caller and bucket.
	SpanStats(ctx context.Context, r Range) ([]SpanStat, error)
	// LogPatterns counts log records by pod, masked text and bucket.
	LogPatterns(ctx context.Context, r Range) ([]LogPattern, error)
	// ErrorTraces groups the traces with failures (failed spans, error
	// log lines) in r by bucket and the set of services that failed.
	ErrorTraces(ctx context.Context, r Range) ([]ErrorTrace, error)
	// MetricStats averages the gauge and sum points of every pod metric
	// by bucket.
	MetricStats(ctx context.Context, r Range) ([]MetricStat, error)
	// Events returns the container events in r.
	Events(ctx context.Context, r Range) ([]Event, error)
	// ExampleTraces returns, for each of services, the ids of up to n
	// traces with its slowest (or failed) spans in r.
	ExampleTraces(ctx context.Context, r Range, services []string, n int) (map[string][]string, error)
}
