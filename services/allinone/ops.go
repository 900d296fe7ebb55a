package allinone

import (
	"context"
	"fmt"
	"net"

	"github.com/grafana/dskit/services"

	"github.com/aftertrace/aftertrace/internal/ops"
)

// opsModule serves the process's ops listener (Config.OpsAddr) for the
// services with public listeners, which serve only /healthz and /readyz:
// /metrics and /debug/pprof/ are here, never on a tenant-facing port.
func (a *App) opsModule() (services.Service, error) {
	start := func(context.Context) error {
		if a.cfg.OpsAddr == "" {
			return nil
		}
		ln, err := net.Listen("tcp", a.cfg.OpsAddr)
		if err != nil {
			return fmt.Errorf("ops: listening on %s: %w", a.cfg.OpsAddr, err)
		}
		a.ops = ops.NewServer(ln, a.deps.Registry, readyAll{a})
		return nil
	}
	run := func(ctx context.Context) error {
		if a.ops == nil {
			<-ctx.Done()
			return nil
		}
		errc := make(chan error, 1)
		go func() { errc <- a.ops.Serve() }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		a.ops.Shutdown(context.Background())
		return <-errc
	}
	stop := func(error) error {
		if a.ops != nil {
			a.ops.Shutdown(context.Background()) // closes the listener of a Serve that never ran
		}
		return nil
	}
	return services.NewBasicService(start, run, stop), nil
}

// OpsAddr is the bound address of the process's ops listener, or "".
func (a *App) OpsAddr() string {
	if a.ops == nil {
		return ""
	}
	return a.ops.Addr()
}

// addReady counts a started service's readiness in the process's.
func (a *App) addReady(ready func() bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.readies = append(a.readies, ready)
}

// readyAll is the process's readiness: every service with a readiness
// flag that this process runs is started and ready.
type readyAll struct{ a *App }

func (r readyAll) Ready() bool {
	a := r.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.readies) < a.wantReady {
		return false
	}
	for _, ok := range a.readies {
		if !ok() {
			return false
		}
	}
	return true
}
