package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aftertrace/aftertrace/internal/pgstore"
)

func newKeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Create, list and revoke tenants' API keys (in Postgres)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newKeyCreateCmd(), newKeyListCmd(), newKeyRevokeCmd())
	return cmd
}

func newKeyCreateCmd() *cobra.Command {
	var dsn, tenant, description string
	cmd := &cobra.Command{
		Use:   "create --tenant NAME",
		Short: "Create an API key and print it (only this once) with its id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd.Context(), dsn, func(ctx context.Context, s *pgstore.Store) error {
				t, err := s.ResolveTenant(ctx, tenant)
				if err != nil {
					return err
				}
				k, err := s.CreateKey(ctx, t.ID, description)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "key id   %s\ntenant   %s (%s)\napi key  %s\n", k.ID, t.Name, t.ID, k.Key)
				fmt.Fprintf(cmd.ErrOrStderr(), "Store the API key now: it is not shown again. Send it as: Authorization: Bearer <api key>\n")
				return nil
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&tenant, "tenant", "", "tenant name (or id)")
	fs.StringVar(&description, "description", "", "what the key is for (shown by key list)")
	_ = cmd.MarkFlagRequired("tenant")
	bindAdminPostgres(fs, &dsn)
	return cmd
}

func newKeyListCmd() *cobra.Command {
	var dsn, tenant string
	cmd := &cobra.Command{
		Use:   "list --tenant NAME",
		Short: "List a tenant's API keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd.Context(), dsn, func(ctx context.Context, s *pgstore.Store) error {
				t, err := s.ResolveTenant(ctx, tenant)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tPREFIX\tCREATED\tREVOKED\tDESCRIPTION")
				for p := (pgstore.Page{}); ; {
					ks, err := s.ListKeys(ctx, t.ID, p)
					if err != nil {
						return err
					}
					for _, k := range ks {
						revoked := "-"
						if k.RevokedAt != nil {
							revoked = k.RevokedAt.UTC().Format(time.RFC3339)
						}
						fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\n", k.ID, k.Prefix, k.CreatedAt.UTC().Format(time.RFC3339), revoked, k.Description)
					}
					if len(ks) < pgstore.MaxPageSize {
						break
					}
					p.After = ks[len(ks)-1].ID
				}
				return tw.Flush()
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&tenant, "tenant", "", "tenant name (or id)")
	_ = cmd.MarkFlagRequired("tenant")
	bindAdminPostgres(fs, &dsn)
	return cmd
}

func newKeyRevokeCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key (idempotent); running servers refuse it at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd.Context(), dsn, func(ctx context.Context, s *pgstore.Store) error {
				k, err := s.RevokeKey(ctx, strings.ToLower(args[0]))
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "revoked %s (tenant %s) at %s\n", k.ID, k.TenantID, k.RevokedAt.UTC().Format(time.RFC3339))
				return err
			})
		},
	}
	bindAdminPostgres(cmd.Flags(), &dsn)
	return cmd
}
