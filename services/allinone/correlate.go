package allinone

import (
	"context"
	"fmt"

	"github.com/grafana/dskit/services"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/services/api"
	"github.com/aftertrace/aftertrace/services/correlator"
)

// correlatorModule builds the correlator on the process's Postgres pool;
// without Postgres it links events but keeps neither business transaction
// definitions nor incidents.
func (a *App) correlatorModule() (services.Service, error) {
	start := func(context.Context) error {
		cfg := a.cfg.Correlator
		if a.cfg.runs(modOps) || a.cfg.runs(TargetWriter) {
			cfg.OpsAddr = "" // the process's ops listener (or the writer's) serves /metrics
		}
		deps := correlator.Deps{
			Logger:   a.log.With("service", "correlator"),
			JS:       a.js,
			Traces:   a.chStore,
			Registry: a.deps.Registry,
			Streams:  a.cfg.Streams,
			RCA:      a.rca,
			Tenants:  a.chStore,
		}
		if a.lease != nil {
			deps.Lead = a.lease.Lead
		}
		if a.pg != nil {
			deps.Definitions, deps.Incidents, deps.Rules = a.pg, a.pg, a.pg
			deps.Classifier = a.classifier
		}
		c, err := correlator.New(cfg, deps)
		if err != nil {
			return fmt.Errorf("correlator: %w", err)
		}
		a.Correlator = c
		a.addReady(c.Ready)
		return nil
	}
	return services.NewBasicService(start, func(ctx context.Context) error { return a.Correlator.Run(ctx) }, nil), nil
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
