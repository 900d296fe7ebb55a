package rca

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Config tunes the engine. The defaults are statistical, not tied to any
// application.
type Config struct {
	// MinLookback and MaxLookback bound the baseline learned on each side
	// of the window: LookbackFactor times the window's length, within the
	// bounds. WidenLookback is how far it looks when that finds too little.
	MinLookback, MaxLookback, WidenLookback time.Duration
	LookbackFactor                          int
	// Settle is how long before now data counts as complete: the baseline
	// after a window ends there.
	Settle time.Duration
	// MaxCandidates bounds the answer.
	MaxCandidates int
	// ExampleTraces is how many trace ids back each span-based candidate.
	ExampleTraces int
	// Now is the clock (nil: time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MinLookback: time.Hour, MaxLookback: 6 * time.Hour, WidenLookback: 24 * time.Hour, LookbackFactor: 4,
		Settle: time.Minute, MaxCandidates: 20, ExampleTraces: 3}
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
	def := DefaultConfig()
	if cfg.MaxCandidates <= 0 {
		cfg.MaxCandidates = def.MaxCandidates
	}
	if cfg.LookbackFactor <= 0 {
		cfg.LookbackFactor = def.LookbackFactor
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{src: src, cfg: cfg, log: log}
}

// Close releases the source (its background cache writes) when it has
// anything to release.
func (e *Engine) Close() error {
	if c, ok := e.src.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// ErrWindow reports an unusable window.
var ErrWindow = errors.New("rca: end must be after start and the window at most 24h")

// Step picks the bucket width for a window: a tenth of it, at least a
// minute (metrics are commonly scraped every 15–60 s), whole seconds.
func Step(window time.Duration) time.Duration {
	s := (window / 10).Truncate(time.Second)
	return max(s, time.Minute)
}

// lookback is the baseline length on each side of a window of length l.
func (e *Engine) lookback(l time.Duration) time.Duration {
	look := time.Duration(e.cfg.LookbackFactor) * l
	if e.cfg.MinLookback > 0 {
		look = max(look, e.cfg.MinLookback)
	}
	if e.cfg.MaxLookback > 0 {
		look = min(look, e.cfg.MaxLookback)
	}
	return look
}

// Windows returns the analysed ranges for q with a baseline of look on
// each side: before the window, and after it as far as settled data goes.
func (e *Engine) Windows(q Query, look time.Duration) (Window, error) {
	l := q.End.Sub(q.Start)
	if l <= 0 || l > MaxWindow {
		return Window{}, ErrWindow
	}
	step := Step(l)
	start := q.Start.Truncate(step)
	end := q.End
	if r := end.Sub(start) % step; r != 0 {
		end = end.Add(step - r)
	}
	w := Window{Start: q.Start, End: q.End, BaselineStart: start.Add(-look), Step: step, StepSeconds: step.Seconds()}
	settled := e.cfg.Now().Add(-e.cfg.Settle).Truncate(step)
	w.BaselineEnd = end.Add(look)
	if settled.Before(w.BaselineEnd) {
		w.BaselineEnd = settled
	}
	if w.BaselineEnd.Before(end) {
		w.BaselineEnd = end
	}
	return w, nil
}

func frameOf(w Window) frame {
	return frame{start: w.Start.UnixNano(), end: w.End.UnixNano(), step: int64(w.Step),
		from: w.BaselineStart.UnixNano(), to: w.BaselineEnd.UnixNano()}
}

// signals read by Analyze.
type signals struct {
	spans   []SpanStat
	logs    []LogPattern
	errs    []ErrorTrace
	metrics []MetricStat
	events  []Event
}

func (e *Engine) read(ctx context.Context, q Query, w Window) (signals, error) {
	all := Range{TenantID: q.TenantID, Namespace: q.Namespace, From: w.BaselineStart, To: w.BaselineEnd, Step: w.Step}
	win := all
	win.From, win.To = w.Start, w.End
	var sig signals
	var wg sync.WaitGroup
	errs := make([]error, 5)
	run := func(i int, f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	run(0, func() (err error) { sig.spans, err = e.src.SpanStats(ctx, all); return })
	run(1, func() (err error) { sig.logs, err = e.src.LogPatterns(ctx, all); return })
	run(2, func() (err error) { sig.metrics, err = e.src.MetricStats(ctx, all); return })
	run(3, func() (err error) { sig.events, err = e.src.Events(ctx, win); return })
	run(4, func() (err error) { sig.errs, err = e.src.ErrorTraces(ctx, all); return })
	wg.Wait()
	return sig, errors.Join(errs...)
}

// Analyze ranks the root-cause candidates of q.
func (e *Engine) Analyze(ctx context.Context, q Query) (Result, error) {
	look := e.lookback(q.End.Sub(q.Start))
	w, err := e.Windows(q, look)
	if err != nil {
		return Result{}, err
	}
	sig, err := e.read(ctx, q, w)
	if err != nil {
		return Result{}, err
	}
	fr := frameOf(w)
	cov := coverage(sig, fr)
	if !cov.enoughBaseline() && e.cfg.WidenLookback > look {
		// Too little to compare with: look further before giving up.
		if w2, err := e.Windows(q, e.cfg.WidenLookback); err == nil {
			if sig2, err := e.read(ctx, q, w2); err == nil {
				w, sig = w2, sig2
				fr = frameOf(w)
				cov = coverage(sig, fr)
			}
		}
	}
	res := analyze(sig, fr, q.Service, e.cfg.MaxCandidates)
	out := Result{Window: w, Signals: res.judged, Coverage: cov.byName(), Candidates: make([]Candidate, 0, len(res.cands))}
	for _, c := range res.cands {
		out.Candidates = append(out.Candidates, c.Candidate)
	}
	out.Status, out.Reasons, out.Suggestions = verdictOf(res, cov, w)

	// Example traces for the span-based candidates, so a human can open them.
	var svcs []string
	seen := map[string]bool{}
	for _, c := range res.cands {
		if c.spanBacked && !seen[c.Service] {
			seen[c.Service] = true
			svcs = append(svcs, c.Service)
		}
	}
	if e.cfg.ExampleTraces > 0 && len(svcs) > 0 {
		win := Range{TenantID: q.TenantID, Namespace: q.Namespace, From: w.Start, To: w.End, Step: w.Step}
		ids, err := e.src.ExampleTraces(ctx, win, svcs, e.cfg.ExampleTraces)
		if err != nil {
			e.log.Warn("rca: example traces", "err", err)
		}
		for i := range out.Candidates {
			c := &out.Candidates[i]
			for _, id := range ids[c.Service] {
				c.Evidence = append(c.Evidence, Evidence{Kind: "trace",
					Summary: fmt.Sprintf("example trace with one of the slowest (or failed) spans of %s in the window", c.Service),
					Ref:     "/api/v1/traces/" + id})
			}
		}
	}
	return out, nil
}
