package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

// devPostgresDSN is the Postgres of the `make run` dev stack
// (services/allinone StackPostgres, localstack's user and database), the
// default of the tenant and key commands.
const devPostgresDSN = "postgres://aftertrace@127.0.0.1:15432/aftertrace?sslmode=disable"

// adminTimeout bounds one tenant or key command.
const adminTimeout = 30 * time.Second

// bindAdminPostgres registers --postgres-dsn (AFTERTRACE_POSTGRES_DSN) on a
// tenant or key command.
func bindAdminPostgres(fs *pflag.FlagSet, dsn *string) {
	fs.StringVar(dsn, "postgres-dsn", devPostgresDSN, "Postgres connection string; the default reaches the dev stack of make run")
}

// withStore opens the store for one command and explains an unreachable
// database.
func withStore(ctx context.Context, dsn string, f func(context.Context, *pgstore.Store) error) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	s, err := pgstore.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	err = f(ctx, s)
	if apperr.KindOf(err) == apperr.KindUnavailable {
		return fmt.Errorf("%w\n(is the dev stack running (`make run`)? otherwise set --postgres-dsn or AFTERTRACE_POSTGRES_DSN)", err)
	}
	return err
}

func newTenantCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Create and list tenants (in Postgres)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newTenantCreateCmd(), newTenantListCmd(), newTenantTimeBoundsCmd())
	return cmd
}

func newTenantCreateCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a tenant and print its id",
		Long: "Create a tenant and print its id. Names are unique: letters, digits, '.', '_' and '-'.\n" +
			"Then give it an API key with: aftertrace key create --tenant NAME",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd.Context(), dsn, func(ctx context.Context, s *pgstore.Store) error {
				t, err := s.CreateTenant(ctx, args[0])
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), t.ID)
				return err
			})
		},
	}
	bindAdminPostgres(cmd.Flags(), &dsn)
	return cmd
}

func newTenantListCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd.Context(), dsn, func(ctx context.Context, s *pgstore.Store) error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tCREATED")
				for p := (pgstore.Page{}); ; {
					ts, err := s.ListTenants(ctx, p)
					if err != nil {
						return err
					}
					for _, t := range ts {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.UTC().Format(time.RFC3339))
					}
					if len(ts) < pgstore.MaxPageSize {
						break
					}
					p.After = ts[len(ts)-1].ID
				}
				return tw.Flush()
			})
		},
	}
	bindAdminPostgres(cmd.Flags(), &dsn)
	return cmd
}

func newTenantTimeBoundsCmd() *cobra.Command {
	var (
		dsn            string
		maxAge, future time.Duration
	)
	cmd := &cobra.Command{
		Use:   "time-bounds TENANT_ID",
		Short: "Set how old (and how far ahead) a tenant's records may be; flags not given reset to the gateway's defaults",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var b pgstore.TimeBounds
			if cmd.Flags().Changed("max-record-age") {
				b.MaxAge = &maxAge
			}
			if cmd.Flags().Changed("max-future") {
				b.MaxFuture = &future
			}
			if maxAge < 0 || future < 0 {
				return apperr.New(apperr.KindInvalid, "--max-record-age and --max-future must not be negative")
			}
			return withStore(cmd.Context(), dsn, func(ctx context.Context, s *pgstore.Store) error {
				if err := s.SetTimeBounds(ctx, args[0], b); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "time bounds of %s set; gateways apply them within --tenant-limits-refresh\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&maxAge, "max-record-age", 0, "reject records older than this (0: the tenant's longest retention)")
	cmd.Flags().DurationVar(&future, "max-future", 0, "reject records further ahead than this (0: no bound)")
	bindAdminPostgres(cmd.Flags(), &dsn)
	return cmd
}
