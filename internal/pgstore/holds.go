package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// holdIDBytes is the size of a hold's id (hex-encoded).
const holdIDBytes = 8

// maxHolds bounds a hold listing.
const maxHolds = 10_000

const holdColumns = `id, tenant_id, scope, target, start_at, end_at, reason, until, status, rule_id,
	created_by, created_at, released_by, released_at, copied_until, copied_rows, sync_error, sync_failures`

func scanHold(row pgx.Row) (retention.Hold, error) {
	var h retention.Hold
	var rows int64
	err := row.Scan(&h.ID, &h.TenantID, &h.Scope, &h.Target, &h.Start, &h.End, &h.Reason, &h.Until, &h.Status,
		&h.RuleID, &h.CreatedBy, &h.CreatedAt, &h.ReleasedBy, &h.ReleasedAt, &h.CopiedUntil, &rows, &h.SyncError, &h.SyncFailures)
	h.CopiedRows = uint64(max(rows, 0))
	return h, err
}

// NewHold is a hold to create.
type NewHold struct {
	retention.HoldRequest
	Actor  string // API key id, or "capture-rule:<id>"
	RuleID string
	// TriggerKey, if set, makes the creation idempotent: a second hold
	// with the same key is not created (created reports false).
	TriggerKey string
}

// CreateHold records a hold (validated here: an incident must be one of
// the tenant's, else apperr.KindNotFound naming the field "id") and its
// custody entry.
func (s *Store) CreateHold(ctx context.Context, tenantID string, n NewHold) (h retention.Hold, created bool, err error) {
	if err := n.Validate(); err != nil {
		return h, false, err
	}
	if n.Scope == retention.ScopeIncident {
		if err := s.incidentExists(ctx, tenantID, n.ID); err != nil {
			return h, false, err
		}
	}
	id, err := newID(holdIDBytes)
	if err != nil {
		return h, false, err
	}
	var trigger *string
	if n.TriggerKey != "" {
		trigger = &n.TriggerKey
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		h, err = scanHold(tx.QueryRow(ctx,
			`INSERT INTO holds (id, tenant_id, scope, target, start_at, end_at, reason, until, rule_id, trigger_key, created_by)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			 ON CONFLICT (tenant_id, trigger_key) WHERE trigger_key IS NOT NULL DO NOTHING
			 RETURNING `+holdColumns,
			id, tenantID, string(n.Scope), n.ID, n.Start, n.End, n.Reason, n.Until, n.RuleID, trigger, n.Actor))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // placed before
		}
		if err != nil {
			return err
		}
		created = true
		return addCustody(ctx, tx, tenantID, retention.CustodyHoldCreated, n.Actor, "", &h, map[string]any{"reason": n.Reason})
	})
	if err != nil {
		return h, false, dbErr(err, "create hold")
	}
	return h, created, nil
}

// ListHolds returns the tenant's holds, released and expired ones too,
// oldest first.
func (s *Store) ListHolds(ctx context.Context, tenantID string) ([]retention.Hold, error) {
	return s.holds(ctx, `WHERE tenant_id = $1 ORDER BY created_at, id LIMIT `+strconv.Itoa(maxHolds), tenantID)
}

// OpenHolds returns every tenant's open holds.
func (s *Store) OpenHolds(ctx context.Context) ([]retention.Hold, error) {
	return s.holds(ctx, `WHERE status = 'open' ORDER BY created_at, id`)
}

func (s *Store) holds(ctx context.Context, tail string, args ...any) ([]retention.Hold, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+holdColumns+` FROM holds `+tail, args...)
	if err != nil {
		return nil, dbErr(err, "list holds")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (retention.Hold, error) { return scanHold(r) })
	if err != nil {
		return nil, dbErr(err, "list holds")
	}
	if out == nil {
		out = []retention.Hold{}
	}
	return out, nil
}

// GetHold returns one of the tenant's holds; another tenant's or an
// unknown one is apperr.KindNotFound.
func (s *Store) GetHold(ctx context.Context, tenantID, id string) (retention.Hold, error) {
	h, err := scanHold(s.pool.QueryRow(ctx, `SELECT `+holdColumns+` FROM holds WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return h, oneRow(err, "get hold", "hold %q not found", id)
}

// ReleaseHold ends an open hold (recorded: status, who, when; the hold and
// the rows it copied stay). Releasing a closed hold changes nothing.
func (s *Store) ReleaseHold(ctx context.Context, tenantID, id, actor string) (retention.Hold, error) {
	var h retention.Hold
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		h, err = scanHold(tx.QueryRow(ctx,
			`UPDATE holds SET status = 'released', released_by = $3, released_at = now()
			 WHERE tenant_id = $1 AND id = $2 AND status = 'open' RETURNING `+holdColumns, tenantID, id, actor))
		if errors.Is(err, pgx.ErrNoRows) {
			h, err = scanHold(tx.QueryRow(ctx, `SELECT `+holdColumns+` FROM holds WHERE tenant_id = $1 AND id = $2`, tenantID, id))
			return err
		}
		if err != nil {
			return err
		}
		return addCustody(ctx, tx, tenantID, retention.CustodyHoldReleased, actor, "", &h, nil)
	})
	return h, oneRow(err, "release hold", "hold %q not found", id)
}

// ExpireHolds closes the open holds whose until is before now and returns
// them.
func (s *Store) ExpireHolds(ctx context.Context, now time.Time) ([]retention.Hold, error) {
	var out []retention.Hold
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx,
			`UPDATE holds SET status = 'expired', released_by = 'system', released_at = $1
			 WHERE status = 'open' AND until IS NOT NULL AND until < $1 RETURNING `+holdColumns, now)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (retention.Hold, error) { return scanHold(r) })
		if err != nil {
			return err
		}
		for i := range out {
			if err := addCustody(ctx, tx, out[i].TenantID, retention.CustodyHoldExpired, "system", "", &out[i], nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, dbErr(err, "expire holds")
	}
	return out, nil
}

// AdvanceHold records that a hold's rows up to copiedUntil are copied,
// adding rows to its count, and clears its sync error.
func (s *Store) AdvanceHold(ctx context.Context, id string, copiedUntil time.Time, rows uint64) error {
	_, err := s.pool.Exec(ctx,
		`UPDATE holds SET copied_until = $2, copied_rows = copied_rows + $3, sync_error = '', sync_failures = 0 WHERE id = $1`,
		id, copiedUntil, int64(rows))
	if err != nil {
		return dbErr(err, "advance hold")
	}
	return nil
}

// maxSyncError bounds the recorded text of a failed hold copy.
const maxSyncError = 1000

// RecordHoldSyncFailure records why a hold's copy failed and counts the
// failures in a row (AdvanceHold clears them). The message must carry no
// secret: it is shown to the tenant.
func (s *Store) RecordHoldSyncFailure(ctx context.Context, id, msg string) error {
	_, err := s.pool.Exec(ctx, `UPDATE holds SET sync_error = $2, sync_failures = sync_failures + 1 WHERE id = $1`,
		id, retention.ClipText(truncate(msg, maxSyncError)))
	if err != nil {
		return dbErr(err, "record hold sync failure")
	}
	return nil
}

// truncate cuts s to at most n bytes (ClipText makes the cut valid UTF-8).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// PlacedTriggerKeys returns which of keys already placed one of the
// tenant's holds (capture rules skip those without a write each).
func (s *Store) PlacedTriggerKeys(ctx context.Context, tenantID string, keys []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT trigger_key FROM holds WHERE tenant_id = $1 AND trigger_key = ANY($2)`, tenantID, keys)
	if err != nil {
		return nil, dbErr(err, "placed trigger keys")
	}
	keysFound, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, dbErr(err, "placed trigger keys")
	}
	for _, k := range keysFound {
		out[k] = true
	}
	return out, nil
}

// addCustody appends one custody entry inside tx.
func addCustody(ctx context.Context, tx pgx.Tx, tenantID, action, actor, bundleID string, h *retention.Hold, detail map[string]any) error {
	var holdID, scope, target string
	if h != nil {
		holdID, scope, target = h.ID, string(h.Scope), h.Target
	}
	var d []byte
	if detail != nil {
		var err error
		if d, err = json.Marshal(detail); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx,
		`INSERT INTO custody_log (tenant_id, action, actor, bundle_id, hold_id, scope, target, detail)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		tenantID, action, actor, bundleID, holdID, scope, target, d)
	return err
}
