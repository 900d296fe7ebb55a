package allinone

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
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
		cfg.OpsAddr = "" // the process's ops listener (or the writer's) serves /metrics
	}
	log := a.log.With("service", "correlator")
	deps := correlator.Deps{
		Logger:   log,
		JS:       js,
		Traces:   store,
		Registry: a.deps.Registry,
		Streams:  a.cfg.Streams,
		RCA:      a.rca,
		Tenants:  store,
	}
	if a.lease != nil {
		deps.Lead = a.lease.Lead
	}
	release := closePG
	if pg != nil {
		deps.Definitions, deps.Incidents, deps.Rules = pg, pg, pg
		cls, stop := a.linkClassifier(ctx, pg, log)
		deps.Classifier = cls
		release = func() { stop(); closePG() }
	}
	var err error
	if a.Correlator, err = correlator.New(cfg, deps); err != nil {
		release()
		return noop, err
	}
	return release, nil
}

// linkClassifier is the retention classifier of event links: the
// writer's when this process runs one, else its own, refreshed until the
// returned stop is called.
func (a *App) linkClassifier(ctx context.Context, pg *pgstore.Store, log *slog.Logger) (correlator.Classifier, func()) {
	if a.ret != nil && a.ret.classifier != nil {
		return a.ret.classifier, func() {}
	}
	cls := retention.NewClassifier(pg, log)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cls.Run(rctx, policyRefresh)
	}()
	return cls, func() { cancel(); <-done }
}

// incidentRules is the store behind /api/v1/incident-rules, or nil
// without Postgres.
func (t *tenancy) incidentRules() api.IncidentRuleStore {
	if t.store == nil {
		return nil
	}
	return t.store
}

// incidentRuleDefaults is what /api/v1/incident-rules shows for a tenant
// without rules of its own: the correlator's configured rule.
func incidentRuleDefaults(c correlator.Config) pgstore.IncidentRules {
	r := c.Incidents
	return pgstore.IncidentRules{MinSeverity: r.MinSeverity, EventTypes: r.Types, AnomalyMinScore: r.AnomalyMinScore}
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
