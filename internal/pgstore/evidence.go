package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// bundleIDBytes is the size of a bundle's id (hex-encoded).
const bundleIDBytes = 8

// staleBundle: a bundle running this long is taken over by another worker
// (its builder died).
const staleBundle = 10 * time.Minute

const bundleColumns = `id, tenant_id, scope, target, start_at, end_at, status, error, created_by, created_at,
	finished_at, manifest, archive_sha256, COALESCE(octet_length(archive), 0)`

func scanBundle(row pgx.Row) (retention.Bundle, error) {
	var b retention.Bundle
	var manifest []byte
	err := row.Scan(&b.ID, &b.TenantID, &b.Request.Scope, &b.Request.ID, &b.Request.Start, &b.Request.End, &b.Status,
		&b.Error, &b.CreatedBy, &b.CreatedAt, &b.FinishedAt, &manifest, &b.ArchiveSHA256, &b.ArchiveBytes)
	if err == nil && len(manifest) > 0 {
		b.Manifest = &retention.Manifest{}
		err = json.Unmarshal(manifest, b.Manifest)
	}
	b.Request.Start, b.Request.End = b.Request.Start.UTC(), b.Request.End.UTC()
	return b, err
}

// CreateBundle records a pending evidence bundle job (validated here) and
// its custody entry; a retention worker builds it.
func (s *Store) CreateBundle(ctx context.Context, tenantID string, req retention.BundleRequest, actor string) (retention.Bundle, error) {
	if err := req.Validate(); err != nil {
		return retention.Bundle{}, err
	}
	id, err := newID(bundleIDBytes)
	if err != nil {
		return retention.Bundle{}, err
	}
	var b retention.Bundle
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b, err = scanBundle(tx.QueryRow(ctx,
			`INSERT INTO evidence_bundles (id, tenant_id, scope, target, start_at, end_at, created_by)
			 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+bundleColumns,
			id, tenantID, string(req.Scope), req.ID, req.Start, req.End, actor))
		if err != nil {
			return err
		}
		return addCustody(ctx, tx, tenantID, retention.CustodyBundleCreated, actor, id, nil,
			map[string]any{"scope": req.Scope, "id": req.ID, "start": req.Start, "end": req.End})
	})
	if err != nil {
		return retention.Bundle{}, dbErr(err, "create evidence bundle")
	}
	return b, nil
}

// GetBundle returns one of the tenant's bundles (without the archive);
// another tenant's or an unknown one is apperr.KindNotFound.
func (s *Store) GetBundle(ctx context.Context, tenantID, id string) (retention.Bundle, error) {
	b, err := scanBundle(s.pool.QueryRow(ctx,
		`SELECT `+bundleColumns+` FROM evidence_bundles WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return b, oneRow(err, "get evidence bundle", "evidence bundle %q not found", id)
}

// ClaimBundle marks the oldest pending bundle (or one whose builder died)
// running and returns it; ok is false when there is none.
func (s *Store) ClaimBundle(ctx context.Context) (b retention.Bundle, ok bool, err error) {
	b, err = scanBundle(s.pool.QueryRow(ctx,
		`UPDATE evidence_bundles SET status = 'running', started_at = now()
		 WHERE id = (SELECT id FROM evidence_bundles
		             WHERE status = 'pending' OR (status = 'running' AND started_at < $1)
		             ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		 RETURNING `+bundleColumns, time.Now().Add(-staleBundle)))
	if errors.Is(err, pgx.ErrNoRows) {
		return b, false, nil
	}
	if err != nil {
		return b, false, dbErr(err, "claim evidence bundle")
	}
	return b, true, nil
}

// FinishBundle stores a built bundle's manifest and archive.
func (s *Store) FinishBundle(ctx context.Context, b retention.Bundle, m *retention.Manifest, archive []byte, sha string) error {
	mj, err := json.Marshal(m)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`UPDATE evidence_bundles SET status = 'done', finished_at = now(), manifest = $2, archive = $3, archive_sha256 = $4, error = ''
			 WHERE id = $1`, b.ID, mj, archive, sha); err != nil {
			return err
		}
		return addCustody(ctx, tx, b.TenantID, retention.CustodyBundleCompleted, "system", b.ID, nil,
			map[string]any{"archiveSha256": sha, "archiveBytes": len(archive)})
	})
	if err != nil {
		return dbErr(err, "finish evidence bundle")
	}
	return nil
}

// FailBundle records why a bundle could not be built.
func (s *Store) FailBundle(ctx context.Context, b retention.Bundle, msg string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`UPDATE evidence_bundles SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1`, b.ID, msg); err != nil {
			return err
		}
		return addCustody(ctx, tx, b.TenantID, retention.CustodyBundleFailed, "system", b.ID, nil, map[string]any{"error": msg})
	})
	if err != nil {
		return dbErr(err, "fail evidence bundle")
	}
	return nil
}

// DownloadBundle returns a finished bundle's archive and records the
// download (who, when) in its custody log. A bundle not finished yet is
// apperr.KindConflict.
func (s *Store) DownloadBundle(ctx context.Context, tenantID, id, actor string) ([]byte, retention.Bundle, error) {
	var archive []byte
	var b retention.Bundle
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if b, err = scanBundle(tx.QueryRow(ctx,
			`SELECT `+bundleColumns+` FROM evidence_bundles WHERE tenant_id = $1 AND id = $2`, tenantID, id)); err != nil {
			return err
		}
		if b.Status != retention.BundleDone {
			return apperr.New(apperr.KindConflict, "evidence bundle %s is %s, not done", id, b.Status)
		}
		if err := tx.QueryRow(ctx, `SELECT archive FROM evidence_bundles WHERE id = $1`, id).Scan(&archive); err != nil {
			return err
		}
		return addCustody(ctx, tx, tenantID, retention.CustodyBundleDownload, actor, id, nil,
			map[string]any{"archiveSha256": b.ArchiveSHA256})
	})
	if apperr.KindOf(err) == apperr.KindConflict {
		return nil, b, err
	}
	return archive, b, oneRow(err, "download evidence bundle", "evidence bundle %q not found", id)
}

// Custody returns a bundle's chain of custody, oldest first: its creation,
// completion and every download, and every change of a hold on the same
// scope and id. Another tenant's or an unknown bundle is
// apperr.KindNotFound.
func (s *Store) Custody(ctx context.Context, tenantID, bundleID string) ([]retention.CustodyEntry, error) {
	b, err := s.GetBundle(ctx, tenantID, bundleID)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx,
		`SELECT seq, at, action, actor, bundle_id, hold_id, detail FROM custody_log
		 WHERE tenant_id = $1 AND (bundle_id = $2 OR (hold_id != '' AND scope = $3 AND target = $4))
		 ORDER BY seq`, tenantID, bundleID, string(b.Request.Scope), b.Request.ID)
	if err != nil {
		return nil, dbErr(err, "read custody log")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (retention.CustodyEntry, error) {
		var e retention.CustodyEntry
		var detail []byte
		err := r.Scan(&e.Seq, &e.At, &e.Action, &e.Actor, &e.BundleID, &e.HoldID, &detail)
		if len(detail) > 0 {
			e.Detail = detail
		}
		return e, err
	})
	if err != nil {
		return nil, dbErr(err, "read custody log")
	}
	if out == nil {
		out = []retention.CustodyEntry{}
	}
	return out, nil
}
