// Command bench measures Aftertrace on a fresh private stack (see
// loadtest/bench): `bench` runs the ingest benchmark of `make bench`,
// `bench --scale` the large-table query benchmark of `make bench-scale`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/aftertrace/aftertrace/loadtest/bench"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	o, so := bench.DefaultOptions(), bench.DefaultScaleOptions()
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	scale := fs.Bool("scale", false, "run the scale benchmark instead (raw load of --spans, then query latency)")
	fs.StringVar(&o.Bin, "aftertrace-bin", o.Bin, "aftertrace binary to benchmark")
	fs.StringVar(&o.Topology, "topology", o.Topology, "ClickHouse topology: single, or cluster (2 shards × 2 replicas with ZooKeeper on this host)")
	fs.StringVar(&o.Dir, "dir", "", "work dir (default: a temporary dir, removed afterwards)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work dir")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "load generator seed")
	fs.StringVar(&o.Transport, "transport", o.Transport, "grpc or http")
	fs.IntVar(&o.Connections, "connections", o.Connections, "load generator connections")
	fs.IntVar(&o.BatchSpans, "batch", o.BatchSpans, "most spans per OTLP request")
	fs.Float64Var(&o.StartRate, "start-rate", o.StartRate, "first step, spans/s (0: half the measured raw insert rate)")
	fs.Float64Var(&o.Factor, "factor", o.Factor, "rate multiplier between steps")
	fs.IntVar(&o.MaxSteps, "steps", o.MaxSteps, "most steps")
	fs.DurationVar(&o.StepDuration, "step-duration", o.StepDuration, "how long each step sends")
	fs.DurationVar(&o.Budget, "budget", o.Budget, "start no step after this much time")
	fs.DurationVar(&o.RawMaxTime, "raw-time", o.RawMaxTime, "duration of the raw insert baseline")
	fs.DurationVar(&o.ProbeEvery, "probe-every", o.ProbeEvery, "one ingest → queryable probe per interval (0: no probes)")
	fs.IntVar(&o.IDSamples, "id-samples", o.IDSamples, "trace-by-id reads")
	fs.StringVar(&o.ProfileDir, "profile-dir", "", "save a CPU profile of the server per step here")
	fs.DurationVar(&o.ProfileFor, "profile-for", o.ProfileFor, "length of each CPU profile")
	fs.Int64Var(&so.Spans, "spans", so.Spans, "scale: spans to load")
	fs.IntVar(&so.Queries, "queries", so.Queries, "scale: timed queries of each kind")
	fs.IntVar(&so.Workers, "workers", so.Workers, "scale: concurrent inserts")
	fs.DurationVar(&so.SettleMax, "settle-max", so.SettleMax, "scale: longest wait for background merges before the settled reads")
	fs.Float64Var(&o.LogsStartRate, "logs-start-rate", o.LogsStartRate, "first logs step, records/s (0: the best span rate, at least 40000)")
	fs.IntVar(&o.LogsSteps, "logs-steps", o.LogsSteps, "most logs steps (0 skips logs)")
	fs.DurationVar(&o.LogsStepDuration, "logs-step-duration", o.LogsStepDuration, "how long each logs step sends")
	co := bench.DefaultCompareOptions()
	compareOnly := fs.Bool("compare-only", false, "run only the gateway vs OpenTelemetry Collector comparison")
	noCompare := fs.Bool("no-compare", false, "skip the gateway vs OpenTelemetry Collector comparison")
	fs.StringVar(&co.CollectorBin, "otelcol-bin", co.CollectorBin, "collector binary (make otelcol)")
	fs.StringVar(&co.TelemetrygenBin, "telemetrygen-bin", co.TelemetrygenBin, "telemetrygen binary (make telemetrygen)")
	fs.IntVar(&co.Workers, "compare-workers", co.Workers, "compare: telemetrygen workers")
	fs.Float64Var(&co.RatePerWorker, "compare-rate", co.RatePerWorker, "compare: spans/s per worker (telemetrygen --rate)")
	fs.IntVar(&co.TracesPerWorker, "compare-traces", co.TracesPerWorker, "compare: traces per worker")
	fs.Float64Var(&co.OverloadLimit, "overload-limit", co.OverloadLimit, "overload: tenant limit in spans/s")
	fs.DurationVar(&co.OverloadFor, "overload-for", co.OverloadFor, "overload: how long unthrottled telemetrygen runs (0 skips)")
	fs.StringArrayVar(&o.AppArgs, "app-arg", nil, "extra `aftertrace run` flag, repeatable (e.g. --app-arg=--writer-flush-interval=1s)")
	noReplay := fs.Bool("no-replay", false, "generate every span and logs request live instead of replaying pre-encoded ones (costs the load generator ~5 CPU ms per 1000 spans)")
	selfProfile := fs.String("self-profile", "", "write a CPU profile of the bench process itself (raw inserts, load generation) here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Replay = !*noReplay
	if *selfProfile != "" {
		f, err := os.Create(*selfProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *scale {
		so.Seed, so.Dir, so.Keep = o.Seed, o.Dir, o.Keep
		rep, err := bench.RunScale(ctx, so)
		if err != nil {
			return err
		}
		rep.Table(os.Stdout)
		return nil
	}
	co.AftertraceBin = o.Bin
	o.Compare = &co
	if *noCompare {
		o.Compare = nil
	}
	if *compareOnly {
		dir, err := os.MkdirTemp("", "aftertrace-compare-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		co.Dir = dir
		rows, ov, err := bench.Compare(ctx, co)
		bench.WriteCompare(os.Stdout, rows, ov, err)
		return err
	}
	rep, err := bench.Run(ctx, o)
	if rep != nil {
		rep.Table(os.Stdout)
	}
	return err
}
