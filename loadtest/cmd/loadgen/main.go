// Command loadgen sends the OTLP traffic of a simulated microservice shop
// to an Aftertrace gateway (or any OTLP receiver) at a fixed, open-loop
// rate. See loadtest/loadgen.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/aftertrace/aftertrace/loadtest/loadgen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg := loadgen.DefaultRunConfig()
	fs := pflag.NewFlagSet("loadgen", pflag.ContinueOnError)
	fs.Uint64Var(&cfg.Model.Seed, "seed", cfg.Model.Seed, "seed of every random choice (same seed, same ids and attributes)")
	fs.IntVar(&cfg.Model.Services, "services", cfg.Model.Services, "number of services (the first 8 are frontend, checkout, payment, cart, catalog, shipping, email, currency)")
	fs.IntVar(&cfg.Model.PodsPerService, "pods", cfg.Model.PodsPerService, "pods per service")
	fs.IntVar(&cfg.Model.Nodes, "nodes", cfg.Model.Nodes, "Kubernetes nodes")
	fs.IntVar(&cfg.Model.Depth, "depth", cfg.Model.Depth, "longest call chain below the root span")
	fs.IntVar(&cfg.Model.FanOut, "fanout", cfg.Model.FanOut, "most downstream calls per span")
	fs.Float64Var(&cfg.Model.BusinessRatio, "business-ratio", cfg.Model.BusinessRatio, "share of traces that are checkout/payment business transactions")
	fs.Float64Var(&cfg.Model.ErrorRate, "error-rate", cfg.Model.ErrorRate, "baseline share of failing server spans")
	fs.StringVar(&cfg.Model.Namespace, "namespace", cfg.Model.Namespace, "Kubernetes namespace of the pods")
	fs.StringVar(&cfg.Transport, "transport", cfg.Transport, "grpc or http")
	fs.StringVar(&cfg.Endpoint, "endpoint", "", "gateway address: host:port for grpc (default 127.0.0.1:4317), http://host:port for http (default http://127.0.0.1:4318)")
	fs.StringVar(&cfg.Key, "key", os.Getenv("AFTERTRACE_API_KEY"), "API key (default $AFTERTRACE_API_KEY)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "spans per second")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to send")
	fs.IntVar(&cfg.Connections, "connections", cfg.Connections, "concurrent connections")
	fs.IntVar(&cfg.BatchSpans, "batch", cfg.BatchSpans, "most spans per request")
	fs.IntVar(&cfg.LogsPerTrace, "logs-per-trace", 0, "log records (carrying trace and span ids) per trace; 0 sends no logs")
	fs.BoolVar(&cfg.Metrics, "metrics", false, "also send metrics (gauge, sum, histogram with exemplars)")
	fs.DurationVar(&cfg.MetricsInterval, "metrics-interval", cfg.MetricsInterval, "metrics export interval")
	fs.IntVar(&cfg.Faults, "faults", 1, "faults to inject (a pod of a service gets slow and failing for a window)")
	fs.StringVar(&cfg.GroundTruth, "ground-truth", "loadgen-ground-truth.json", "where to write the injected faults (empty: don't)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", cfg.RequestTimeout, "deadline of one export")
	quiet := fs.Bool("quiet", false, "no per-second progress")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "127.0.0.1:4317"
		if cfg.Transport == "http" {
			cfg.Endpoint = "http://127.0.0.1:4318"
		}
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("elapsed=%s requests=%d failed=%d late=%d spans sent=%d acked=%d rejected=%d acked_spans_per_s=%.0f",
		st.Elapsed.Round(1e6), st.Requests, st.Failed, st.Late, st.SentSpans, st.AckedSpans, st.RejSpans,
		float64(st.AckedSpans)/st.Elapsed.Seconds())
	if st.SentLogs > 0 || st.SentPoints > 0 {
		fmt.Printf(" logs sent=%d acked=%d points sent=%d acked=%d", st.SentLogs, st.AckedLogs, st.SentPoints, st.AckedPoints)
	}
	fmt.Println()
	if st.LastError != "" {
		fmt.Fprintln(os.Stderr, "last error:", st.LastError)
	}
	if st.Failed > 0 {
		return fmt.Errorf("%d requests failed", st.Failed)
	}
	return nil
}
