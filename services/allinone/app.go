package allinone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/grafana/dskit/modules"
	"github.com/grafana/dskit/services"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/lease"
	"github.com/aftertrace/aftertrace/internal/ops"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/rca"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/schema"
	"github.com/aftertrace/aftertrace/internal/tlsconfig"
	"github.com/aftertrace/aftertrace/services/api"
	"github.com/aftertrace/aftertrace/services/correlator"
	"github.com/aftertrace/aftertrace/services/gateway"
	retentionsvc "github.com/aftertrace/aftertrace/services/retention"
	"github.com/aftertrace/aftertrace/services/writer"
)

// Deps are optional collaborators; zero values get defaults.
type Deps struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Started, if set, receives the running app once every service listens
	// (tests use it to learn the bound addresses).
	Started func(*App)
	// WrapSpanStore, if set, wraps the writer's span store (fault tests).
	WrapSpanStore func(writer.SpanStore) writer.SpanStore
}

// App is one running Aftertrace process: the modules of its targets.
// Each module's starting function sets its fields below before any
// module that needs it starts.
type App struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	// mu guards readies, which the ops listener reads while modules
	// start; wantReady is how many of them the targets bring.
	mu        sync.Mutex
	readies   []func() bool
	wantReady int

	Gateway *gateway.Service
	Writer  *writer.Service
	API     *api.Service
	// Correlator is nil unless the correlator runs.
	Correlator *correlator.Service

	stack      *devStack
	natsStop   func()              // stops the embedded NATS server(s) (nil: external)
	natsURL    string              // where the NATS connection goes
	nc         *nats.Conn          // module jetstream
	js         jetstream.JetStream // module jetstream
	chStore    *chstore.Store      // the writer's and background loops' ClickHouse
	rca        *rca.Engine         // root causes for the anomaly pass (the API has its own: reads)
	reads      *apiReads           // the API's own ClickHouse pool and RCA engine
	pg         *pgstore.Store      // nil without Postgres
	ten        *tenancy            // how the gateway and the API authenticate
	classifier *retention.Classifier
	worker     *retentionsvc.Service
	lease      *lease.Elector // runs each background loop in one process of the deployment (nil without Postgres)
	ops        *ops.Server    // the process's /metrics and /debug/pprof/ (nil: none)
}

// New validates cfg. Nothing starts until Run.
func New(cfg Config, deps Deps) (*App, error) {
	if cfg.TLS != (tlsconfig.Config{}) {
		cfg.Gateway.TLS, cfg.API.TLS = cfg.TLS, cfg.TLS
	}
	// The gateway rejects records older than the longest retention.
	if days := cfg.Retention.LongestDefaultDays(); days > 0 {
		cfg.Gateway.TenantLimit.Retention = time.Duration(days) * 24 * time.Hour
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
		deps.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	a := &App{cfg: cfg, deps: deps, log: deps.Logger}
	for _, t := range []string{TargetGateway, TargetAPI, TargetCorrelator} { // the services with a readiness flag
		if cfg.runs(t) {
			a.wantReady++
		}
	}
	return a, nil
}

// Config returns the effective configuration (after the dev stack, if
// any, filled in addresses and the dev key).
func (a *App) Config() Config { return a.cfg }

// Run starts the modules of cfg.Targets, each after what it needs, and
// blocks until ctx ends or a module fails; then every module stops after
// those that need it (services drain first, stores close last).
func (a *App) Run(ctx context.Context) error {
	mm := a.moduleManager()
	svcs, err := mm.InitModuleServices(a.cfg.Targets...)
	if err != nil {
		return err
	}
	sm, err := services.NewManager(slices.Collect(maps.Values(svcs))...)
	if err != nil {
		return err
	}
	stopped := make(chan struct{})
	sm.AddListener(services.NewManagerListener(nil, func() { close(stopped) }, func(services.Service) { sm.StopAsync() }))
	if err := sm.StartAsync(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	if err := sm.AwaitHealthy(ctx); err == nil {
		a.announce()
		if a.deps.Started != nil {
			a.deps.Started(a)
		}
	}
	select {
	case <-ctx.Done():
	case <-stopped:
	}
	sm.StopAsync()
	<-stopped
	return moduleFailures(svcs)
}

// moduleFailures joins the errors of the modules that failed, by name.
func moduleFailures(svcs map[string]services.Service) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(svcs)) {
		if s := svcs[name]; s.State() == services.Failed {
			errs = append(errs, fmt.Errorf("%s: %w", name, s.FailureCase()))
		}
	}
	return errors.Join(errs...)
}

// moduleManager registers every module of moduleDeps with the function
// that builds its service.
func (a *App) moduleManager() *modules.Manager {
	build := map[string]func() (services.Service, error){
		modStack:         a.stackModule,
		modMigrations:    a.migrationsModule,
		modNATS:          a.natsModule,
		modJetStream:     a.jetStreamModule,
		modClickHouse:    a.clickHouseModule,
		modRCA:           a.rcaModule,
		modAPIReads:      a.apiReadsModule,
		modPostgres:      a.postgresModule,
		modTenancy:       a.tenancyModule,
		modClassifier:    a.classifierModule,
		modLease:         a.leaseModule,
		modOps:           a.opsModule,
		TargetGateway:    a.gatewayModule,
		TargetWriter:     a.writerModule,
		TargetAPI:        a.apiModule,
		TargetCorrelator: a.correlatorModule,
		TargetRetention:  a.retentionModule,
		TargetAll:        nil, // only its dependencies
	}
	mm := modules.NewManager(kitLogger{a.log.With("component", "modules")})
	for _, name := range slices.Sorted(maps.Keys(moduleDeps)) {
		mm.RegisterModule(name, build[name])
	}
	for _, name := range slices.Sorted(maps.Keys(moduleDeps)) {
		// Names come from one table: an error here is a programming error.
		if err := mm.AddDependency(name, moduleDeps[name]...); err != nil {
			panic(err)
		}
	}
	return mm
}

func (a *App) gatewayModule() (services.Service, error) {
	start := func(context.Context) error {
		g, err := gateway.New(a.cfg.Gateway, gateway.Deps{
			Logger:    a.log.With("service", "gateway"),
			Publisher: bus.NewPublisher(a.nc, a.js, a.cfg.Publisher),
			Auth:      a.ten.auth,
			Registry:  a.deps.Registry,

			LimitOverrides: a.ten.limitOverrides(),
		})
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		a.Gateway = g
		a.addReady(g.Ready)
		return nil
	}
	return services.NewBasicService(start, func(ctx context.Context) error { return a.Gateway.Run(ctx) },
		func(error) error { return a.Gateway.Close() }), nil
}

func (a *App) writerModule() (services.Service, error) {
	start := func(context.Context) error {
		var spans writer.SpanStore = a.chStore
		if a.deps.WrapSpanStore != nil {
			spans = a.deps.WrapSpanStore(spans)
		}
		wcfg := a.cfg.Writer
		if a.cfg.runs(modOps) {
			wcfg.OpsAddr = "" // the process's ops listener serves /metrics (OpsAddr)
		}
		w, err := writer.New(wcfg, writer.Deps{
			Logger:   a.log.With("service", "writer"),
			JS:       a.js,
			Spans:    spans,
			Logs:     a.chStore,
			Metrics:  a.chStore,
			Events:   a.eventStore(),
			Registry: a.deps.Registry,
			Streams:  a.cfg.Streams,
			Classify: a.classify(),
		})
		if err != nil {
			return fmt.Errorf("writer: %w", err)
		}
		a.Writer = w
		return nil
	}
	return services.NewBasicService(start, func(ctx context.Context) error { return a.Writer.Run(ctx) }, nil), nil
}

func (a *App) apiModule() (services.Service, error) {
	start := func(context.Context) error {
		s, err := api.New(a.cfg.API, api.Deps{
			Logger:   a.log.With("service", "api"),
			Store:    a.reads.store,
			Auth:     a.ten.auth,
			Admin:    a.ten.admin(),
			AdminKey: a.cfg.AdminAPIKey,
			Registry: a.deps.Registry,
			RCA:      a.reads.rca,

			IncidentRootCauses: a.ten.incidentRootCauses(),

			Events:               a.reads.store,
			Correlations:         correlations(a.reads.store),
			BusinessTransactions: a.ten.businessTransactions(),
			Incidents:            a.ten.incidents(),
			IncidentRules:        a.ten.incidentRules(),
			IncidentRuleDefaults: incidentRuleDefaults(a.cfg.Correlator),
			Retention:            a.retentionAPI(),
		})
		if err != nil {
			return fmt.Errorf("api: %w", err)
		}
		a.API = s
		a.addReady(s.Ready)
		return nil
	}
	return services.NewBasicService(start, func(ctx context.Context) error { return a.API.Run(ctx) },
		func(error) error { return a.API.Close() }), nil
}

func (a *App) announce() {
	attrs := []any{}
	if a.Gateway != nil {
		attrs = append(attrs, "otlp_grpc", a.Gateway.GRPCAddr(), "otlp_http", a.Gateway.HTTPAddr())
	}
	if a.API != nil {
		attrs = append(attrs, "api", a.API.Addr())
	}
	if a.ops != nil {
		attrs = append(attrs, "ops", a.OpsAddr())
	}
	if a.Writer != nil && a.Writer.OpsAddr() != "" {
		attrs = append(attrs, "writer_ops", a.Writer.OpsAddr())
	}
	a.log.Info("aftertrace ready", attrs...)
}

func (a *App) migrate(ctx context.Context) error {
	o := schema.Options{PostgresDSN: a.cfg.PostgresDSN}
	if a.cfg.runs(modClickHouse) || a.cfg.runs(modAPIReads) {
		o.ClickHouse = schema.ClickHouseOptions{
			Addr: a.cfg.ClickHouse.Addr, Database: a.cfg.ClickHouse.Database,
			Username: a.cfg.ClickHouse.Username, Password: a.cfg.ClickHouse.Password,
			Cluster: a.cfg.ClickHouse.Cluster,
		}
	}
	return schema.Migrate(ctx, o)
}
