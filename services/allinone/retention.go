package allinone

import (
	"context"
	"fmt"
	"time"

	"github.com/grafana/dskit/services"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/services/api"
	retentionsvc "github.com/aftertrace/aftertrace/services/retention"
	"github.com/aftertrace/aftertrace/services/writer"
)

// policyRefresh is how often the writer's classifier re-reads retention
// policies (a change applies to rows written after it is seen).
const policyRefresh = 10 * time.Second

// classifierModule keeps the retention classes of written rows (the
// writer's, the correlator's event links) fresh. Without Postgres there
// is none: rows keep the "default" class.
func (a *App) classifierModule() (services.Service, error) {
	start := func(ctx context.Context) error {
		if a.pg == nil {
			return nil
		}
		a.classifier = retention.NewClassifier(a.pg, a.log.With("service", "retention"))
		if err := a.classifier.Refresh(ctx); err != nil {
			a.log.Warn("retention policies not loaded yet; rows get the default class until they are", "err", err)
		}
		return nil
	}
	run := func(ctx context.Context) error {
		if a.classifier == nil {
			<-ctx.Done()
			return nil
		}
		_ = a.classifier.Run(ctx, policyRefresh)
		return nil
	}
	return services.NewBasicService(start, run, nil), nil
}

// retentionModule runs the retention worker (enforcement, hold sync,
// capture, bundles); with an elector in one process of the deployment at
// a time. Without Postgres there is none and nothing is dropped.
func (a *App) retentionModule() (services.Service, error) {
	start := func(context.Context) error {
		if a.pg == nil {
			return nil
		}
		w, err := retentionsvc.New(a.cfg.Retention, retentionsvc.Deps{
			Logger:    a.log.With("service", "retention"),
			Data:      a.chStore,
			State:     a.pg,
			Incidents: a.pg,
			Registry:  a.deps.Registry,
		})
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		a.worker = w
		return nil
	}
	run := func(ctx context.Context) error {
		switch {
		case a.worker == nil:
			<-ctx.Done()
			return nil
		case a.lease != nil:
			return a.lease.Lead(ctx, "retention", a.worker.Run)
		default:
			return a.worker.Run(ctx)
		}
	}
	return services.NewBasicService(start, run, nil), nil
}

// classify is the writer's classifier, or nil.
func (a *App) classify() writer.Classifier {
	if a.classifier == nil {
		return nil
	}
	return a.classifier
}

// retentionAPI is the store behind the retention routes, or nil without
// Postgres (they answer 503).
func (a *App) retentionAPI() api.Retention {
	if a.pg == nil {
		return nil
	}
	return a.pg
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
func (a *App) eventStore() writer.EventStore {
	if a.classifier == nil {
		return a.chStore
	}
	return classifiedEvents{store: a.chStore, cls: a.classifier}
}
