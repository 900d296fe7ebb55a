// Command replay sends a root-cause dataset in the Nezha layout (see
// loadtest/replay) through the public OTLP endpoints of Aftertrace or any
// OTLP receiver:
//
//	replay --dir ../shared/datasets/nezha-ob-2022-08-22 --otlp-endpoint 127.0.0.1:4317 --key $KEY
//	replay --dir DIR --otlp-http http://127.0.0.1:4318 --only-windows --rate 20000
//	replay --dir DIR --resume          # continue an interrupted replay
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/aftertrace/aftertrace/loadtest/replay"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg := replay.DefaultConfig()
	sc := replay.SenderConfig{GRPCEndpoint: "127.0.0.1:4317", MaxRetries: 10, Timeout: 30 * time.Second}
	fs := pflag.NewFlagSet("replay", pflag.ContinueOnError)
	fs.StringVar(&cfg.Dir, "dir", "", "dataset dir in the Nezha layout (rca_data/, construct_data/)")
	fs.StringVar(&sc.GRPCEndpoint, "otlp-endpoint", sc.GRPCEndpoint, "OTLP/gRPC endpoint host:port")
	fs.StringVar(&sc.HTTPURL, "otlp-http", "", "OTLP/HTTP base URL (e.g. http://127.0.0.1:4318); replaces --otlp-endpoint")
	fs.BoolVar(&sc.TLS, "tls", false, "use TLS for OTLP/gRPC (system roots)")
	fs.StringVar(&sc.Key, "key", "", "API key sent as Bearer token (default $AFTERTRACE_API_KEY)")
	fs.IntVar(&sc.MaxRetries, "max-retries", sc.MaxRetries, "retries of a throttled/unavailable request")
	fs.DurationVar(&sc.Timeout, "timeout", sc.Timeout, "timeout of one request")
	fs.Float64Var(&cfg.Rate, "rate", 0, "records (spans, log records, data points) per second; 0 = as fast as possible")
	fs.IntVar(&cfg.BatchSize, "batch", cfg.BatchSize, "records per OTLP request")
	fs.BoolVar(&cfg.Baseline, "baseline", cfg.Baseline, "replay construct_data (the fault-free baseline) too")
	fs.StringVar(&cfg.Namespace, "namespace", cfg.Namespace, "k8s.namespace.name of every resource")
	fs.BoolVar(&cfg.OnlyWindows, "only-windows", false, "send only the minutes around each labelled fault plus a baseline window")
	fs.DurationVar(&cfg.WindowBefore, "window-before", cfg.WindowBefore, "with --only-windows: time before the inject minute")
	fs.DurationVar(&cfg.WindowAfter, "window-after", cfg.WindowAfter, "with --only-windows: time after the inject minute")
	fs.IntVar(&cfg.BaselineMinutes, "baseline-minutes", cfg.BaselineMinutes, "with --only-windows: minutes of fault-free baseline (0 = none)")
	fs.StringVar(&cfg.StatePath, "state", ".replay-state.json", "state file recording finished files and offsets (\"\" = none)")
	fs.BoolVar(&cfg.Resume, "resume", false, "continue from the state file instead of starting over")
	signals := fs.StringSlice("signals", nil, "replay only these kinds of files: trace, log, metric (default every kind)")
	noProgress := fs.Bool("no-progress", false, "no progress bar")
	verbose := fs.BoolP("verbose", "v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if sc.Key == "" {
		sc.Key = os.Getenv("AFTERTRACE_API_KEY")
	}
	for _, k := range *signals {
		cfg.Kinds = append(cfg.Kinds, replay.Kind(k))
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Log, sc.Log = log, log
	if !*noProgress {
		cfg.Progress = os.Stderr
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := replay.NewSender(sc)
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	st, err := replay.Run(ctx, cfg, s)
	fmt.Fprintf(os.Stderr, "\nfiles %d (skipped %d, already done %d), spans %d, log records %d, data points %d, rejected %d, filtered rows %d, bad rows %d, requests %d, retries %d, %s\n",
		st.Files, st.SkippedFiles, st.ResumedFiles, st.Spans, st.LogRecords, st.DataPoints, st.Rejected,
		st.FilteredRows, st.BadRows, s.Requests, s.Retries, time.Since(start).Round(time.Millisecond))
	if err != nil && cfg.StatePath != "" {
		fmt.Fprintf(os.Stderr, "stopped early: run again with --resume to continue from the last acknowledged batch (state %s)\n", cfg.StatePath)
	}
	return err
}
