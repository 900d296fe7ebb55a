package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/aftertrace/aftertrace/loadtest/eval"
)

func newEvalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Score the root-cause API against labelled datasets",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newEvalNezhaCmd())
	return cmd
}

func newEvalNezhaCmd() *cobra.Command {
	cfg := eval.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "nezha --dir DIR --api URL [--key K]",
		Short: "Ask POST /api/v1/rca for every labelled fault of a Nezha-layout dataset; last line AS@1/3/5",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Key == "" {
				cfg.Key = os.Getenv("AFTERTRACE_API_KEY")
			}
			cfg.Out = cmd.OutOrStdout()
			_, err := eval.Run(cmd.Context(), cfg)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", "", "dataset dir in the Nezha layout (rca_data/*fault_list.json)")
	f.StringVar(&cfg.API, "api", "http://127.0.0.1:8080", "base URL of the query API")
	f.StringVar(&cfg.Key, "key", "", "API key (default $AFTERTRACE_API_KEY)")
	f.DurationVar(&cfg.Before, "before", cfg.Before, "window start = inject_time − before")
	f.DurationVar(&cfg.After, "after", cfg.After, "window end = inject_time + after")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}
