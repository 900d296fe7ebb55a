package allinone

import (
	"context"
	"fmt"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/lease"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/services/api"
	retentionsvc "github.com/aftertrace/aftertrace/services/retention"
	"github.com/aftertrace/aftertrace/services/writer"
)

// policyRefresh is how often the writer's classifier re-reads retention
// policies (a change applies to rows written after it is seen).
const policyRefresh = 10 * time.Second

// retentionParts are the Postgres-backed retention pieces of a process:
// the writer's classifier, the API's store and the retention worker (with
// the writer role). Without Postgres there are none: rows keep the
// "default" class, the API answers 503 and nothing is dropped.
type retentionParts struct {
	store      *pgstore.Store
	closeStore func()
	classifier *retention.Classifier
	worker     *retentionsvc.Service
}

// openRetention builds them on the tenancy store's pool, or on its own
// when this process serves no tenant-facing role.
func (a *App) openRetention(ctx context.Context, ten *tenancy, ch *chstore.Store) (*retentionParts, error) {
	rp := &retentionParts{closeStore: func() {}}
	if a.cfg.PostgresDSN == "" || (!a.cfg.Roles.Writer && !a.cfg.Roles.API) {
		return rp, nil
	}
	rp.store = ten.store
	if rp.store == nil {
		pg, err := pgstore.Open(ctx, a.cfg.PostgresDSN)
		if err != nil {
			return nil, fmt.Errorf("retention: %w", err)
		}
		rp.store, rp.closeStore = pg, pg.Close
	}
	if !a.cfg.Roles.Writer {
		return rp, nil
	}
	log := a.log.With("service", "retention")
	rp.classifier = retention.NewClassifier(rp.store, log)
	if err := rp.classifier.Refresh(ctx); err != nil {
		log.Warn("retention policies not loaded yet; rows get the default class until they are", "err", err)
	}
	w, err := retentionsvc.New(a.cfg.Retention, retentionsvc.Deps{
		Logger:    log,
		Data:      ch,
		State:     rp.store,
		Incidents: rp.store,
		Registry:  a.deps.Registry,
	})
	if err != nil {
		rp.closeStore()
		return nil, fmt.Errorf("retention: %w", err)
	}
	rp.worker = w
	return rp, nil
}

// classify is the writer's classifier, or nil.
func (rp *retentionParts) classify() writer.Classifier {
	if rp == nil || rp.classifier == nil {
		return nil
	}
	return rp.classifier
}

// api is the API's retention store, or nil (503).
func (rp *retentionParts) api() api.Retention {
	if rp == nil || rp.store == nil {
		return nil
	}
	return rp.store
}

// run refreshes the classifier and runs the worker until ctx ends. With
// an elector the worker (enforcement, hold sync, capture, bundles) runs in
// one process of the deployment at a time; every process keeps its
// classifier fresh for its writer.
func (rp *retentionParts) run(ctx context.Context, el *lease.Elector) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rp.classifier.Run(ctx, policyRefresh)
	}()
	var err error
	if el != nil {
		err = el.Lead(ctx, "retention", rp.worker.Run)
	} else {
		err = rp.worker.Run(ctx)
	}
	<-done
	return err
}

// classifiedEvents gives the writer's container events their retention
// class (signal events; the service selector matches the workload).
type classifiedEvents struct {
	store *chstore.Store
	cls   *retention.Classifier
}

func (c classifiedEvents) InsertEvents(ctx context.Context, evs []events.Event) error {
	n := len(evs)
	classes, tenants, namespaces, workloads := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i := range evs {
		tenants[i], namespaces[i], workloads[i] = evs[i].TenantID, evs[i].Namespace, evs[i].Workload
	}
	c.cls.ClassifyRows(retention.SignalEvents, classes, tenants, namespaces, workloads)
	return c.store.InsertEventsClassified(ctx, evs, classes)
}

// eventStore is the writer's event store: classified when retention
// policies are available.
func (rp *retentionParts) eventStore(store *chstore.Store) writer.EventStore {
	if store == nil {
		return nil
	}
	if rp == nil || rp.classifier == nil {
		return store
	}
	return classifiedEvents{store: store, cls: rp.classifier}
}
