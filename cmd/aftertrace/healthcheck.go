package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheckCmd asks a running process whether it is ready: the
// container healthcheck of images without a shell or curl (distroless).
func newHealthcheckCmd(stdout io.Writer) *cobra.Command {
	var addr, path string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck [--addr HOST:PORT] [--path /readyz]",
		Short: "Exit 0 if the process whose ops listener is at --addr is ready (/readyz answers 200), 1 otherwise",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			url := "http://" + addr + "/" + strings.TrimPrefix(path, "/")
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("--addr, --path: %w", err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck %s: %w", url, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck %s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
			}
			fmt.Fprintf(stdout, "ready (%s)\n", url)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&addr, "addr", "127.0.0.1:9464", "the process's ops listener (--ops-addr, --writer-ops-addr, --correlator-ops-addr)")
	fs.StringVar(&path, "path", "/readyz", "/readyz (serving) or /healthz (alive)")
	fs.DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	return cmd
}
