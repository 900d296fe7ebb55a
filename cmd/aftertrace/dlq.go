package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/bus"
)

// devNATSURL is the embedded NATS of the `make run` dev stack.
const devNATSURL = "nats://127.0.0.1:4222"

func bindDLQ(fs *pflag.FlagSet, url *string) {
	fs.StringVar(url, "nats-url", devNATSURL, "NATS URL; the default reaches the dev stack of make run")
}

// withDeadLetters connects for one command; an unreachable server fails
// fast instead of being retried.
func withDeadLetters(ctx context.Context, url string, f func(context.Context, bus.DeadLetters) error) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	nc, err := nats.Connect(url, nats.Name("aftertrace-dlq"), nats.Timeout(5*time.Second))
	if err != nil {
		return apperr.Wrap(apperr.KindUnavailable, err, "connect to NATS at "+url+" (is the stack running? set --nats-url or AFTERTRACE_NATS_URL)")
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return f(ctx, bus.DeadLetters{JS: js})
}

func newDLQCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, replay and purge dead letters (messages a writer or the correlator could not store)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newDLQListCmd(), newDLQShowCmd(), newDLQReplayCmd(), newDLQPurgeCmd())
	return cmd
}

func newDLQListCmd() *cobra.Command {
	var (
		url, queue string
		after      uint64
		limit      int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 10000 {
				return apperr.New(apperr.KindInvalid, "--limit must be in 1..10000, got %d", limit)
			}
			return withDeadLetters(cmd.Context(), url, func(ctx context.Context, d bus.DeadLetters) error {
				dls, err := d.List(ctx, queue, after, limit)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tQUEUE\tTENANT\tRECORDS\tREASON\tTIME\tERROR")
				for _, dl := range dls {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", dl.Seq, dl.Queue, dl.Tenant, dl.Records, dl.Reason,
						dl.Time.UTC().Format(time.RFC3339), oneLine(dl.Error, 100))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if len(dls) == limit {
					fmt.Fprintf(cmd.ErrOrStderr(), "more may follow: --after %d\n", dls[len(dls)-1].Seq)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&queue, "queue", "all", "traces, logs, metrics, events, correlate or all")
	cmd.Flags().Uint64Var(&after, "after", 0, "list dead letters after this sequence number")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	bindDLQ(cmd.Flags(), &url)
	return cmd
}

func newDLQShowCmd() *cobra.Command {
	var url, payload string
	cmd := &cobra.Command{
		Use:   "show SEQ",
		Short: "Show one dead letter: its headers, error and (with --payload FILE) its payload",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := parseSeq(args[0])
			if err != nil {
				return err
			}
			return withDeadLetters(cmd.Context(), url, func(ctx context.Context, d bus.DeadLetters) error {
				dl, err := d.Get(ctx, seq)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "seq      %d\nqueue    %s\ntenant   %s\nrecords  %d\nreason   %s\ntime     %s\norigin   %s\nbytes    %d\nerror    %s\n",
					dl.Seq, dl.Queue, dl.Tenant, dl.Records, dl.Reason, dl.Time.UTC().Format(time.RFC3339Nano), dl.Origin, len(dl.Data), dl.Error)
				keys := make([]string, 0, len(dl.Header))
				for k := range dl.Header {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for _, k := range keys {
					fmt.Fprintf(w, "header   %s: %s\n", k, strings.Join(dl.Header[k], ", "))
				}
				if payload == "" {
					return nil
				}
				return writePayload(payload, w, dl.Data)
			})
		},
	}
	cmd.Flags().StringVar(&payload, "payload", "", "write the payload (as stored on the bus) to this file; - for stdout")
	bindDLQ(cmd.Flags(), &url)
	return cmd
}

func writePayload(path string, stdout io.Writer, data []byte) error {
	if path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

func newDLQReplayCmd() *cobra.Command {
	var (
		url, queue string
		all        bool
	)
	cmd := &cobra.Command{
		Use:   "replay (SEQ... | --all [--queue Q])",
		Short: "Send dead letters back to where they came from (after fixing the cause); each leaves the dead letters once stored again",
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDeadLetters(cmd.Context(), url, func(ctx context.Context, d bus.DeadLetters) error {
				seqs, err := selectSeqs(ctx, d, args, all, queue)
				if err != nil {
					return err
				}
				for i, seq := range seqs {
					if err := d.Replay(ctx, seq); err != nil {
						return fmt.Errorf("replayed %d of %d: %w", i, len(seqs), err)
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "replayed %d dead letter(s)\n", len(seqs))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every dead letter of --queue")
	cmd.Flags().StringVar(&queue, "queue", "all", "with --all: traces, logs, metrics, events, correlate or all")
	bindDLQ(cmd.Flags(), &url)
	return cmd
}

func newDLQPurgeCmd() *cobra.Command {
	var (
		url, queue string
		all        bool
	)
	cmd := &cobra.Command{
		Use:   "purge (SEQ... | --all [--queue Q])",
		Short: "Delete dead letters for good",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && all {
				return apperr.New(apperr.KindInvalid, "give sequence numbers or --all, not both")
			}
			return withDeadLetters(cmd.Context(), url, func(ctx context.Context, d bus.DeadLetters) error {
				if all {
					n, err := d.Purge(ctx, queue)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "purged %d dead letter(s)\n", n)
					return nil
				}
				if len(args) == 0 {
					return apperr.New(apperr.KindInvalid, "give sequence numbers or --all")
				}
				for i, a := range args {
					seq, err := parseSeq(a)
					if err != nil {
						return err
					}
					if err := d.Delete(ctx, seq); err != nil {
						return fmt.Errorf("purged %d of %d: %w", i, len(args), err)
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "purged %d dead letter(s)\n", len(args))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every dead letter of --queue")
	cmd.Flags().StringVar(&queue, "queue", "all", "with --all: traces, logs, metrics, events, correlate or all")
	bindDLQ(cmd.Flags(), &url)
	return cmd
}

// selectSeqs is the sequence numbers given, or with all every dead letter
// of queue (read before the first replay, so replays that fail again and
// come back as new dead letters are not replayed in a loop).
func selectSeqs(ctx context.Context, d bus.DeadLetters, args []string, all bool, queue string) ([]uint64, error) {
	switch {
	case all && len(args) > 0:
		return nil, apperr.New(apperr.KindInvalid, "give sequence numbers or --all, not both")
	case !all && len(args) == 0:
		return nil, apperr.New(apperr.KindInvalid, "give sequence numbers or --all")
	case !all:
		seqs := make([]uint64, 0, len(args))
		for _, a := range args {
			seq, err := parseSeq(a)
			if err != nil {
				return nil, err
			}
			seqs = append(seqs, seq)
		}
		return seqs, nil
	}
	var seqs []uint64
	for after := uint64(0); ; {
		dls, err := d.List(ctx, queue, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, dl := range dls {
			seqs = append(seqs, dl.Seq)
		}
		if len(dls) < 1000 {
			return seqs, nil
		}
		after = dls[len(dls)-1].Seq
	}
}

func parseSeq(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, apperr.New(apperr.KindInvalid, "sequence number %q: want a positive integer (see `aftertrace dlq list`)", s)
	}
	return n, nil
}

// oneLine shortens s to n bytes on one line for a table.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
