package retention

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SyncHolds expires holds whose until passed, then copies, for every open
// hold, the rows it selects from its watermark up to now minus
// SettleDelay (or its end) into the hold class, and advances the
// watermark. It returns the rows copied per table.
func (s *Service) SyncHolds(ctx context.Context) (map[string]uint64, error) {
	now := s.now()
	if _, err := s.deps.State.ExpireHolds(ctx, now); err != nil {
		return nil, err
	}
	holds, err := s.deps.State.OpenHolds(ctx)
	if err != nil {
		return nil, err
	}
	total := map[string]uint64{}
	var errs []error
	for _, h := range holds {
		sel, err := s.selection(ctx, h.TenantID, h.Scope, h.Target)
		if errors.Is(err, errNoIncidents) {
			continue // waits for the correlator's incidents
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("hold %s: %w", h.ID, err))
			continue
		}
		upto := now.Add(-s.cfg.SettleDelay)
		if h.End != nil && h.End.Before(upto) {
			upto = *h.End
		}
		upto = upto.Truncate(time.Second)
		switch {
		case h.CopiedUntil != nil:
			sel.After = *h.CopiedUntil
		case h.Start != nil:
			sel.After = afterStart(*h.Start)
		}
		if !sel.After.IsZero() && !upto.After(sel.After) {
			continue
		}
		sel.Upto = upto
		copied, err := s.deps.Data.CopyHeld(ctx, sel)
		var n uint64
		for table, rows := range copied {
			n += rows
			total[table] += rows
			s.m.rowsHeld.WithLabelValues(table).Add(float64(rows))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("hold %s: %w", h.ID, err))
			continue // the watermark stays: the next pass copies again (reads dedup)
		}
		if err := s.deps.State.AdvanceHold(ctx, h.ID, upto, n); err != nil {
			errs = append(errs, err)
			continue
		}
		if n > 0 {
			s.log.Info("retention: hold copied rows", "hold", h.ID, "tenant", h.TenantID, "scope", h.Scope, "rows", n, "upto", upto)
		}
	}
	return total, errors.Join(errs...)
}
