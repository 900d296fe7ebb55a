package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aftertrace/aftertrace/internal/schema"
	"github.com/aftertrace/aftertrace/services/allinone"
)

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:           "aftertrace",
		Short:         "Telemetry correlation backend for container and Kubernetes fleets",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd.Flags())
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	logger := func() (*slog.Logger, error) {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
			return nil, fmt.Errorf("log level %q: %w", logLevel, err)
		}
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})), nil
	}

	root.AddCommand(
		newServeCmd("run", "Run the modules of --target in one process (default all; dev / all-in-one)", allinone.TargetAll, true, logger, stdout),
		newServeCmd("gateway", "Run the OTLP ingest gateway (run --target gateway)", allinone.TargetGateway, false, logger, stdout),
		newServeCmd("writer", "Run the JetStream → ClickHouse writer and the retention worker (run --target writer)", allinone.TargetWriter, false, logger, stdout),
		newServeCmd("api", "Run the HTTP query API (run --target api)", allinone.TargetAPI, false, logger, stdout),
		newServeCmd("correlator", "Run the event correlator: event → trace links, business impact, incidents (run --target correlator)", allinone.TargetCorrelator, false, logger, stdout),
		newMigrateCmd(logger),
		newTenantCmd(),
		newKeyCmd(),
		newRetentionCmd(logger, stdout),
		newEvidenceCmd(stdout),
		newEvalCmd(),
		newDLQCmd(),
		newHealthcheckCmd(stdout),
	)
	return root
}

func newServeCmd(name, short, target string, allInOne bool, logger func() (*slog.Logger, error), stdout io.Writer) *cobra.Command {
	cfg := allinone.DefaultConfig()
	cfg.Targets = []string{target}
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			app, err := allinone.New(cfg, allinone.Deps{
				Logger: log,
				Started: func(a *allinone.App) {
					if allInOne {
						printBanner(stdout, a)
					}
				},
			})
			if err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			return app.Run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	bindCommon(fs, &cfg)
	bindClickHouse(fs, &cfg)
	if cfg.Runs("nats") {
		bindNATS(fs, &cfg)
	}
	if cfg.Runs(allinone.TargetCorrelator) {
		bindCorrelator(fs, &cfg)
	}
	if cfg.Runs(allinone.TargetGateway) {
		bindGateway(fs, &cfg)
	}
	if cfg.Runs(allinone.TargetWriter) {
		bindWriter(fs, &cfg)
	}
	if cfg.Runs(allinone.TargetRetention) {
		bindRetention(fs, &cfg)
	}
	if cfg.Runs(allinone.TargetAPI) {
		bindAPI(fs, &cfg)
	}
	bindOps(fs, &cfg)
	if allInOne {
		fs.StringSliceVar(&cfg.Targets, "target", cfg.Targets, "modules to run, comma-separated: "+strings.Join(allinone.TargetNames, ", ")+" (what each needs starts with it: the writer brings the retention worker; background loops run once per deployment by lease)")
		fs.StringVar(&cfg.StackDir, "stack-dir", cfg.StackDir, "start private ClickHouse and Postgres with their data under this folder (dev stack)")
		fs.IntVar(&cfg.StackClickHouse, "stack-clickhouse-port", cfg.StackClickHouse, "native port of the dev ClickHouse")
		fs.IntVar(&cfg.StackClickHouseHT, "stack-clickhouse-http-port", cfg.StackClickHouseHT, "HTTP port of the dev ClickHouse")
		fs.IntVar(&cfg.StackPostgres, "stack-postgres-port", cfg.StackPostgres, "port of the dev Postgres")
		fs.StringVar(&cfg.StackTopology, "stack-topology", cfg.StackTopology, "dev stack topology: single, or cluster (ClickHouse 2 shards × 2 replicas with ZooKeeper on ports stack-clickhouse-port..+3, three embedded NATS servers with R3 streams)")
	}
	return cmd
}

func printBanner(w io.Writer, a *allinone.App) {
	c := a.Config()
	scheme := "http"
	if c.TLS.Enabled() {
		scheme = "https"
	}
	fmt.Fprintf(w, "\nAftertrace is running.\n")
	if a.Gateway != nil {
		fmt.Fprintf(w, "  OTLP gRPC   %s\n  OTLP HTTP   %s://%s\n", a.Gateway.GRPCAddr(), scheme, a.Gateway.HTTPAddr())
	}
	if a.API != nil {
		fmt.Fprintf(w, "  Query API   %s://%s\n", scheme, a.API.Addr())
	}
	if a.OpsAddr() != "" {
		fmt.Fprintf(w, "  Ops         http://%s/metrics, /debug/pprof/\n", a.OpsAddr())
	}
	if c.ClickHouse.Cluster != "" {
		fmt.Fprintf(w, "  ClickHouse  cluster %q via %s (Replicated + Distributed tables)\n", c.ClickHouse.Cluster, c.ClickHouse.Addr)
	}
	if c.EmbeddedNATSNodes > 1 && c.NATSURL == "" {
		fmt.Fprintf(w, "  NATS        %d embedded JetStream servers, streams at R%d\n", c.EmbeddedNATSNodes, c.Streams.Replicas)
	}
	fmt.Fprintf(w, "  Dev tenant  %s\n  API key     %s\n", c.DevTenantID, c.DevAPIKey)
	fmt.Fprintf(w, "  (send it as: Authorization: Bearer %s)\n", c.DevAPIKey)
	if c.AdminAPIKey != "" && a.API != nil {
		fmt.Fprintf(w, "  Admin key   %s\n  (for /admin/v1; or manage tenants with: aftertrace tenant|key --help)\n", c.AdminAPIKey)
	}
	fmt.Fprintln(w)
}

func newMigrateCmd(logger func() (*slog.Logger, error)) *cobra.Command {
	cfg := allinone.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply ClickHouse and Postgres migrations (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			return migrate(cmd.Context(), log, cfg)
		},
	}
	fs := cmd.Flags()
	bindClickHouse(fs, &cfg)
	fs.StringVar(&cfg.PostgresDSN, "postgres-dsn", cfg.PostgresDSN, "Postgres connection string (empty: skip Postgres)")
	return cmd
}

func migrate(ctx context.Context, log *slog.Logger, cfg allinone.Config) error {
	if err := cfg.ClickHouse.Validate(); err != nil {
		return err
	}
	if err := schema.Migrate(ctx, schema.Options{
		ClickHouse: schema.ClickHouseOptions{
			Addr: cfg.ClickHouse.Addr, Database: cfg.ClickHouse.Database,
			Username: cfg.ClickHouse.Username, Password: cfg.ClickHouse.Password,
			Cluster: cfg.ClickHouse.Cluster,
		},
		PostgresDSN: cfg.PostgresDSN,
	}); err != nil {
		return err
	}
	log.Info("migrated", "clickhouse", cfg.ClickHouse.Addr, "database", cfg.ClickHouse.Database, "postgres", cfg.PostgresDSN != "")
	return nil
}
