package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// CaptureWatermark returns how far the tenant's capture rules of trigger
// have looked (seen time, unix ns); ok is false when they never have.
func (s *Store) CaptureWatermark(ctx context.Context, tenantID, trigger string) (ns int64, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT seen_ns FROM capture_watermarks WHERE tenant_id = $1 AND trigger = $2`,
		tenantID, trigger).Scan(&ns)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, dbErr(err, "read capture watermark")
	}
	return ns, true, nil
}

// SetCaptureWatermark records how far the tenant's capture rules of
// trigger have looked; it never moves back (two workers may race).
func (s *Store) SetCaptureWatermark(ctx context.Context, tenantID, trigger string, ns int64) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO capture_watermarks (tenant_id, trigger, seen_ns) VALUES ($1, $2, $3)
		 ON CONFLICT (tenant_id, trigger) DO UPDATE SET seen_ns = GREATEST(capture_watermarks.seen_ns, EXCLUDED.seen_ns), updated_at = now()`,
		tenantID, trigger, ns)
	if err != nil {
		return dbErr(err, "write capture watermark")
	}
	return nil
}

// CaptureFailures returns the recorded failures of the tenant among keys.
func (s *Store) CaptureFailures(ctx context.Context, tenantID string, keys []string) (map[string]retention.CaptureFailure, error) {
	out := map[string]retention.CaptureFailure{}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx,
		`SELECT trigger_key, trigger, rule_id, source_id, attempts, last_error, skipped FROM capture_failures
		 WHERE tenant_id = $1 AND trigger_key = ANY($2)`, tenantID, keys)
	if err != nil {
		return nil, dbErr(err, "read capture failures")
	}
	fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (retention.CaptureFailure, error) {
		var f retention.CaptureFailure
		err := r.Scan(&f.Key, &f.Trigger, &f.RuleID, &f.SourceID, &f.Attempts, &f.LastError, &f.Skipped)
		return f, err
	})
	if err != nil {
		return nil, dbErr(err, "read capture failures")
	}
	for _, f := range fs {
		out[f.Key] = f
	}
	return out, nil
}

// RecordCaptureFailure counts one more failed attempt of f.Key, with its
// error, and marks it skipped once the attempts reach maxAttempts. It
// returns the record as stored.
func (s *Store) RecordCaptureFailure(ctx context.Context, tenantID string, f retention.CaptureFailure, maxAttempts int) (retention.CaptureFailure, error) {
	out := f
	err := s.pool.QueryRow(ctx,
		`INSERT INTO capture_failures (tenant_id, trigger_key, trigger, rule_id, source_id, attempts, last_error, skipped)
		 VALUES ($1, $2, $3, $4, $5, 1, $6, 1 >= $7)
		 ON CONFLICT (tenant_id, trigger_key) DO UPDATE SET
		   attempts = capture_failures.attempts + 1, last_error = EXCLUDED.last_error, last_failed_at = now(),
		   skipped = capture_failures.skipped OR capture_failures.attempts + 1 >= $7
		 RETURNING attempts, skipped`,
		tenantID, f.Key, f.Trigger, f.RuleID, retention.ClipText(f.SourceID), retention.ClipText(truncate(f.LastError, maxSyncError)), maxAttempts,
	).Scan(&out.Attempts, &out.Skipped)
	if err != nil {
		return f, dbErr(err, "record capture failure")
	}
	return out, nil
}

// ClearCaptureFailure forgets the failures of key (its holds are placed).
func (s *Store) ClearCaptureFailure(ctx context.Context, tenantID, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM capture_failures WHERE tenant_id = $1 AND trigger_key = $2`, tenantID, key); err != nil {
		return dbErr(err, "clear capture failure")
	}
	return nil
}
