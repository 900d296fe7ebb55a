package allinone

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/services/api"
	"github.com/aftertrace/aftertrace/services/correlator"
)

// buildCorrelator builds the correlator when its role runs. It uses the
// tenancy store's Postgres pool (or opens one when this process serves no
// tenant-facing role); without Postgres it links events but keeps neither
// business transaction definitions nor incidents. The returned func
// releases what it opened.
func (a *App) buildCorrelator(ctx context.Context, js jetstream.JetStream, store *chstore.Store, ten *tenancy) (func(), error) {
	noop := func() {}
	if !a.cfg.Roles.Correlator {
		return noop, nil
	}
	pg, closePG := ten.store, noop
	if pg == nil && a.cfg.PostgresDSN != "" {
		var err error
		if pg, err = pgstore.Open(ctx, a.cfg.PostgresDSN); err != nil {
			return noop, err
		}
		closePG = pg.Close
	}
	cfg := a.cfg.Correlator
	if a.cfg.Roles.Gateway || a.cfg.Roles.Writer || a.cfg.Roles.API {
		cfg.OpsAddr = "" // the other services already serve /metrics for this process
	}
	deps := correlator.Deps{
		Logger:   a.log.With("service", "correlator"),
		JS:       js,
		Traces:   store,
		Registry: a.deps.Registry,
		Streams:  a.cfg.Streams,
	}
	if pg != nil {
		deps.Definitions, deps.Incidents = pg, pg
	}
	var err error
	if a.Correlator, err = correlator.New(cfg, deps); err != nil {
		closePG()
		return noop, err
	}
	return closePG, nil
}

// correlations is the API's view of event links, or nil without ClickHouse.
func correlations(store *chstore.Store) api.Correlations {
	if store == nil {
		return nil
	}
	return store
}

// businessTransactions is the store behind the business transaction
// routes, or nil without Postgres.
func (t *tenancy) businessTransactions() api.BusinessTransactions {
	if t.store == nil {
		return nil
	}
	return t.store
}

// incidents is the store behind the incident routes, or nil without Postgres.
func (t *tenancy) incidents() api.Incidents {
	if t.store == nil {
		return nil
	}
	return t.store
}
