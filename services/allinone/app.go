package allinone

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/lease"
	"github.com/aftertrace/aftertrace/internal/ops"
	"github.com/aftertrace/aftertrace/internal/rca"
	"github.com/aftertrace/aftertrace/internal/schema"
	"github.com/aftertrace/aftertrace/internal/tlsconfig"
	"github.com/aftertrace/aftertrace/services/api"
	"github.com/aftertrace/aftertrace/services/correlator"
	"github.com/aftertrace/aftertrace/services/gateway"
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

// App is one running Aftertrace process.
type App struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	Gateway *gateway.Service
	Writer  *writer.Service
	API     *api.Service
	// Correlator is nil unless Roles.Correlator.
	Correlator *correlator.Service

	ret *retentionParts // retention classifier, API store and worker
	ops *ops.Server     // the process's /metrics and /debug/pprof/ (nil: none)
	rca *rca.Engine     // root causes for the anomaly pass (the API has its own: reads)

	chStore *chstore.Store // the writer's and correlator's ClickHouse (nil when neither runs)
	reads   *apiReads      // the API's own ClickHouse pool and RCA engine (nil unless Roles.API)
	lease   *lease.Elector // runs each background loop in one process of the deployment (nil without Postgres)
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
	return &App{cfg: cfg, deps: deps, log: deps.Logger}, nil
}

// Config returns the effective configuration (after the dev stack, if
// any, filled in addresses and the dev key).
func (a *App) Config() Config { return a.cfg }

// Run starts the dependencies and the services and blocks until ctx ends
// or a service fails; then every service drains and stops.
func (a *App) Run(ctx context.Context) (err error) {
	if a.cfg.StackDir != "" {
		st, err := a.startStack(ctx)
		if err != nil {
			return err
		}
		defer st.stop()
	}
	if a.cfg.Migrate {
		if err := a.migrate(ctx); err != nil {
			return err
		}
	}

	var nc *nats.Conn
	var js jetstream.JetStream
	if a.cfg.Roles.Gateway || a.cfg.Roles.Writer || a.cfg.Roles.Correlator {
		url := a.cfg.NATSURL
		switch {
		case url == "" && a.cfg.EmbeddedNATSNodes > 1:
			c, err := bus.StartEmbeddedCluster(a.cfg.EmbeddedNATS, a.cfg.EmbeddedNATSNodes)
			if err != nil {
				return err
			}
			defer c.Shutdown()
			url = c.URLs()
			a.log.Info("embedded NATS JetStream cluster started", "urls", url, "store", a.cfg.EmbeddedNATS.StoreDir, "stream replicas", a.cfg.Streams.Replicas)
		case url == "":
			srv, err := bus.StartEmbedded(a.cfg.EmbeddedNATS)
			if err != nil {
				return err
			}
			defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
			url = srv.ClientURL()
			a.log.Info("embedded NATS JetStream started", "url", url, "store", a.cfg.EmbeddedNATS.StoreDir)
		}
		nc, err = bus.Connect(url, "aftertrace")
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err = jetstream.New(nc, jetstream.WithPublishAsyncTimeout(a.cfg.Publisher.AckTimeout))
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		if err := bus.EnsureStreamsRetry(ctx, js, a.cfg.Streams); err != nil {
			return err
		}
	}

	var store *chstore.Store
	if a.cfg.Roles.Writer || a.cfg.Roles.Correlator {
		store, err = chstore.Open(a.cfg.ClickHouse)
		if err != nil {
			return err
		}
		defer store.Close()
		a.chStore = store
		a.rca = newRCA(store, a.log.With("service", "rca"))
		defer a.rca.Close()
	}
	if a.reads, err = a.openAPIReads(ctx); err != nil {
		return err
	}
	defer a.reads.close()

	if a.cfg.PostgresDSN != "" {
		lc := lease.Config{DSN: a.cfg.PostgresDSN, RetryEvery: a.cfg.LeaseInterval, CheckEvery: a.cfg.LeaseInterval}
		if a.lease, err = lease.New(lc, a.log.With("component", "lease"), a.deps.Registry); err != nil {
			return err
		}
	}
	ten, err := a.openTenancy(ctx)
	if err != nil {
		return err
	}
	defer ten.close(context.WithoutCancel(ctx))
	if a.ret, err = a.openRetention(ctx, ten, store); err != nil {
		return err
	}
	defer a.ret.closeStore()
	if err := a.build(nc, js, store, ten); err != nil {
		return err
	}
	closeCorr, err := a.buildCorrelator(ctx, js, store, ten)
	if err != nil {
		a.closeBuilt()
		if a.API != nil {
			_ = a.API.Close()
		}
		return fmt.Errorf("correlator: %w", err)
	}
	defer closeCorr()
	if err := a.listenOps(); err != nil {
		a.closeBuilt()
		if a.API != nil {
			_ = a.API.Close()
		}
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if a.ops != nil {
		serve, stop := a.serveOps(gctx)
		g.Go(serve)
		g.Go(stop)
	}
	if a.Gateway != nil {
		g.Go(func() error { return a.Gateway.Run(gctx) })
	}
	if a.Writer != nil {
		g.Go(func() error { return a.Writer.Run(gctx) })
	}
	if a.API != nil {
		g.Go(func() error { return a.API.Run(gctx) })
	}
	if a.Correlator != nil {
		g.Go(func() error { return a.Correlator.Run(gctx) })
	}
	if ten.listener != nil {
		g.Go(func() error { return ten.run(gctx) })
	}
	if a.ret.worker != nil {
		g.Go(func() error { return a.ret.run(gctx, a.lease) })
	}
	a.announce()
	if a.deps.Started != nil {
		a.deps.Started(a)
	}
	return g.Wait()
}

func (a *App) build(nc *nats.Conn, js jetstream.JetStream, store *chstore.Store, ten *tenancy) error {
	var err error
	if a.cfg.Roles.Gateway {
		a.Gateway, err = gateway.New(a.cfg.Gateway, gateway.Deps{
			Logger:    a.log.With("service", "gateway"),
			Publisher: bus.NewPublisher(nc, js, a.cfg.Publisher),
			Auth:      ten.auth,
			Registry:  a.deps.Registry,

			LimitOverrides: ten.limitOverrides(),
		})
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}
	if a.cfg.Roles.Writer {
		var spans writer.SpanStore = store
		if a.deps.WrapSpanStore != nil {
			spans = a.deps.WrapSpanStore(spans)
		}
		wcfg := a.cfg.Writer
		if a.cfg.Roles.Gateway || a.cfg.Roles.API {
			wcfg.OpsAddr = "" // the process's ops listener serves /metrics (OpsAddr)
		}
		a.Writer, err = writer.New(wcfg, writer.Deps{
			Logger:   a.log.With("service", "writer"),
			JS:       js,
			Spans:    spans,
			Logs:     store,
			Metrics:  store,
			Events:   a.ret.eventStore(store),
			Registry: a.deps.Registry,
			Streams:  a.cfg.Streams,
			Classify: a.ret.classify(),
		})
		if err != nil {
			a.closeBuilt()
			return fmt.Errorf("writer: %w", err)
		}
	}
	if a.cfg.Roles.API {
		a.API, err = api.New(a.cfg.API, api.Deps{
			Logger:   a.log.With("service", "api"),
			Store:    a.reads.store,
			Auth:     ten.auth,
			Admin:    ten.admin(),
			AdminKey: a.cfg.AdminAPIKey,
			Registry: a.deps.Registry,
			RCA:      a.reads.rca,

			IncidentRootCauses: ten.incidentRootCauses(),

			Events:               a.reads.store,
			Correlations:         correlations(a.reads.store),
			BusinessTransactions: ten.businessTransactions(),
			Incidents:            ten.incidents(),
			IncidentRules:        ten.incidentRules(),
			IncidentRuleDefaults: incidentRuleDefaults(a.cfg.Correlator),
			Retention:            a.ret.api(),
		})
		if err != nil {
			a.closeBuilt()
			return fmt.Errorf("api: %w", err)
		}
	}
	return nil
}

// closeBuilt releases listeners of services built before a later one failed.
func (a *App) closeBuilt() {
	if a.Gateway != nil {
		_ = a.Gateway.Close()
	}
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
	if a.cfg.Roles.Writer || a.cfg.Roles.API || a.cfg.Roles.Correlator {
		o.ClickHouse = schema.ClickHouseOptions{
			Addr: a.cfg.ClickHouse.Addr, Database: a.cfg.ClickHouse.Database,
			Username: a.cfg.ClickHouse.Username, Password: a.cfg.ClickHouse.Password,
			Cluster: a.cfg.ClickHouse.Cluster,
		}
	}
	return schema.Migrate(ctx, o)
}
