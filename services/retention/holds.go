package retention

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// HoldFailure is a hold whose rows could not be copied in a sync. Unless
// its scope selects nothing (an incident that does not exist), enforcement
// keeps its tenant's rows of its window until it copies again.
type HoldFailure struct {
	HoldID   string
	TenantID string
	Reason   string // one of the reason* constants
	Err      string
	// Protects: the hold's tenant's rows of [From, To] (zero: unbounded)
	// are kept rather than dropped or deleted.
	Protects bool
	From, To time.Time
}

// heldScope is an open hold that synced, with what it selects over its
// whole window (for late rows).
type heldScope struct {
	hold retention.Hold
	sel  retention.Selection
}

// syncResult is what a hold sync did.
type syncResult struct {
	rows     map[string]uint64 // copied, per table
	holds    []heldScope
	failures []HoldFailure
}

// SyncHolds expires holds whose until passed, then copies, for every open
// hold, the rows it selects from its watermark up to now minus
// SettleDelay (or its end) into the hold class, and advances the
// watermark. It returns the rows copied per table; a hold that fails is
// recorded on it, counted and logged, and does not stop the others (the
// error lists the failures).
func (s *Service) SyncHolds(ctx context.Context) (map[string]uint64, error) {
	res, err := s.syncHolds(ctx)
	if err != nil {
		return res.rows, err
	}
	var errs []error
	for _, f := range res.failures {
		if f.Protects { // a missing incident is recorded once per sync on the hold; no error to repeat
			errs = append(errs, fmt.Errorf("hold %s: %s", f.HoldID, f.Err))
		}
	}
	return res.rows, errors.Join(errs...)
}

// syncHolds is SyncHolds with the per-hold outcome; the error is only for
// what stops every hold (the hold list cannot be read).
func (s *Service) syncHolds(ctx context.Context) (syncResult, error) {
	res := syncResult{rows: map[string]uint64{}}
	now := s.now()
	if _, err := s.deps.State.ExpireHolds(ctx, now); err != nil {
		return res, err
	}
	holds, err := s.deps.State.OpenHolds(ctx)
	if err != nil {
		return res, err
	}
	for _, h := range holds {
		sel, err := s.selection(ctx, h.TenantID, h.Scope, h.Target)
		switch {
		case err != nil && h.Scope == retention.ScopeIncident && apperr.KindOf(err) == apperr.KindNotFound:
			// Placed before targets were checked: the incident does not
			// exist, so the hold selects nothing and protects nothing.
			res.failures = append(res.failures, s.holdFailed(ctx, h, reasonIncidentGone, err, false))
			continue
		case errors.Is(err, errNoIncidents):
			res.failures = append(res.failures, s.holdFailed(ctx, h, reasonNoIncidents, err, true))
			continue
		case err != nil:
			res.failures = append(res.failures, s.holdFailed(ctx, h, reasonResolveFailed, err, true))
			continue
		}
		upto := now.Add(-s.cfg.SettleDelay)
		if h.End != nil && h.End.Before(upto) {
			upto = *h.End
		}
		upto = upto.Truncate(time.Second)
		window := sel
		if h.Start != nil {
			window.After = afterStart(*h.Start)
		}
		if h.End != nil {
			window.Upto = *h.End
		}
		switch {
		case h.CopiedUntil != nil:
			sel.After = *h.CopiedUntil
		case h.Start != nil:
			sel.After = afterStart(*h.Start)
		}
		if !sel.After.IsZero() && !upto.After(sel.After) {
			res.holds = append(res.holds, heldScope{hold: h, sel: window})
			continue
		}
		sel.Upto = upto
		copied, err := s.deps.Data.CopyHeld(ctx, sel)
		var n uint64
		for table, rows := range copied {
			n += rows
			res.rows[table] += rows
			s.m.rowsHeld.WithLabelValues(table).Add(float64(rows))
		}
		if err != nil {
			// The watermark stays: the next pass copies again (reads dedup).
			res.failures = append(res.failures, s.holdFailed(ctx, h, reasonCopyFailed, err, true))
			continue
		}
		if err := s.deps.State.AdvanceHold(ctx, h.ID, upto, n); err != nil {
			res.failures = append(res.failures, s.holdFailed(ctx, h, reasonStateFailed, err, true))
			continue
		}
		res.holds = append(res.holds, heldScope{hold: h, sel: window})
		if n > 0 {
			s.log.Info("retention: hold copied rows", "hold", h.ID, "tenant", h.TenantID, "scope", h.Scope, "rows", n, "upto", upto)
		}
	}
	return res, nil
}

// holdFailureText is what a hold shows of a failed sync (the tenant sees
// it; the cause is logged).
var holdFailureText = map[string]string{
	reasonNoIncidents:    "incident scopes need the correlator's incidents, which the retention worker does not have",
	reasonResolveFailed:  "the incident's containers and pods could not be read; retried at the next sync",
	reasonCopyFailed:     "copying the rows failed; retried at the next sync",
	reasonLateCopyFailed: "copying late rows failed; retried at the next enforcement",
	reasonStateFailed:    "recording the copy failed; retried at the next sync",
}

// holdFailed records (on the hold), counts and logs a failed sync of h.
func (s *Service) holdFailed(ctx context.Context, h retention.Hold, reason string, err error, protects bool) HoldFailure {
	f := HoldFailure{HoldID: h.ID, TenantID: h.TenantID, Reason: reason, Err: holdFailureText[reason], Protects: protects}
	if f.Err == "" {
		f.Err = apperr.PublicMessage(err)
	}
	if h.Start != nil {
		f.From = *h.Start
	}
	if h.End != nil {
		f.To = *h.End
	}
	s.m.holdFailures.WithLabelValues(reason).Inc()
	msg := "retention: hold could not copy; its tenant's rows of its window are kept until it does"
	if !protects {
		msg = "retention: hold selects nothing"
	}
	s.log.Warn(msg, "hold", h.ID, "tenant", h.TenantID, "scope", h.Scope, "reason", reason, "err", err)
	if rerr := s.deps.State.RecordHoldSyncFailure(context.WithoutCancel(ctx), h.ID, reason+": "+f.Err); rerr != nil {
		s.log.Warn("retention: recording a hold failure failed", "hold", h.ID, "err", rerr)
	}
	return f
}
