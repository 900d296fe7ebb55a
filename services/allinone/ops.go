package allinone

import (
	"context"
	"fmt"
	"net"

	"github.com/aftertrace/aftertrace/internal/ops"
)

// listenOps binds the process's ops listener (Config.OpsAddr) when it runs
// a service with public listeners, which serve only /healthz and /readyz:
// /metrics and /debug/pprof/ are here, never on a tenant-facing port.
func (a *App) listenOps() error {
	if a.cfg.OpsAddr == "" || (!a.cfg.Roles.Gateway && !a.cfg.Roles.API) {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.OpsAddr)
	if err != nil {
		return fmt.Errorf("ops: listening on %s: %w", a.cfg.OpsAddr, err)
	}
	a.ops = ops.NewServer(ln, a.deps.Registry, readyAll{a})
	return nil
}

// OpsAddr is the bound address of the process's ops listener, or "".
func (a *App) OpsAddr() string {
	if a.ops == nil {
		return ""
	}
	return a.ops.Addr()
}

// serveOps serves the ops listener until ctx ends.
func (a *App) serveOps(ctx context.Context) (serve, stop func() error) {
	return a.ops.Serve, func() error {
		<-ctx.Done()
		a.ops.Shutdown(context.WithoutCancel(ctx))
		return nil
	}
}

// readyAll is the process's readiness: every service with a readiness
// flag is ready.
type readyAll struct{ a *App }

func (r readyAll) Ready() bool {
	a := r.a
	return (a.Gateway == nil || a.Gateway.Ready()) &&
		(a.API == nil || a.API.Ready()) &&
		(a.Correlator == nil || a.Correlator.Ready())
}
