package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// captureWatermark is the retention_state key of the last event seen.
const captureWatermark = "capture_events_seen_ns"

// captureBatch bounds the events one capture pass reads.
const captureBatch = 10_000

// EvaluateCaptureRules reads the Falco alerts and OOM kills seen since the
// last pass and, for every rule they fire, holds the involved container and
// pod for the rule's window around the event. Each (rule, event, scope)
// places one hold, however often it is evaluated. It returns the holds
// placed.
func (s *Service) EvaluateCaptureRules(ctx context.Context) (int, error) {
	rules, err := s.deps.State.AllCaptureRules(ctx)
	if err != nil {
		return 0, err
	}
	placed, err := s.captureIncidents(ctx, rules)
	if err != nil {
		return placed, err
	}
	tenants := tenantsWith(rules, retention.TriggerFalco, retention.TriggerOOM)
	if len(tenants) == 0 {
		return placed, nil
	}
	seen, err := s.deps.State.StateNs(ctx, captureWatermark)
	if err != nil {
		return 0, err
	}
	since := uint64(max(seen-s.cfg.CaptureLookback.Nanoseconds(), 0))
	evs, last, err := s.deps.Data.TriggerEvents(ctx, tenants, since, captureBatch)
	if err != nil {
		return 0, err
	}
	var errs []error
	for i := range evs {
		e := &evs[i]
		for _, r := range rules[e.TenantID] {
			if !r.Matches(e) {
				continue
			}
			n, err := s.placeCaptureHolds(ctx, &r, e)
			placed += n
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return placed, err // the watermark stays: the next pass retries (holds are idempotent)
	}
	if int64(last) > seen {
		if err := s.deps.State.SetStateNs(ctx, captureWatermark, int64(last)); err != nil {
			return placed, err
		}
	}
	return placed, nil
}

// placeCaptureHolds holds e's container and pod for r's window.
func (s *Service) placeCaptureHolds(ctx context.Context, r *retention.CaptureRule, e *retention.TriggerEvent) (int, error) {
	start, end := r.Window(time.Unix(0, int64(e.TimeNs)).UTC())
	placed := 0
	for _, target := range []struct {
		scope retention.Scope
		id    string
	}{{retention.ScopeContainer, e.ContainerID}, {retention.ScopePod, e.PodUID}} {
		if target.id == "" || (target.scope == retention.ScopeContainer && len(target.id) < 12) {
			continue
		}
		h, created, err := s.deps.State.CreateHold(ctx, e.TenantID, pgstore.NewHold{
			HoldRequest: retention.HoldRequest{
				Scope: target.scope, ID: target.id, Start: &start, End: &end,
				Reason: fmt.Sprintf("capture rule %s: %s %s %s (event %s)", r.ID, e.Source, e.Type, e.Reason, e.EventID),
			},
			Actor:      "capture-rule:" + r.ID,
			RuleID:     r.ID,
			TriggerKey: r.ID + "/" + e.EventID + "/" + string(target.scope),
		})
		if err != nil {
			return placed, fmt.Errorf("capture rule %s: %w", r.ID, err)
		}
		if created {
			placed++
			s.m.holdsPlaced.WithLabelValues(r.Trigger).Inc()
			s.log.Info("retention: capture rule placed a hold", "rule", r.ID, "tenant", e.TenantID, "hold", h.ID,
				"scope", h.Scope, "target", h.Target, "event", e.EventID)
		}
	}
	return placed, nil
}

// tenantsWith lists the tenants with a rule of one of the triggers.
func tenantsWith(rules map[string][]retention.CaptureRule, triggers ...string) []string {
	var out []string
	for t, rs := range rules {
		if slices.ContainsFunc(rs, func(r retention.CaptureRule) bool { return slices.Contains(triggers, r.Trigger) }) {
			out = append(out, t)
		}
	}
	return out
}

// incidentWatermark is the retention_state key of the last incident seen.
const incidentWatermark = "capture_incidents_opened_ns"

// captureIncidents holds every incident opened since the last pass that an
// incident rule (of its namespace, if the rule has one) fires on, for the
// rule's window around the incident's first event. The hold is of incident
// scope, so the containers and pods that join the incident later are held
// too.
func (s *Service) captureIncidents(ctx context.Context, rules map[string][]retention.CaptureRule) (int, error) {
	tenants := tenantsWith(rules, retention.TriggerIncident)
	if s.deps.Incidents == nil || len(tenants) == 0 {
		return 0, nil
	}
	seen, err := s.deps.State.StateNs(ctx, incidentWatermark)
	if err != nil {
		return 0, err
	}
	since := time.Unix(0, max(seen-s.cfg.CaptureLookback.Nanoseconds(), 0))
	incs, err := s.deps.Incidents.IncidentsOpenedSince(ctx, tenants, since, captureBatch)
	if err != nil {
		return 0, err
	}
	placed, last := 0, seen
	for _, inc := range incs {
		for _, r := range rules[inc.TenantID] {
			if r.Trigger != retention.TriggerIncident || (r.Namespace != "" && r.Namespace != inc.Namespace) {
				continue
			}
			start, end := r.Window(inc.FirstEventAt)
			_, created, err := s.deps.State.CreateHold(ctx, inc.TenantID, pgstore.NewHold{
				HoldRequest: retention.HoldRequest{
					Scope: retention.ScopeIncident, ID: inc.ID, Start: &start, End: &end,
					Reason: fmt.Sprintf("capture rule %s: incident opened: %s", r.ID, inc.Title),
				},
				Actor: "capture-rule:" + r.ID, RuleID: r.ID, TriggerKey: r.ID + "/incident/" + inc.ID,
			})
			if err != nil {
				return placed, fmt.Errorf("capture rule %s: %w", r.ID, err)
			}
			if created {
				placed++
				s.m.holdsPlaced.WithLabelValues(r.Trigger).Inc()
			}
		}
		last = max(last, inc.OpenedAt.UnixNano())
	}
	if last > seen {
		return placed, s.deps.State.SetStateNs(ctx, incidentWatermark, last)
	}
	return placed, nil
}
