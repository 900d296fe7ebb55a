package rca

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Config tunes the engine. The defaults are statistical, not tied to any
// application.
type Config struct {
	// MinLookback and MaxLookback bound the baseline learned before the
	// window: LookbackFactor times the window's length, within the bounds.
	MinLookback, MaxLookback time.Duration
	LookbackFactor           int
	// MaxCandidates bounds the answer.
	MaxCandidates int
	// ExampleTraces is how many trace ids back each span-based candidate.
	ExampleTraces int
	Logger        *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MinLookback: 60 * time.Minute, MaxLookback: 6 * time.Hour, LookbackFactor: 4,
		MaxCandidates: 20, ExampleTraces: 3}
}

// MaxWindow bounds the analysed window.
const MaxWindow = 24 * time.Hour

// Engine runs analyses against a Source.
type Engine struct {
	src Source
	cfg Config
	log *slog.Logger
}

// New returns an engine reading src.
func New(src Source, cfg Config) *Engine {
	if cfg.MaxCandidates <= 0 {
		cfg.MaxCandidates = DefaultConfig().MaxCandidates
	}
	if cfg.LookbackFactor <= 0 {
		cfg.LookbackFactor = DefaultConfig().LookbackFactor
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{src: src, cfg: cfg, log: log}
}

// ErrWindow reports an unusable window.
var ErrWindow = errors.New("rca: end must be after start and the window at most 24h")

// Step picks the bucket width for a window: a tenth of it, at least a
// minute (metrics are commonly scraped every 15–60 s), whole seconds.
func Step(window time.Duration) time.Duration {
	s := (window / 10).Truncate(time.Second)
	return max(s, time.Minute)
}

// Windows returns the analysed window for q: the baseline starts
// LookbackFactor window lengths before Start (within the bounds).
func (e *Engine) Windows(q Query) (Window, error) {
	l := q.End.Sub(q.Start)
	if l <= 0 || l > MaxWindow {
		return Window{}, ErrWindow
	}
	step := Step(l)
	look := time.Duration(e.cfg.LookbackFactor) * l
	if e.cfg.MinLookback > 0 {
		look = max(look, e.cfg.MinLookback)
	}
	if e.cfg.MaxLookback > 0 {
		look = min(look, e.cfg.MaxLookback)
	}
	return Window{Start: q.Start, End: q.End, BaselineStart: q.Start.Add(-look), Step: step, StepSeconds: step.Seconds()}, nil
}

// signals read by Analyze.
type signals struct {
	spans   []SpanStat
	metrics []MetricStat
	logs    []LogStat
	events  []Event
}

// Analyze ranks the root-cause candidates of q.
func (e *Engine) Analyze(ctx context.Context, q Query) (Result, error) {
	w, err := e.Windows(q)
	if err != nil {
		return Result{}, err
	}
	all := Range{TenantID: q.TenantID, Namespace: q.Namespace, From: w.BaselineStart, To: w.End, Step: w.Step}
	win := all
	win.From = w.Start

	var sig signals
	var wg sync.WaitGroup
	errs := make([]error, 4)
	run := func(i int, f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	run(0, func() (err error) { sig.spans, err = e.src.SpanStats(ctx, all); return })
	run(1, func() (err error) { sig.metrics, err = e.src.MetricStats(ctx, all); return })
	run(2, func() (err error) { sig.logs, err = e.src.LogStats(ctx, all); return })
	run(3, func() (err error) { sig.events, err = e.src.Events(ctx, win); return })
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}

	res := rank(sig, w, q.Service, e.cfg.MaxCandidates)

	// Example traces for the span-based candidates, so a human can open them.
	var svcs []string
	seen := map[string]bool{}
	for _, c := range res.Candidates {
		if c.spanBacked && !seen[c.Service] {
			seen[c.Service] = true
			svcs = append(svcs, c.Service)
		}
	}
	if e.cfg.ExampleTraces > 0 && len(svcs) > 0 {
		ids, err := e.src.SlowTraces(ctx, win, svcs, e.cfg.ExampleTraces)
		if err != nil {
			e.log.Warn("rca: example traces", "err", err)
		}
		for i := range res.Candidates {
			c := &res.Candidates[i]
			for _, id := range ids[c.Service] {
				c.Evidence = append(c.Evidence, Evidence{Kind: "trace",
					Summary: fmt.Sprintf("example trace with one of the slowest (or failed) spans of %s in the window", c.Service),
					Ref:     "/api/v1/traces/" + id})
			}
		}
	}
	out := Result{Window: w, Signals: res.Signals, Candidates: make([]Candidate, len(res.Candidates))}
	for i, c := range res.Candidates {
		out.Candidates[i] = c.Candidate
	}
	return out, nil
}

// ranked is a candidate with bookkeeping.
type ranked struct {
	Candidate
	raw        float64
	rise       float64 // the part of raw from signals that rose
	credit     float64 // the part of raw moved here from callees (upstreamDrops)
	spanBacked bool
	onset      int64
}

type rankResult struct {
	Candidates []ranked
	Signals    map[string]int
}

func sortRanked(cs []ranked) {
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].Score != cs[j].Score {
			return cs[i].Score > cs[j].Score
		}
		if cs[i].Service != cs[j].Service {
			return cs[i].Service < cs[j].Service
		}
		return cs[i].Pod < cs[j].Pod
	})
}
