package allinone

import (
	"log/slog"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/rca"
	"github.com/aftertrace/aftertrace/services/api"
)

// newRCA builds the root-cause engine on the ClickHouse store; the caller
// closes it (its background cache writes) before the store.
func newRCA(store *chstore.Store, log *slog.Logger) *rca.Engine {
	cfg := rca.DefaultConfig()
	cfg.Logger = log
	return rca.New(rca.NewStoreSource(store), cfg)
}

// incidentRootCauses serves GET /api/v1/incidents/{id}/root-causes from
// Postgres (nil without it: the route answers 503).
func (t *tenancy) incidentRootCauses() api.IncidentRootCauseStore {
	if t.store == nil {
		return nil
	}
	return t.store
}
