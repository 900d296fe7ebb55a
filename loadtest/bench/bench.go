package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/loadtest/loadgen"
	"github.com/aftertrace/aftertrace/services/writer"
)

// Options configure `make bench`.
type Options struct {
	Topology     string // TopologySingle or TopologyCluster
	Bin          string // the aftertrace binary
	Dir          string // work dir; "" makes a temporary one (removed unless Keep)
	Keep         bool
	Seed         uint64
	Transport    string
	Connections  int
	BatchSpans   int
	StartRate    float64       // first step, spans/s; 0: 0.7 × the raw insert rate (the minimum ratio)
	Factor       float64       // next step is rate × Factor (÷ while none held)
	MaxSteps     int           //
	StepDuration time.Duration // each step sends this long
	Budget       time.Duration // no new step once this much time has passed
	RawMaxTime   time.Duration
	ProbeEvery   time.Duration
	IDSamples    int    // trace-by-id reads
	ProfileDir   string // CPU profiles of the server per step; "" skips
	ProfileFor   time.Duration
	Compare      *CompareOptions // gateway vs OpenTelemetry Collector; nil skips
	// Logs steps: LogsStartRate records/s (0: the best span rate), ×Factor
	// while held, at most LogsSteps of LogsStepDuration; 0 steps skips.
	LogsStartRate    float64
	LogsSteps        int
	LogsStepDuration time.Duration
	AppArgs          []string // extra `aftertrace run` flags (experiments: writer batching, loops off)
	// Replay makes the span and logs steps send pre-encoded requests
	// (patched ids and times) instead of generating each one: the load
	// generator shares the machine with the server it measures.
	Replay bool
	Out    io.Writer
}

// DefaultOptions fit `make bench` into 10 minutes.
func DefaultOptions() Options {
	return Options{
		Topology: TopologySingle, Bin: "bin/aftertrace", Seed: 1, Transport: "grpc", Connections: 16, BatchSpans: 500,
		StartRate: 0, Factor: 1.25, MaxSteps: 4, StepDuration: 60 * time.Second, Budget: 6 * time.Minute,
		RawMaxTime: 60 * time.Second, ProbeEvery: time.Second, IDSamples: 200, ProfileFor: 20 * time.Second,
		Compare: ptr(DefaultCompareOptions()), LogsSteps: 4, LogsStepDuration: 30 * time.Second, Replay: true, Out: os.Stdout,
	}
}

// Report is what `make bench` measured.
type Report struct {
	Topology       string // TopologySingle or TopologyCluster
	CHNodes        int    // ClickHouse server processes
	Raw            RawResult
	Steps          []StepResult
	Best           *StepResult
	IngestToQuery  Latency
	TraceByID      Latency
	BytesPerSpan   float64
	RowsOnDisk     uint64
	LogsPerSec     string
	ClickHouse     string
	WriterWorkers  int
	WriterBatch    int
	StartedAt      time.Time
	Elapsed        time.Duration
	PreliminaryMsg string
	LogSteps       []LogsStepResult
	BestLogs       *LogsStepResult
	Compare        []CompareResult
	Overload       *OverloadResult
	CompareErr     error
}

// Run starts a fresh stack, measures and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	rep := &Report{StartedAt: time.Now().UTC(), LogsPerSec: "n/a", Topology: o.Topology, CHNodes: 1}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "aftertrace-bench-")
		if err != nil {
			return nil, err
		}
		dir = d
		if !o.Keep {
			defer os.RemoveAll(d)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	fmt.Fprintf(o.Out, "bench: work dir %s\n", dir)
	st, err := StartClickHouse(ctx, dir, log, o.Topology)
	if err == nil && st.Cluster != nil {
		rep.CHNodes = len(st.Cluster.Nodes)
	}
	if err != nil {
		return nil, err
	}
	defer st.Stop()

	wcfg := writer.DefaultConfig()
	rep.WriterWorkers, rep.WriterBatch = wcfg.Workers, wcfg.BatchRows

	// 1. Raw baseline: pre-built rows, the writer's batch size and concurrency.
	rawStore, err := st.OpenStore(ctx, "bench_raw", wcfg.Workers+1)
	if err != nil {
		return nil, err
	}
	rep.ClickHouse = ServerVersion(ctx, rawStore)
	m, err := loadgen.NewModel(modelConfig(o.Seed))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "bench: building %d raw batches of %d rows\n", 4, wcfg.BatchRows)
	const rawBatches, rawReqSpans, rawStep = 4, 500, 50 * time.Millisecond
	batches := BuildBatches(loadgen.NewGenerator(m, o.Seed), benchTenant, rawBatches, wcfg.BatchRows, rawReqSpans, time.Now(), rawStep)
	rawRoundSpan := timeSpan(batches) + rawStep
	chCPU := st.clickHouseCPU()
	cpu0, ch0 := selfCPU(), chCPU()
	rep.Raw, err = RawInsert(ctx, rawStore, batches, o.Seed, rawRoundSpan, wcfg.Workers, 1000, o.RawMaxTime)
	rep.Raw.ClientCPU, rep.Raw.CHCPU = selfCPU()-cpu0, chCPU()-ch0
	batches = nil //nolint:ineffassign // release before the end-to-end phase
	if err == nil {
		// The baseline's merges would go on into the first step: drop them.
		err = rawStore.Conn().Exec(ctx, "DROP DATABASE bench_raw")
	}
	rawStore.Close()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "bench: raw insert %.0f rows/s (%d rows in %s)\n", rep.Raw.RowsPerSec, rep.Raw.Rows, rep.Raw.Elapsed.Round(time.Millisecond))

	// 2. End to end: step the rate.
	store, err := st.OpenStore(ctx, "bench", 4)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	// The pipeline is measured, not the per-tenant limits (the overload run
	// checks those): no default tenant rate limit here.
	appArgs := append([]string{"--tenant-records-per-second=0", "--tenant-bytes-per-second=0"}, o.AppArgs...)
	if err := st.StartApp(ctx, o.Bin, "bench", appArgs); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "bench: aftertrace up (otlp grpc %s, api %s)\n", st.GRPCAddr, st.APIAddr)
	if o.ProfileDir != "" {
		if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
			return nil, err
		}
	}
	ids := newIDSample(o.IDSamples, o.Seed)
	rate := o.StartRate
	if rate <= 0 {
		// Start where the minimum ratio lies (0.70 of raw): a held first
		// step shows it directly; the search goes up or down from there.
		rate = max(500, math.Ceil(rep.Raw.RowsPerSec*0.7/100)*100)
	}
steps:
	for i := range o.MaxSteps {
		if i > 0 && time.Since(rep.StartedAt) > o.Budget {
			fmt.Fprintln(o.Out, "bench: time budget reached, no further step")
			break
		}
		if i > 0 {
			// Each step starts quiet: the previous one's parts merged
			// (an overloaded step leaves minutes of merges behind).
			settle(ctx, store, "bench", 30*time.Second, time.Second, io.Discard)
		}
		fmt.Fprintf(o.Out, "bench: step %d: %.0f spans/s for %s\n", i+1, rate, o.StepDuration)
		r, err := RunStep(ctx, st, store, StepConfig{
			Rate: rate, Duration: o.StepDuration, Connections: o.Connections, BatchSpans: o.BatchSpans,
			Transport: o.Transport, Seed: o.Seed + uint64(i), ProbeEvery: o.ProbeEvery,
			ProfileDir: o.ProfileDir, ProfileFor: o.ProfileFor, DrainWithin: 45 * time.Second, Replay: o.Replay,
		}, ids, o.Out)
		if err != nil {
			return nil, err
		}
		rep.Steps = append(rep.Steps, r)
		fmt.Fprintf(o.Out, "bench: step %d: stored %.0f spans/s, lag %d→%d, sustained=%v (%s)\n", i+1, r.SpansPerSec, r.LagMid, r.LagEnd, r.Sustained, r.Reason)
		if r.Sustained && (rep.Best == nil || r.Rate > rep.Best.Rate) {
			best := r
			rep.Best = &best
		}
		best := 0.0
		if rep.Best != nil {
			best = rep.Best.Rate
		}
		var more bool
		if rate, more = nextRate(rate, best, rep.FailedAbove(), o.Factor); !more {
			break steps
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// 3. Latencies and size.
	if rep.Best != nil {
		rep.IngestToQuery = summarize(rep.Best.Probes, rep.Best.ProbeTimeouts)
	} else if len(rep.Steps) > 0 {
		last := rep.Steps[len(rep.Steps)-1]
		rep.IngestToQuery = summarize(last.Probes, last.ProbeTimeouts)
	}
	rep.TraceByID = TraceByID(ctx, st.APIAddr, ids.ids)
	if err := runLogsSteps(ctx, o, rep, st, store, m); err != nil {
		return nil, err
	}
	rep.BytesPerSpan, rep.RowsOnDisk, err = BytesPerSpan(ctx, store, "bench", st.clusterName())
	if err != nil {
		return nil, err
	}
	if o.Compare != nil {
		// After the e2e steps, so the comparison does not share the CPU
		// with them; the stack is idle by now.
		co := *o.Compare
		co.Dir, co.Out = dir, o.Out
		rep.Compare, rep.Overload, rep.CompareErr = Compare(ctx, co)
	}
	rep.Elapsed = time.Since(rep.StartedAt)
	if rep.Best == nil {
		return rep, errors.New("no step was sustained; lower --start-rate")
	}
	return rep, nil
}

func modelConfig(seed uint64) loadgen.ModelConfig {
	mc := loadgen.DefaultModelConfig()
	mc.Seed = seed
	return mc
}

func ptr[T any](v T) *T { return &v }

// nextRate is the step search of spans and of logs: up by factor while
// every step held, down by it until one holds, then halfway between the
// best held rate and the lowest failed one above it while they are more
// than 10 % apart (bounded by the steps and the time budget). best and
// failed are 0 when there is none; more is false when the search is done.
func nextRate(rate, best, failed, factor float64) (next float64, more bool) {
	switch {
	case best == 0:
		return rate / factor, true
	case failed == 0:
		return best * factor, true
	case failed > best*1.1:
		return (best + failed) / 2, true
	}
	return 0, false
}

// runLogsSteps steps the logs rate up while steps hold (down until one
// holds if the first does not).
func runLogsSteps(ctx context.Context, o Options, rep *Report, st *Stack, store *chstore.Store, m *loadgen.Model) error {
	rate := o.LogsStartRate
	if rate <= 0 {
		rate = 40000
		if rep.Best != nil {
			rate = max(rate, float64(int(rep.Best.SpansPerSec/1000))*1000)
		}
	}
	for i := range o.LogsSteps {
		if i > 0 && time.Since(rep.StartedAt) > o.Budget+90*time.Second {
			fmt.Fprintln(o.Out, "bench: time budget reached, no further logs step")
			break
		}
		settle(ctx, store, "bench", 30*time.Second, time.Second, io.Discard)
		fmt.Fprintf(o.Out, "bench: logs step %d: %.0f records/s for %s\n", i+1, rate, o.LogsStepDuration)
		r, err := RunLogsStep(ctx, st, store, m, LogsStepConfig{
			Rate: rate, Duration: o.LogsStepDuration, Connections: o.Connections, PerRequest: 1000,
			Seed: o.Seed + 100 + uint64(i), DrainWithin: 45 * time.Second, Replay: o.Replay,
		})
		if err != nil {
			return err
		}
		rep.LogSteps = append(rep.LogSteps, r)
		fmt.Fprintf(o.Out, "bench: logs step %d: stored %.0f records/s, sustained=%v (%s)\n", i+1, r.LogsPerSec, r.Sustained, r.Reason)
		best := 0.0
		if r.Sustained && (rep.BestLogs == nil || r.Rate > rep.BestLogs.Rate) {
			b := r
			rep.BestLogs = &b
			rep.LogsPerSec = fmt.Sprintf("%.0f", r.LogsPerSec)
		}
		if rep.BestLogs != nil {
			best = rep.BestLogs.Rate
		}
		failed := 0.0 // the lowest failed rate above the best
		for _, l := range rep.LogSteps {
			if !l.Sustained && l.Rate > best && (failed == 0 || l.Rate < failed) {
				failed = l.Rate
			}
		}
		var more bool
		if rate, more = nextRate(rate, best, failed, o.Factor); !more {
			return nil
		}
	}
	return nil
}
