package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunHelpListsCommands(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"run", "gateway", "writer", "api", "migrate"} {
		if !strings.Contains(out.String(), cmd) {
			t.Errorf("help does not list %q:\n%s", cmd, out.String())
		}
	}
}

// TestInvalidConfigReportsEveryProblem: all configuration errors come back
// together, from flags and from the environment.
func TestInvalidConfigReportsEveryProblem(t *testing.T) {
	t.Setenv("AFTERTRACE_WRITER_BATCH_ROWS", "0")
	var out bytes.Buffer
	err := run(context.Background(), []string{"run",
		"--grpc-addr", "nonsense", "--max-request-bytes", "-1", "--clickhouse-addr", "",
		"--dev-api-key", "short", "--nats-store-dir", t.TempDir(),
	}, &out, &out)
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{"grpc", "request", "clickhouse addr", "batch rows", "dev api key"} {
		if !strings.Contains(strings.ToLower(err.Error()), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestBadEnvValueIsReported(t *testing.T) {
	t.Setenv("AFTERTRACE_WRITER_WORKERS", "many")
	err := run(context.Background(), []string{"writer"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "AFTERTRACE_WRITER_WORKERS") {
		t.Fatalf("err = %v, want it to name AFTERTRACE_WRITER_WORKERS", err)
	}
}

func TestEnvName(t *testing.T) {
	cases := map[string]string{
		"clickhouse-addr": "AFTERTRACE_CLICKHOUSE_ADDR",
		"dev-api-key":     "AFTERTRACE_DEV_API_KEY",
		"grpc-addr":       "AFTERTRACE_GRPC_ADDR",
	}
	for flag, want := range cases {
		if got := envName(flag); got != want {
			t.Errorf("envName(%q) = %q, want %q", flag, got, want)
		}
	}
}

func TestUnknownTargetIsNamed(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"run", "--target", "gateway,ingester", "--nats-store-dir", t.TempDir()}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), `target: unknown module "ingester"`) {
		t.Fatalf("run --target gateway,ingester: %v, want the unknown target named", err)
	}
}
