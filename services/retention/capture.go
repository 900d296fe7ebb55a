package retention

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// Legacy retention_state keys of the global watermarks, read once as the
// starting point of each tenant's own (capture_watermarks).
const (
	captureWatermark  = "capture_events_seen_ns"
	incidentWatermark = "capture_incidents_opened_ns"
)

// captureBatch bounds the events (or incidents) one pass reads per tenant
// and trigger, for new ones and again for the lookback.
const captureBatch = 10_000

// captureTriggers are evaluated in this order, each with its own
// watermark per tenant.
var captureTriggers = []string{retention.TriggerFalco, retention.TriggerOOM, retention.TriggerIncident}

// EvaluateCaptureRules reads, per tenant and trigger, the Falco alerts, OOM
// kills and opened incidents seen since that tenant's last pass and, for
// every rule they fire, holds the involved container and pod (or the
// incident) for the rule's window around the trigger. Each (rule, trigger,
// scope) places one hold, however often it is evaluated. A trigger whose
// holds cannot be placed is recorded, counted and retried by the next
// passes (its tenant's watermark stays before it), and skipped once
// MaxCaptureAttempts passes failed; other triggers and tenants advance
// regardless. It returns the holds placed.
func (s *Service) EvaluateCaptureRules(ctx context.Context) (int, error) {
	rules, err := s.deps.State.AllCaptureRules(ctx)
	if err != nil {
		return 0, err
	}
	placed := 0
	var errs []error
	for _, tenant := range slices.Sorted(maps.Keys(rules)) {
		for _, trigger := range captureTriggers {
			rs := slices.DeleteFunc(slices.Clone(rules[tenant]), func(r retention.CaptureRule) bool { return r.Trigger != trigger })
			if len(rs) == 0 || (trigger == retention.TriggerIncident && s.deps.Incidents == nil) {
				continue
			}
			n, err := s.captureTenant(ctx, tenant, trigger, rs)
			placed += n
			if err != nil {
				errs = append(errs, fmt.Errorf("capture rules of tenant %s, %s: %w", tenant, trigger, err))
			}
		}
	}
	return placed, errors.Join(errs...)
}

// firing is one rule fired by one event or incident: the holds it places.
type firing struct {
	key      string // <rule id>/<event id> or <rule id>/incident/<incident id>
	rule     retention.CaptureRule
	sourceID string
	seenNs   int64
	holds    []pgstore.NewHold
}

// captureTenant evaluates the tenant's rules of one trigger and advances
// its watermark up to the first trigger still to retry.
func (s *Service) captureTenant(ctx context.Context, tenant, trigger string, rules []retention.CaptureRule) (int, error) {
	seen, err := s.captureMark(ctx, tenant, trigger)
	if err != nil {
		return 0, err
	}
	fs, last, err := s.firings(ctx, tenant, trigger, rules, seen)
	if err != nil {
		return 0, err
	}
	var keys []string
	for _, f := range fs {
		for _, h := range f.holds {
			keys = append(keys, h.TriggerKey)
		}
	}
	done, err := s.deps.State.PlacedTriggerKeys(ctx, tenant, keys)
	if err != nil {
		return 0, err
	}
	fs = slices.DeleteFunc(fs, func(f firing) bool {
		return !slices.ContainsFunc(f.holds, func(h pgstore.NewHold) bool { return !done[h.TriggerKey] })
	})
	fkeys := make([]string, len(fs))
	for i, f := range fs {
		fkeys[i] = f.key
	}
	failed, err := s.deps.State.CaptureFailures(ctx, tenant, fkeys)
	if err != nil {
		return 0, err
	}
	placed := 0
	blockedAt := int64(math.MaxInt64) // seen time of the first trigger to retry
	for _, f := range fs {
		if failed[f.key].Skipped {
			continue
		}
		n, err := s.placeHolds(ctx, tenant, &f)
		placed += n
		if err == nil {
			if _, ok := failed[f.key]; ok {
				if err := s.deps.State.ClearCaptureFailure(ctx, tenant, f.key); err != nil {
					return placed, err
				}
			}
			continue
		}
		rec, rerr := s.deps.State.RecordCaptureFailure(ctx, tenant, retention.CaptureFailure{
			Key: f.key, Trigger: trigger, RuleID: f.rule.ID, SourceID: f.sourceID, LastError: err.Error(),
		}, s.cfg.MaxCaptureAttempts)
		if rerr != nil {
			return placed, errors.Join(err, rerr) // nothing recorded: the watermark stays
		}
		s.m.captureFailures.WithLabelValues(trigger, captureReason(err)).Inc()
		if rec.Skipped {
			s.m.captureFailures.WithLabelValues(trigger, reasonSkipped).Inc()
			s.log.Warn("retention: capture trigger skipped after failed attempts", "tenant", tenant, "rule", f.rule.ID,
				"trigger", f.key, "attempts", rec.Attempts, "err", err)
			continue
		}
		s.log.Warn("retention: capture trigger failed; retried next pass", "tenant", tenant, "rule", f.rule.ID,
			"trigger", f.key, "attempts", rec.Attempts, "err", err)
		blockedAt = min(blockedAt, f.seenNs)
	}
	mark := last
	if blockedAt != math.MaxInt64 {
		mark = min(mark, blockedAt-1)
	}
	if mark > seen {
		if err := s.deps.State.SetCaptureWatermark(ctx, tenant, trigger, mark); err != nil {
			return placed, err
		}
	}
	return placed, nil
}

// captureReason labels a failed trigger.
func captureReason(err error) string {
	switch apperr.KindOf(err) {
	case apperr.KindInvalid:
		return "invalid"
	case apperr.KindNotFound:
		return "not_found"
	}
	return "store"
}

// captureMark is how far the tenant's rules of trigger have looked: its
// own watermark, else the global one of before watermarks were per tenant.
func (s *Service) captureMark(ctx context.Context, tenant, trigger string) (int64, error) {
	ns, ok, err := s.deps.State.CaptureWatermark(ctx, tenant, trigger)
	if err != nil || ok {
		return ns, err
	}
	key := captureWatermark
	if trigger == retention.TriggerIncident {
		key = incidentWatermark
	}
	return s.deps.State.StateNs(ctx, key)
}

// firings reads the tenant's triggers seen after seen (and, for late
// arrivals, those of the lookback before it) and returns the rules they
// fire, oldest first, and the seen time of the last new one (seen when
// none).
func (s *Service) firings(ctx context.Context, tenant, trigger string, rules []retention.CaptureRule, seen int64) ([]firing, int64, error) {
	lookback := max(seen-s.cfg.CaptureLookback.Nanoseconds(), 0)
	var out []firing
	last := seen
	if trigger == retention.TriggerIncident {
		incs, err := s.deps.Incidents.IncidentsOpenedSince(ctx, []string{tenant}, time.Unix(0, lookback), captureBatch)
		if err != nil {
			return nil, seen, err
		}
		for _, inc := range incs {
			last = max(last, inc.OpenedAt.UnixNano())
			for _, r := range rules {
				if r.Namespace == "" || r.Namespace == inc.Namespace {
					out = append(out, incidentFiring(r, inc))
				}
			}
		}
		return out, last, nil
	}
	// New events first bound the batch (progress even when more than a
	// batch arrived within the lookback), then the lookback re-reads.
	evs, err := s.deps.Data.TenantTriggerEvents(ctx, tenant, trigger, uint64(seen), math.MaxUint64, captureBatch)
	if err != nil {
		return nil, seen, err
	}
	if lookback < seen {
		late, err := s.deps.Data.TenantTriggerEvents(ctx, tenant, trigger, uint64(lookback), uint64(seen), captureBatch)
		if err != nil {
			return nil, seen, err
		}
		evs = append(late, evs...)
	}
	for i := range evs {
		e := &evs[i]
		if int64(e.SeenNs) > seen {
			last = max(last, int64(e.SeenNs))
		}
		for _, r := range rules {
			if r.Matches(e) {
				out = append(out, eventFiring(r, e))
			}
		}
	}
	return out, last, nil
}

// eventFiring holds e's container and pod for r's window.
func eventFiring(r retention.CaptureRule, e *retention.TriggerEvent) firing {
	start, end := r.Window(time.Unix(0, int64(e.TimeNs)).UTC())
	f := firing{key: r.ID + "/" + e.EventID, rule: r, sourceID: e.EventID, seenNs: int64(e.SeenNs)}
	reason := retention.ClipText(fmt.Sprintf("capture rule %s: %s %s %s (event %s)", r.ID, e.Source, e.Type, e.Reason, e.EventID))
	for _, target := range []struct {
		scope retention.Scope
		id    string
	}{{retention.ScopeContainer, e.ContainerID}, {retention.ScopePod, e.PodUID}} {
		if target.id == "" || (target.scope == retention.ScopeContainer && len(target.id) < 12) {
			continue
		}
		f.holds = append(f.holds, pgstore.NewHold{
			HoldRequest: retention.HoldRequest{Scope: target.scope, ID: target.id, Start: &start, End: &end, Reason: reason},
			Actor:       "capture-rule:" + r.ID, RuleID: r.ID,
			TriggerKey: r.ID + "/" + e.EventID + "/" + string(target.scope),
		})
	}
	return f
}

// incidentFiring holds the incident for r's window around its first event;
// the hold is of incident scope, so containers and pods that join it later
// are held too.
func incidentFiring(r retention.CaptureRule, inc pgstore.OpenedIncident) firing {
	start, end := r.Window(inc.FirstEventAt)
	return firing{
		key: r.ID + "/incident/" + inc.ID, rule: r, sourceID: inc.ID, seenNs: inc.OpenedAt.UnixNano(),
		holds: []pgstore.NewHold{{
			HoldRequest: retention.HoldRequest{Scope: retention.ScopeIncident, ID: inc.ID, Start: &start, End: &end,
				Reason: retention.ClipText(fmt.Sprintf("capture rule %s: incident opened: %s", r.ID, inc.Title))},
			Actor: "capture-rule:" + r.ID, RuleID: r.ID, TriggerKey: r.ID + "/incident/" + inc.ID,
		}},
	}
}

// placeHolds places f's holds (each once: a second with the same trigger
// key is not created); every target is tried, and the errors joined.
func (s *Service) placeHolds(ctx context.Context, tenant string, f *firing) (int, error) {
	placed := 0
	var errs []error
	for _, n := range f.holds {
		h, created, err := s.deps.State.CreateHold(ctx, tenant, n)
		if err != nil {
			errs = append(errs, fmt.Errorf("capture rule %s, %s %q: %w", f.rule.ID, n.Scope, n.ID, err))
			continue
		}
		if created {
			placed++
			s.m.holdsPlaced.WithLabelValues(f.rule.Trigger).Inc()
			s.log.Info("retention: capture rule placed a hold", "rule", f.rule.ID, "tenant", tenant, "hold", h.ID,
				"scope", h.Scope, "target", h.Target, "trigger", f.key)
		}
	}
	return placed, errors.Join(errs...)
}
