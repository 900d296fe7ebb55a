package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/aftertrace/aftertrace/internal/rcaeval"
)

func newEvalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Score root-cause analysis against labelled incidents (a Nezha-layout dataset or your own post-mortems)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newEvalNezhaCmd(), newEvalCasesCmd())
	return cmd
}

// evalAPIFlags are the flags every eval subcommand shares.
func evalAPIFlags(cmd *cobra.Command, api *rcaeval.API) {
	f := cmd.Flags()
	f.StringVar(&api.Base, "api", "http://127.0.0.1:8080", "base URL of the query API")
	f.StringVar(&api.Key, "key", "", "API key of the tenant holding the data (default $AFTERTRACE_API_KEY)")
}

func keyFromEnv(api *rcaeval.API) {
	if api.Key == "" {
		api.Key = os.Getenv("AFTERTRACE_API_KEY")
	}
}

func newEvalNezhaCmd() *cobra.Command {
	var api rcaeval.API
	var dir string
	before, after := time.Duration(0), 4*time.Minute
	cmd := &cobra.Command{
		Use:   "nezha --dir DIR --api URL [--key K]",
		Short: "Ask POST /api/v1/rca for every labelled fault of a Nezha-layout dataset; last line AS@1/3/5",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keyFromEnv(&api)
			faults, err := rcaeval.ReadNezhaLabels(dir)
			if err != nil {
				return err
			}
			_, err = rcaeval.Run(cmd.Context(), api, rcaeval.NezhaCases(faults, before, after), cmd.OutOrStdout())
			return err
		},
	}
	evalAPIFlags(cmd, &api)
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "dataset dir in the Nezha layout (rca_data/*fault_list.json)")
	f.DurationVar(&before, "before", before, "window start = inject_time − before")
	f.DurationVar(&after, "after", after, "window end = inject_time + after")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func newEvalCasesCmd() *cobra.Command {
	var api rcaeval.API
	var file string
	cmd := &cobra.Command{
		Use:   "cases --file CASES.json --api URL [--key K]",
		Short: "Score RCA on your own labelled incidents in a tenant's stored data; last line AS@1/3/5",
		Long: `Score root-cause analysis on your own post-mortems: CASES.json is a JSON array of
{"start": RFC 3339, "end": RFC 3339, "service": "root-cause service", "type": "optional fault type", "id": "optional label"}.
For every case the query API is asked for the root causes of [start, end) in the tenant of --key; the
output is one row per case, a per-type AS@k table and, as the last line, AS@1=.. AS@3=.. AS@5=.. n=N.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keyFromEnv(&api)
			fh, err := os.Open(file)
			if err != nil {
				return err
			}
			defer fh.Close()
			cases, err := rcaeval.ReadCases(fh)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			_, err = rcaeval.Run(cmd.Context(), api, cases, cmd.OutOrStdout())
			return err
		},
	}
	evalAPIFlags(cmd, &api)
	cmd.Flags().StringVar(&file, "file", "", "JSON file of labelled cases")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
