package retention

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// DataStore is the ClickHouse side (implemented by *chstore.Store).
type DataStore interface {
	ListPartitions(ctx context.Context) ([]retention.Partition, error)
	DropPartition(ctx context.Context, table string, date time.Time, class string) error
	CopyHeld(ctx context.Context, sel retention.Selection) (map[string]uint64, error)
	CopyLateHeld(ctx context.Context, sel retention.Selection, table string, dates []time.Time) (uint64, error)
	RescueKept(ctx context.Context, table string, parts []retention.Partition, asOf time.Time, k retention.Keep, tenants []string) (uint64, error)
	PartitionTenantRows(ctx context.Context, table string, date time.Time, class string, tenants []string) (of, others uint64, err error)
	DeletePartitionRows(ctx context.Context, table string, parts []chstore.KeptRows) error
	ExpiredRows(ctx context.Context, table string, asOf, upto time.Time, k retention.Keep, tenants []string) (map[time.Time]uint64, error)
	DeleteExpired(ctx context.Context, table string, asOf, upto time.Time, k retention.Keep, tenants []string) error
	WaitMutations(ctx context.Context, table string) error
	ExportSelection(ctx context.Context, sel retention.Selection, maxRows int, emit chstore.ExportRow) (map[string]int64, map[string]bool, error)
	TenantTriggerEvents(ctx context.Context, tenantID, trigger string, afterNs, uptoNs uint64, limit int) ([]retention.TriggerEvent, error)
}

// StateStore is the Postgres side (implemented by *pgstore.Store).
type StateStore interface {
	OpenHolds(ctx context.Context) ([]retention.Hold, error)
	ExpireHolds(ctx context.Context, now time.Time) ([]retention.Hold, error)
	AdvanceHold(ctx context.Context, id string, copiedUntil time.Time, rows uint64) error
	RecordHoldSyncFailure(ctx context.Context, id, msg string) error
	CreateHold(ctx context.Context, tenantID string, n pgstore.NewHold) (retention.Hold, bool, error)
	PlacedTriggerKeys(ctx context.Context, tenantID string, keys []string) (map[string]bool, error)
	AllPolicies(ctx context.Context) (map[string][]retention.Policy, error)
	AllCaptureRules(ctx context.Context) (map[string][]retention.CaptureRule, error)
	StateNs(ctx context.Context, key string) (int64, error)
	CaptureWatermark(ctx context.Context, tenantID, trigger string) (int64, bool, error)
	SetCaptureWatermark(ctx context.Context, tenantID, trigger string, ns int64) error
	CaptureFailures(ctx context.Context, tenantID string, keys []string) (map[string]retention.CaptureFailure, error)
	RecordCaptureFailure(ctx context.Context, tenantID string, f retention.CaptureFailure, maxAttempts int) (retention.CaptureFailure, error)
	ClearCaptureFailure(ctx context.Context, tenantID, key string) error
	ClaimBundle(ctx context.Context, staleAfter time.Duration, maxAttempts int) (retention.Bundle, bool, error)
	FailCrashedBundles(ctx context.Context, staleAfter time.Duration, maxAttempts int) ([]retention.Bundle, error)
	HeartbeatBundle(ctx context.Context, id string, attempt int) (bool, error)
	RequeueBundle(ctx context.Context, b retention.Bundle) error
	TenantBundleBytes(ctx context.Context, tenantID string) (int64, error)
	FinishBundle(ctx context.Context, b retention.Bundle, m *retention.Manifest, archive io.Reader, size int64, sha string) error
	FailBundle(ctx context.Context, b retention.Bundle, code, msg string) error
}

// IncidentResolver reads the correlator's incidents: the containers and
// pods one involves, and the incidents opened lately (capture rules).
// Without one, incident-scoped holds wait and bundles fail, and incident
// capture rules do nothing (implemented by *pgstore.Store).
type IncidentResolver interface {
	IncidentSelection(ctx context.Context, tenantID, incidentID string) (retention.Selection, error)
	IncidentsOpenedSince(ctx context.Context, tenants []string, since time.Time, limit int) ([]pgstore.OpenedIncident, error)
}

var (
	_ DataStore        = (*chstore.Store)(nil)
	_ StateStore       = (*pgstore.Store)(nil)
	_ IncidentResolver = (*pgstore.Store)(nil)
)

// Deps are the worker's collaborators.
type Deps struct {
	Logger    *slog.Logger
	Data      DataStore  // required
	State     StateStore // required
	Incidents IncidentResolver
	Registry  prometheus.Registerer // nil: metrics are not registered
	Now       func() time.Time      // nil: time.Now
}

// Service is the retention worker.
type Service struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *metrics
	now  func() time.Time
}

// errNoIncidents: incident scopes need the correlator's incidents.
var errNoIncidents = errors.New("incident scopes need the correlator's incidents, which this process does not have")

// New validates cfg and deps.
func New(cfg Config, deps Deps) (*Service, error) {
	errs := []error{cfg.Validate()}
	if deps.Data == nil || deps.State == nil {
		errs = append(errs, errors.New("retention: Deps.Data and Deps.State are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Logger, m: m, now: deps.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Run syncs holds, evaluates capture rules, builds bundles and enforces
// retention periodically until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		s.every(gctx, "capture", s.cfg.CaptureInterval, func(ctx context.Context) error {
			n, err := s.EvaluateCaptureRules(ctx)
			if n > 0 { // copy what the new holds select now, whatever failed elsewhere
				_, serr := s.SyncHolds(ctx)
				err = errors.Join(err, serr)
			}
			return err
		})
		return nil
	})
	g.Go(func() error {
		s.every(gctx, "holds", s.cfg.HoldSyncInterval, func(ctx context.Context) error {
			_, err := s.SyncHolds(ctx)
			return err
		})
		return nil
	})
	g.Go(func() error {
		s.every(gctx, "bundles", s.cfg.BundlePollInterval, s.BuildPendingBundles)
		return nil
	})
	if s.cfg.EnforceInterval > 0 {
		g.Go(func() error {
			// The first enforcement waits one interval: a process started to
			// replay or inspect old data gets to do so first.
			t := time.NewTimer(s.cfg.EnforceInterval)
			defer t.Stop()
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
			s.every(gctx, "enforce", s.cfg.EnforceInterval, func(ctx context.Context) error {
				_, err := s.Enforce(ctx, s.now(), false)
				return err
			})
			return nil
		})
	}
	return g.Wait()
}

// every runs fn now and then every interval until ctx ends; a failed pass
// is logged and counted, and the next one tries again.
func (s *Service) every(ctx context.Context, task string, interval time.Duration, fn func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			s.m.failures.WithLabelValues(task).Inc()
			s.log.Warn("retention task failed; will retry", "task", task, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// selection resolves a scope to the rows it selects.
func (s *Service) selection(ctx context.Context, tenantID string, scope retention.Scope, target string) (retention.Selection, error) {
	if scope != retention.ScopeIncident {
		return retention.SelectScope(tenantID, scope, target), nil
	}
	if s.deps.Incidents == nil {
		return retention.Selection{}, errNoIncidents
	}
	sel, err := s.deps.Incidents.IncidentSelection(ctx, tenantID, target)
	sel.TenantID = tenantID
	return sel, err
}

// afterStart is the exclusive lower bound selecting rows from start's
// second on.
func afterStart(start time.Time) time.Time { return start.Truncate(time.Second).Add(-time.Second) }
