package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/services/allinone"
	retentionsvc "github.com/aftertrace/aftertrace/services/retention"
)

// bindRetention registers the retention worker flags.
func bindRetention(fs *pflag.FlagSet, c *allinone.Config) {
	r := &c.Retention
	for _, sig := range retention.Signals {
		d := r.DefaultDays[sig]
		fs.Func("retention-default-days-"+string(sig),
			fmt.Sprintf("days %s without a matching retention policy are kept (0: forever; default %d)", sig, d),
			func(v string) error {
				var n int
				if _, err := fmt.Sscan(v, &n); err != nil {
					return err
				}
				r.DefaultDays[sig] = n
				return nil
			})
	}
	fs.Uint64Var(&r.MaxBytes, "retention-max-bytes", r.MaxBytes, "disk guard: above this many bytes of telemetry, drop the oldest non-held partitions first (0: off)")
	fs.DurationVar(&r.EnforceInterval, "retention-enforce-interval", r.EnforceInterval, "how often expired partitions are dropped (0: never, only by `aftertrace retention enforce`)")
	fs.StringVar(&r.SpoolDir, "retention-bundle-spool-dir", r.SpoolDir, "where evidence bundles are built, one temp dir each, removed after (default: the system's temp dir)")
	fs.Int64Var(&r.MaxBundleBytes, "retention-bundle-max-bytes", r.MaxBundleBytes, "cap on one evidence bundle's files (uncompressed); a bigger one fails with bundle_too_large")
	fs.Int64Var(&r.MaxTenantBundleBytes, "retention-tenant-bundle-max-bytes", r.MaxTenantBundleBytes, "cap on one tenant's stored evidence archives; a bundle over it fails with tenant_quota_exceeded (0: no cap)")
}

func newRetentionCmd(logger func() (*slog.Logger, error), stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Retention: drop expired (date, class) partitions",
		Args:  cobra.NoArgs,
	}
	cfg := allinone.DefaultConfig()
	var asOf string
	var dryRun bool
	enforce := &cobra.Command{
		Use:   "enforce [--as-of RFC3339] [--dry-run]",
		Short: "Sync forensic holds, then drop every partition older than its class keeps and delete rows past a shortened policy (held data never)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			at := time.Now()
			if asOf != "" {
				if at, err = time.Parse(time.RFC3339Nano, asOf); err != nil {
					return fmt.Errorf("--as-of: must be RFC 3339: %w", err)
				}
			}
			if cfg.PostgresDSN == "" {
				return errors.New("--postgres-dsn: required (holds and policies live in Postgres)")
			}
			err = enforceRetention(cmd.Context(), log, stdout, cfg, at, dryRun)
			if apperr.KindOf(err) == apperr.KindUnavailable {
				return fmt.Errorf("%w\n(is the stack running (`make run`)? otherwise set --clickhouse-addr and --postgres-dsn, or AFTERTRACE_CLICKHOUSE_ADDR and AFTERTRACE_POSTGRES_DSN)", err)
			}
			return err
		},
	}
	fs := enforce.Flags()
	bindClickHouse(fs, &cfg)
	bindRetention(fs, &cfg)
	bindAdminPostgres(fs, &cfg.PostgresDSN)
	fs.StringVar(&asOf, "as-of", "", "enforce as of this time (RFC 3339; default now)")
	fs.BoolVar(&dryRun, "dry-run", false, "print the partitions that would be dropped; change nothing")
	cmd.AddCommand(enforce)
	return cmd
}

func enforceRetention(ctx context.Context, log *slog.Logger, out io.Writer, cfg allinone.Config, asOf time.Time, dryRun bool) error {
	if err := errors.Join(cfg.ClickHouse.Validate(), cfg.Retention.Validate()); err != nil {
		return err
	}
	ch, err := chstore.Open(cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer ch.Close()
	pg, err := pgstore.Open(ctx, cfg.PostgresDSN)
	if err != nil {
		return err
	}
	defer pg.Close()
	svc, err := retentionsvc.New(cfg.Retention, retentionsvc.Deps{Logger: log, Data: ch, State: pg, Incidents: pg})
	if err != nil {
		return err
	}
	rep, err := svc.Enforce(ctx, asOf, dryRun)
	printReport(out, rep)
	return err
}

func printReport(out io.Writer, rep retentionsvc.Report) {
	verb, del := "dropped", "deleted"
	if rep.DryRun {
		verb, del = "would drop", "would delete"
	}
	fmt.Fprintf(out, "retention as of %s: %s %d partitions\n", rep.AsOf.UTC().Format(time.RFC3339), verb, len(rep.Drops))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(rep.Drops) > 0 {
		fmt.Fprintln(tw, "TABLE\tDATE\tCLASS\tROWS\tBYTES\tREASON")
		for _, d := range rep.Drops {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", d.Table, d.Date.Format(time.DateOnly), d.Class, d.Rows, d.Bytes, d.Reason)
		}
		_ = tw.Flush()
	}
	for _, k := range rep.Kept {
		fmt.Fprintf(out, "kept %s %s %s (%s): rows of %s stay\n", k.Table, k.Date.Format(time.DateOnly), k.Class, k.Reason, strings.Join(k.Tenants, ", "))
	}
	for _, d := range rep.Deletes {
		where := d.Table
		if !d.Date.IsZero() {
			where += " " + d.Date.Format(time.DateOnly) + " " + d.Class
		}
		fmt.Fprintf(out, "%s %d rows of %s (%s)\n", del, d.Rows, where, d.Reason)
	}
	for _, table := range slices.Sorted(maps.Keys(rep.Rescued)) {
		fmt.Fprintf(out, "copied %d rows of %s before removing others (late rows into holds, rows a longer policy keeps)\n", rep.Rescued[table], table)
	}
	for _, f := range rep.HoldFailures {
		fmt.Fprintf(out, "hold %s of tenant %s could not copy (%s): %s\n", f.HoldID, f.TenantID, f.Reason, f.Err)
	}
}

func newEvidenceCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evidence",
		Short: "Evidence bundles",
		Args:  cobra.NoArgs,
	}
	var wantSum string
	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check an evidence bundle offline: every file against the SHA-256 and size in its manifest",
		Long: "Check an evidence bundle offline: every file against the SHA-256 and size in its manifest,\n" +
			"and with --sha256 the whole archive against the hash the server recorded (archiveSha256).",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if wantSum != "" {
				sum := sha256.Sum256(b)
				if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, wantSum) {
					return fmt.Errorf("%s: verification FAILED: archive SHA-256 %s, expected %s", args[0], got, wantSum)
				}
			}
			m, err := retention.Verify(bytes.NewReader(b))
			if err != nil {
				return fmt.Errorf("%s: verification FAILED:\n%w", args[0], err)
			}
			fmt.Fprintf(stdout, "%s: OK — bundle %s of tenant %s, %s %s from %s to %s, created by %s at %s\n",
				args[0], m.BundleID, m.TenantID, m.Request.Scope, m.Request.ID,
				m.Request.Start.Format(time.RFC3339), m.Request.End.Format(time.RFC3339), m.CreatedBy, m.CreatedAt.Format(time.RFC3339))
			for _, fl := range m.Files {
				fmt.Fprintf(stdout, "  %-16s %8d rows  %10d bytes  sha256 %s\n", fl.Name, fl.Rows, fl.Bytes, fl.SHA256)
			}
			return nil
		},
	}
	verify.Flags().StringVar(&wantSum, "sha256", "", "also check the whole archive against this SHA-256 (the bundle's archiveSha256)")
	cmd.AddCommand(verify)
	return cmd
}
