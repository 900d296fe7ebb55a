package allinone

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// The module graph decides what a target brings along.
func TestTargetsRunWhatTheyNeed(t *testing.T) {
	tests := []struct {
		targets []string
		runs    []string
		not     []string
	}{
		{[]string{TargetAll}, []string{TargetGateway, TargetWriter, TargetAPI, TargetCorrelator, TargetRetention, modOps, modNATS}, nil},
		{[]string{TargetGateway}, []string{modJetStream, modNATS, modTenancy, modPostgres, modOps, modMigrations, modStack}, []string{modClickHouse, modAPIReads, TargetWriter, TargetRetention}},
		{[]string{TargetWriter}, []string{modJetStream, modClickHouse, modClassifier, TargetRetention, modLease}, []string{modOps, modTenancy, TargetGateway, TargetAPI}},
		{[]string{TargetAPI}, []string{modAPIReads, modTenancy, modOps}, []string{modNATS, modClickHouse, TargetRetention}},
		{[]string{TargetCorrelator}, []string{modJetStream, modRCA, modClickHouse, modLease, modClassifier}, []string{modOps, modAPIReads, TargetRetention}},
		{[]string{TargetRetention}, []string{modClickHouse, modPostgres, modLease}, []string{modNATS, modJetStream, modOps, TargetWriter}},
		{[]string{TargetGateway, TargetAPI}, []string{modOps, modJetStream, modAPIReads}, []string{modClickHouse}},
	}
	for _, tc := range tests {
		c := Config{Targets: tc.targets}
		for _, m := range tc.runs {
			if !c.runs(m) {
				t.Errorf("targets %v: %s does not run, want it to", tc.targets, m)
			}
		}
		for _, m := range tc.not {
			if c.runs(m) {
				t.Errorf("targets %v: %s runs, want it not to", tc.targets, m)
			}
		}
	}
}

// Every module of the graph has a builder and only known dependencies.
func TestModuleGraphIsClosed(t *testing.T) {
	a, err := New(DefaultConfig(), Deps{})
	if err == nil {
		t.Fatal("default config without a NATS store dir validated") // New refuses; build the App by hand
	}
	a = &App{log: slog.New(slog.DiscardHandler)}
	mm := a.moduleManager()
	for name, deps := range moduleDeps {
		if !mm.IsModuleRegistered(name) {
			t.Errorf("module %s not registered", name)
		}
		for _, d := range deps {
			if _, ok := moduleDeps[d]; !ok {
				t.Errorf("module %s needs unknown module %s", name, d)
			}
		}
	}
}

func TestTargetValidation(t *testing.T) {
	c := DefaultConfig()
	c.Targets = []string{"gateway", "ingester"}
	c.NATSURL, c.DevAPIKey = "nats://127.0.0.1:1", "0123456789"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), `target: unknown module "ingester"`) {
		t.Fatalf("validate: %v, want the unknown target named", err)
	}
	c.Targets = nil
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "target: at least one of") {
		t.Fatalf("validate without targets: %v", err)
	}
}

// A module that cannot start (the ops port is taken) fails the process
// with the module's name, and what had started stops again (goleak in
// TestMain checks nothing is left running).
func TestModuleStartFailureStopsTheProcess(t *testing.T) {
	env := testenv.Get(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := DefaultConfig()
	cfg.Targets = []string{TargetGateway}
	cfg.Gateway.GRPCAddr, cfg.Gateway.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.OpsAddr = ln.Addr().String()
	cfg.NATSURL, cfg.PostgresDSN, cfg.DevAPIKey = env.NATSURL, env.PostgresDSN, testKey
	app, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = app.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "ops: listening on "+cfg.OpsAddr) {
		t.Fatalf("run: %v, want the ops module's listen error", err)
	}
	if ctx.Err() != nil {
		t.Fatal("run returned only when the test's deadline passed")
	}
}

// The retention target alone runs the worker without NATS, the gateway
// or the API, and stops cleanly.
func TestRetentionTargetAlone(t *testing.T) {
	env := testenv.Get(t)
	var started *App
	app := startApp(t, env, env.ClickHouseAddr, appOptions{
		cfg: func(c *Config) {
			c.Targets = []string{TargetRetention}
		},
		deps: func(d *Deps) {
			prev := d.Started
			d.Started = func(a *App) { started = a; prev(a) }
		},
	})
	if started.Gateway != nil || started.API != nil || started.Writer != nil || started.Correlator != nil {
		t.Fatal("a service other than retention was built")
	}
	if app.worker == nil || app.ClickHouse() == nil || app.lease == nil {
		t.Fatal("the retention worker, its ClickHouse store or its lease is missing")
	}
	if app.nc != nil {
		t.Fatal("retention alone connected to NATS")
	}
}
