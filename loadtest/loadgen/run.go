package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// RunConfig configures one open-loop load run.
type RunConfig struct {
	Model           ModelConfig
	Seed            uint64        // generator seed; 0 uses Model.Seed
	Transport       string        // "grpc" or "http"
	Endpoint        string        // host:port (grpc) or http://host:port (http)
	Key             string        // API key sent as Authorization: Bearer
	Rate            float64       // spans per second
	Duration        time.Duration // how long to generate
	Connections     int           // concurrent senders (one connection each)
	BatchSpans      int           // most spans per request
	LogsPerTrace    int           // log records per trace (0: no logs)
	Metrics         bool          // also export metrics every MetricsInterval
	MetricsInterval time.Duration
	Faults          int    // faults to inject
	GroundTruth     string // path of the ground-truth JSON; "" skips it
	RequestTimeout  time.Duration
	Progress        io.Writer // one line per ProgressEvery; nil: quiet
	ProgressEvery   time.Duration
	// Replay sends pre-encoded requests: a pool of ReplaySpans spans (0:
	// DefaultReplaySpans) generated and encoded before the run, sent again
	// and again with their times moved to the schedule and their trace ids
	// salted per round. Far cheaper per span than generating; traces only
	// (no faults, metrics or logs), and the senders must implement
	// RawTraceSender.
	Replay      bool
	ReplaySpans int

	// NewSender overrides the transport (tests).
	NewSender func() (Sender, error)
	// OnAck, if set, is called after a trace request was fully accepted.
	OnAck func(refs []TraceRef, acked time.Time)
	// OnStart, if set, is called with the schedule's start (when the first
	// request is due), after the replay pool is built: callers measuring
	// the run start their clocks there.
	OnStart func(t0 time.Time)
}

// DefaultRunConfig sends 2000 spans/s over gRPC for 30 s.
func DefaultRunConfig() RunConfig {
	return RunConfig{
		Model: DefaultModelConfig(), Transport: "grpc", Endpoint: "127.0.0.1:4317",
		Rate: 2000, Duration: 30 * time.Second, Connections: 4, BatchSpans: 500,
		MetricsInterval: 10 * time.Second, RequestTimeout: 30 * time.Second, ProgressEvery: time.Second,
		ReplaySpans: DefaultReplaySpans,
	}
}

// Validate reports every problem at once.
func (c RunConfig) Validate() error {
	errs := []error{c.Model.Validate()}
	if c.NewSender == nil {
		switch c.Transport {
		case "grpc", "http":
		default:
			errs = append(errs, fmt.Errorf("transport: must be grpc or http, got %q", c.Transport))
		}
		if c.Endpoint == "" {
			errs = append(errs, errors.New("endpoint: must be set"))
		}
	}
	if c.Rate <= 0 {
		errs = append(errs, fmt.Errorf("rate: must be positive, got %v", c.Rate))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration: must be positive, got %v", c.Duration))
	}
	if c.Connections < 1 || c.Connections > 1024 {
		errs = append(errs, fmt.Errorf("connections: must be 1..1024, got %d", c.Connections))
	}
	if c.BatchSpans < 1 {
		errs = append(errs, fmt.Errorf("batch spans: must be positive, got %d", c.BatchSpans))
	}
	if c.LogsPerTrace < 0 {
		errs = append(errs, fmt.Errorf("logs per trace: must not be negative, got %d", c.LogsPerTrace))
	}
	if c.Metrics && c.MetricsInterval <= 0 {
		errs = append(errs, errors.New("metrics interval: must be positive"))
	}
	if c.Faults < 0 {
		errs = append(errs, fmt.Errorf("faults: must not be negative, got %d", c.Faults))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("request timeout: must be positive"))
	}
	if c.ReplaySpans < 0 {
		errs = append(errs, fmt.Errorf("replay spans: must not be negative, got %d", c.ReplaySpans))
	}
	if c.Replay {
		// The pool repeats one stretch of traffic: faults (which need the
		// generation time) and the generator's logs and metrics are not in it.
		if c.Faults > 0 {
			errs = append(errs, errors.New("replay: not supported with faults"))
		}
		if c.Metrics {
			errs = append(errs, errors.New("replay: not supported with metrics"))
		}
		if c.LogsPerTrace > 0 {
			errs = append(errs, errors.New("replay: not supported with logs per trace"))
		}
	}
	return errors.Join(errs...)
}

// Stats counts what a run did. Rejected records were refused by the server
// (error answer or partial success); Failed counts requests that errored.
type Stats struct {
	Requests, Failed, Late            int64
	SentSpans, AckedSpans, RejSpans   int64
	SentLogs, AckedLogs, RejLogs      int64
	SentPoints, AckedPoints, RejPoint int64
	InFlight                          int64
	Elapsed                           time.Duration
	LastError                         string
}

type counters struct {
	requests, failed, late             atomic.Int64
	sentSpans, ackedSpans, rejSpans    atomic.Int64
	sentLogs, ackedLogs, rejLogs       atomic.Int64
	sentPoints, ackedPoints, rejPoints atomic.Int64
	inFlight                           atomic.Int64
	lastErr                            atomic.Value // string
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Requests: c.requests.Load(), Failed: c.failed.Load(), Late: c.late.Load(),
		SentSpans: c.sentSpans.Load(), AckedSpans: c.ackedSpans.Load(), RejSpans: c.rejSpans.Load(),
		SentLogs: c.sentLogs.Load(), AckedLogs: c.ackedLogs.Load(), RejLogs: c.rejLogs.Load(),
		SentPoints: c.sentPoints.Load(), AckedPoints: c.ackedPoints.Load(), RejPoint: c.rejPoints.Load(),
		InFlight: c.inFlight.Load(),
	}
	if v, ok := c.lastErr.Load().(string); ok {
		s.LastError = v
	}
	return s
}

// job is one request scheduled at due.
type job struct {
	due   time.Time
	td    ptrace.Traces
	ld    plog.Logs
	md    pmetric.Metrics
	spans int
	logs  int
	pts   int
	refs  []TraceRef
	// replay, if set, is the pre-encoded request to send instead of td,
	// with times moved by delta and trace ids salted by salt.
	replay *replayReq
	delta  time.Duration
	salt   uint64
}

// traceRefs are the traces the job sends.
func (j job) traceRefs() []TraceRef {
	if j.replay != nil {
		return j.replay.refsAt(j.delta, j.salt)
	}
	return j.refs
}

// Run generates and sends load until cfg.Duration has passed (or ctx
// ends), then waits for the requests in flight (bounded by
// RequestTimeout). The schedule is open loop: request i is due at a fixed
// time whatever the server does; a request that starts more than a tick
// after its due time counts as late.
func Run(ctx context.Context, cfg RunConfig) (Stats, error) {
	if cfg.Seed == 0 {
		cfg.Seed = cfg.Model.Seed
	}
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	m, err := NewModel(cfg.Model)
	if err != nil {
		return Stats{}, err
	}
	senders, err := newSenders(cfg)
	if err != nil {
		return Stats{}, err
	}
	defer func() {
		for _, s := range senders {
			_ = s.Close()
		}
	}()
	if cfg.Replay {
		for _, s := range senders {
			if _, ok := s.(RawTraceSender); !ok {
				return Stats{}, fmt.Errorf("replay: sender %T does not implement RawTraceSender", s)
			}
		}
	}

	g := NewGenerator(m, cfg.Seed)
	g.SetLogsPerTrace(cfg.LogsPerTrace)
	if cfg.Metrics {
		g.EnableMetrics()
	}

	// Requests of ~100 ms of traffic, at most BatchSpans spans.
	perReq := int(min(float64(cfg.BatchSpans), max(1, cfg.Rate/10)))
	tick := time.Duration(float64(perReq) / cfg.Rate * float64(time.Second))
	lateAfter := max(tick, 50*time.Millisecond)

	var pool *replayPool
	if cfg.Replay {
		began := time.Now()
		want := int64(cfg.ReplaySpans)
		if want == 0 {
			want = DefaultReplaySpans
		}
		// No bigger than the run needs.
		want = min(want, int64(cfg.Rate*cfg.Duration.Seconds())+1)
		// Wall clock only (Round(0)): a replayed time is then due's wall
		// time, as generating at due would stamp it, even if the clock steps.
		if pool, err = buildReplayPool(ctx, g, cfg.Seed, perReq, cfg.Rate, want, began.Round(0)); err != nil {
			return Stats{}, err
		}
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "replay: %d requests, %d spans, %.1f MB encoded in %s\n",
				len(pool.reqs), pool.spans, float64(pool.bytes)/1e6, time.Since(began).Round(time.Millisecond))
		}
	}

	t0 := time.Now()
	faults := m.PlanFaults(cfg.Faults, t0, cfg.Duration)
	g.SetFaults(faults)
	if cfg.GroundTruth != "" {
		names := make([]string, len(m.Services))
		for i, s := range m.Services {
			names[i] = s.Name
		}
		gt := GroundTruth{Seed: cfg.Seed, Start: t0.UTC(), End: t0.Add(cfg.Duration).UTC(), Services: names, Faults: faults}
		if err := WriteGroundTruth(cfg.GroundTruth, gt); err != nil {
			return Stats{}, err
		}
	}
	if cfg.OnStart != nil {
		cfg.OnStart(t0)
	}

	var c counters
	queue := make(chan job, cfg.Connections)
	var wg sync.WaitGroup
	// Senders finish what they hold even after ctx ends, each request
	// bounded by RequestTimeout.
	sendCtx := context.WithoutCancel(ctx)
	for _, s := range senders {
		wg.Go(func() {
			for j := range queue {
				if time.Since(j.due) > lateAfter {
					c.late.Add(1)
				}
				send(sendCtx, cfg, s, j, &c)
			}
		})
	}
	stopProgress := startProgress(cfg, &c, t0)

	end := t0.Add(cfg.Duration)
	generated, traceReqs := int64(0), int64(0)
	nextMetrics, lastMetrics := t0.Add(cfg.MetricsInterval), t0
	timer := time.NewTimer(0)
	<-timer.C
loop:
	for {
		due := t0.Add(time.Duration(float64(generated) / cfg.Rate * float64(time.Second)))
		if !due.Before(end) {
			break
		}
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				break loop
			case <-timer.C:
			}
		}
		var jobs []job
		if cfg.Metrics && !due.Before(nextMetrics) {
			md, pts := g.Metrics(lastMetrics, due)
			jobs = append(jobs, job{due: due, md: md, pts: pts})
			lastMetrics, nextMetrics = due, nextMetrics.Add(cfg.MetricsInterval)
		}
		if pool != nil {
			j := pool.job(traceReqs, due)
			generated += int64(j.spans)
			jobs = append(jobs, j)
		} else {
			b := g.NextBatch(due, perReq)
			generated += int64(b.Spans)
			jobs = append(jobs, job{due: due, td: b.Traces, spans: b.Spans, refs: b.Refs})
			if b.LogRecords > 0 {
				jobs = append(jobs, job{due: due, ld: b.Logs, logs: b.LogRecords})
			}
		}
		traceReqs++
		for _, j := range jobs {
			select {
			case <-ctx.Done():
				break loop
			case queue <- j:
			}
		}
	}
	close(queue)
	wg.Wait()
	stopProgress()
	st := c.snapshot()
	st.Elapsed = time.Since(t0)
	return st, nil
}

func send(ctx context.Context, cfg RunConfig, s Sender, j job, c *counters) {
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	c.requests.Add(1)
	ctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	var rej int64
	var err error
	switch {
	case j.spans > 0:
		c.sentSpans.Add(int64(j.spans))
		if j.replay != nil {
			rej, err = sendReplayed(ctx, s, j)
		} else {
			rej, err = s.SendTraces(ctx, j.td)
		}
		account(c, &c.ackedSpans, &c.rejSpans, int64(j.spans), rej, err)
		if err == nil && rej == 0 && cfg.OnAck != nil {
			cfg.OnAck(j.traceRefs(), time.Now())
		}
	case j.logs > 0:
		c.sentLogs.Add(int64(j.logs))
		rej, err = s.SendLogs(ctx, j.ld)
		account(c, &c.ackedLogs, &c.rejLogs, int64(j.logs), rej, err)
	case j.pts > 0:
		c.sentPoints.Add(int64(j.pts))
		rej, err = s.SendMetrics(ctx, j.md)
		account(c, &c.ackedPoints, &c.rejPoints, int64(j.pts), rej, err)
	}
}

func account(c *counters, acked, rejected *atomic.Int64, n, rej int64, err error) {
	if err != nil {
		c.failed.Add(1)
		rejected.Add(n)
		c.lastErr.Store(err.Error())
		return
	}
	rej = min(max(rej, 0), n)
	acked.Add(n - rej)
	rejected.Add(rej)
}

func newSenders(cfg RunConfig) ([]Sender, error) {
	out := make([]Sender, 0, cfg.Connections)
	var hc *http.Client
	if cfg.NewSender == nil && cfg.Transport == "http" {
		hc = &http.Client{Transport: &http.Transport{
			MaxConnsPerHost: cfg.Connections, MaxIdleConnsPerHost: cfg.Connections, IdleConnTimeout: time.Minute,
		}}
	}
	for range cfg.Connections {
		var s Sender
		var err error
		switch {
		case cfg.NewSender != nil:
			s, err = cfg.NewSender()
		case cfg.Transport == "grpc":
			s, err = NewGRPCSender(cfg.Endpoint, cfg.Key)
		default:
			s = NewHTTPSender(cfg.Endpoint, cfg.Key, hc)
		}
		if err != nil {
			for _, o := range out {
				_ = o.Close()
			}
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// startProgress prints a line every ProgressEvery until the returned stop.
func startProgress(cfg RunConfig, c *counters, t0 time.Time) (stop func()) {
	if cfg.Progress == nil || cfg.ProgressEvery <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(cfg.ProgressEvery)
		defer t.Stop()
		var prev int64
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s := c.snapshot()
				fmt.Fprintf(cfg.Progress, "t=%4.0fs sent=%d acked=%d rejected=%d in_flight=%d late=%d failed=%d acked_spans_per_s=%.0f",
					time.Since(t0).Seconds(), s.SentSpans, s.AckedSpans, s.RejSpans, s.InFlight, s.Late, s.Failed,
					float64(s.AckedSpans-prev)/cfg.ProgressEvery.Seconds())
				if s.SentLogs > 0 || s.SentPoints > 0 {
					fmt.Fprintf(cfg.Progress, " logs=%d/%d points=%d/%d", s.AckedLogs, s.SentLogs, s.AckedPoints, s.SentPoints)
				}
				fmt.Fprintln(cfg.Progress)
				prev = s.AckedSpans
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
