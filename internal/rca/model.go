package rca

import "time"

// Query asks for the root causes of what happened from Start to End.
type Query struct {
	TenantID  string
	Start     time.Time
	End       time.Time
	Namespace string // "" = every namespace
	Service   string // "" = every service; else only candidates that are this service or reachable from it as callees
}

// Window describes the analysed time ranges.
type Window struct {
	Start         time.Time     `json:"start"`
	End           time.Time     `json:"end"`
	BaselineStart time.Time     `json:"baselineStart"`
	Step          time.Duration `json:"-"`
	StepSeconds   float64       `json:"stepSeconds"`
}

// Result is the ranked answer.
type Result struct {
	Candidates []Candidate `json:"candidates"`
	Window     Window      `json:"window"`
	// Signals says, per signal, how many series were judged (0: the signal
	// was missing and the ranking did without it).
	Signals map[string]int `json:"signals"`
}

// Candidate is one possible root cause.
type Candidate struct {
	Service   string     `json:"service"`
	Pod       string     `json:"pod"`
	Container string     `json:"container"`
	Score     float64    `json:"score"`
	Onset     *time.Time `json:"onset,omitempty"`
	Evidence  []Evidence `json:"evidence"`
}

// Evidence is one fact supporting (or qualifying) a candidate, in plain
// language, with a reference to check it through the query API.
type Evidence struct {
	Kind    string  `json:"kind"` // latency, errors, rate, metric, logs, event, propagation
	Summary string  `json:"summary"`
	Z       float64 `json:"z,omitempty"`
	Ref     string  `json:"ref,omitempty"` // an API path with query, e.g. /api/v1/traces/{id}
}

// Signal kinds of the span statistics.
const (
	SpanSelf    = "self"    // time a span spent itself (duration minus its children)
	SpanInbound = "inbound" // the caller-observed gap of a call into this service (client span minus server span)
)

// SpanStat aggregates the spans of one key in one time bucket.
type SpanStat struct {
	Kind      string // SpanSelf or SpanInbound
	Service   string
	Pod       string
	Operation string
	Caller    string // SpanInbound: the calling service
	CallerPod string
	T         int64 // bucket start, unix ns
	Count     uint64
	Errors    uint64
	P90       float64 // p90 of the span's own time (SpanSelf) or of the gap (SpanInbound), ns
}

// MetricStat is the mean of one pod metric in one time bucket.
type MetricStat struct {
	Service, Pod, Container, Name string
	T                             int64
	Value                         float64
	Cumulative                    bool // a monotonic cumulative sum: judge its increments
}

// LogStat counts one pod's log records in one time bucket.
type LogStat struct {
	Service, Pod, Container string
	T                       int64
	Count, Errors           uint64
}

// Event is a container event in the window.
type Event struct {
	ID, Type, Reason, Message string
	Service, Pod, Container   string
	T                         int64
	Severity                  uint8
}

// Range is what a Source is asked for: [From, To) in buckets of Step.
type Range struct {
	TenantID  string
	Namespace string
	From, To  time.Time
	Step      time.Duration
}
