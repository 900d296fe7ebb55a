// Command reliability runs the reliability suite (loadtest/reliability) on
// a fresh private stack and prints its table; the last line is
// "reliability: passed=N failed=M". `make reliability` runs it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/aftertrace/aftertrace/loadtest/reliability"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o reliability.Options
	fs := pflag.NewFlagSet("reliability", pflag.ContinueOnError)
	fs.StringVar(&o.Bin, "aftertrace-bin", "bin/aftertrace", "aftertrace binary")
	fs.StringVar(&o.Dir, "dir", "", "work dir (default: a temporary dir, removed afterwards)")
	fs.StringVar(&o.Spec, "spec", "api/openapi.yaml", "OpenAPI document whose routes are probed")
	fs.BoolVar(&o.Short, "short", false, "short windows and few repetitions (the subset make test runs)")
	fs.StringSliceVar(&o.Only, "only", nil, "run only these cases")
	timeout := fs.Duration("timeout", 20*time.Minute, "give up after this long")
	verbose := fs.Bool("v", false, "log the stack's progress")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *verbose {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	results, err := reliability.Run(ctx, o, out)
	if err != nil {
		return err
	}
	for _, r := range results {
		if !r.Pass {
			return errors.New("some cases failed")
		}
	}
	return nil
}
