package allinone

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Targets a process can run (--target): each is a module of the graph
// below; "all" is every one of them.
const (
	TargetAll        = "all"
	TargetGateway    = "gateway"
	TargetWriter     = "writer"
	TargetAPI        = "api"
	TargetCorrelator = "correlator"
	TargetRetention  = "retention"
)

// The modules targets need. Each opens and closes exactly one thing.
const (
	modStack      = "stack"          // the dev stack's servers (--stack-dir), else nothing
	modMigrations = "migrations"     // schema migrations (--migrate)
	modNATS       = "nats"           // embedded NATS server(s) when no --nats-url
	modJetStream  = "jetstream"      // the NATS connection and the streams
	modClickHouse = "clickhouse"     // the writer's and background loops' pool
	modRCA        = "rca"            // the root-cause engine of the anomaly pass
	modAPIReads   = "api-clickhouse" // the API's own pool and RCA engine
	modPostgres   = "postgres"       // the relational store's pool
	modTenancy    = "tenancy"        // API key authentication
	modClassifier = "classifier"     // retention classes of written rows
	modLease      = "lease"          // one leader per background loop and deployment
	modOps        = "ops"            // /metrics, /debug/pprof, /readyz listener
)

// moduleDeps is the module graph: what each module needs started before
// it starts and stopped after it stops. Validation and the running
// process (dskit's module manager) read the same table.
var moduleDeps = map[string][]string{
	modStack:      nil,
	modMigrations: {modStack},
	modNATS:       {modStack},
	modJetStream:  {modNATS},
	modClickHouse: {modMigrations},
	modRCA:        {modClickHouse},
	modAPIReads:   {modMigrations},
	modPostgres:   {modMigrations},
	modTenancy:    {modPostgres},
	modClassifier: {modPostgres},
	modLease:      {modMigrations},
	modOps:        {modStack},

	TargetGateway: {modJetStream, modTenancy, modOps},
	// The writer brings the retention worker along (one leader per
	// deployment runs it), so every deployment with a writer enforces
	// retention.
	TargetWriter:     {modJetStream, modClickHouse, modClassifier, TargetRetention},
	TargetAPI:        {modAPIReads, modTenancy, modOps},
	TargetCorrelator: {modJetStream, modRCA, modPostgres, modClassifier, modLease},
	TargetRetention:  {modClickHouse, modPostgres, modLease},
	TargetAll:        {TargetGateway, TargetWriter, TargetAPI, TargetCorrelator, TargetRetention},
}

// TargetNames are the modules --target accepts.
var TargetNames = []string{TargetAll, TargetGateway, TargetWriter, TargetAPI, TargetCorrelator, TargetRetention}

// runs reports whether module m runs for c.Targets: a target or something
// a target needs.
func (c Config) runs(m string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(n string) bool {
		if n == m {
			return true
		}
		if seen[n] {
			return false
		}
		seen[n] = true
		return slices.ContainsFunc(moduleDeps[n], walk)
	}
	return slices.ContainsFunc(c.Targets, walk)
}

// Runs reports whether module m (a target, or a part such as "nats" or
// "tenancy") runs for c.Targets.
func (c Config) Runs(m string) bool { return c.runs(m) }

// validateTargets names every target that is not a module.
func (c Config) validateTargets() error {
	if len(c.Targets) == 0 {
		return fmt.Errorf("target: at least one of %s", strings.Join(TargetNames, ", "))
	}
	var errs []error
	for _, t := range c.Targets {
		if !slices.Contains(TargetNames, t) {
			errs = append(errs, fmt.Errorf("target: unknown module %q (one of %s)", t, strings.Join(TargetNames, ", ")))
		}
	}
	return errors.Join(errs...)
}
