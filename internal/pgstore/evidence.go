package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// bundleIDBytes is the size of a bundle's id (hex-encoded).
const bundleIDBytes = 8

// bundleChunkBytes is the size of the pieces an archive is stored and read
// in: a build or a download holds one piece in memory, never the archive.
const bundleChunkBytes = 1 << 20

const bundleColumns = `id, tenant_id, scope, target, start_at, end_at, status, error, error_code, attempts, created_by, created_at,
	finished_at, manifest, archive_sha256, GREATEST(archive_bytes, COALESCE(octet_length(archive), 0))`

func scanBundle(row pgx.Row) (retention.Bundle, error) {
	var b retention.Bundle
	var manifest []byte
	err := row.Scan(&b.ID, &b.TenantID, &b.Request.Scope, &b.Request.ID, &b.Request.Start, &b.Request.End, &b.Status,
		&b.Error, &b.ErrorCode, &b.Attempts, &b.CreatedBy, &b.CreatedAt, &b.FinishedAt, &manifest, &b.ArchiveSHA256, &b.ArchiveBytes)
	if err == nil && len(manifest) > 0 {
		b.Manifest = &retention.Manifest{}
		err = json.Unmarshal(manifest, b.Manifest)
	}
	b.Request.Start, b.Request.End = b.Request.Start.UTC(), b.Request.End.UTC()
	return b, err
}

// CreateBundle records a pending evidence bundle job (validated here: an
// incident must be one of the tenant's, else apperr.KindNotFound naming
// the field "id") and its custody entry; a retention worker builds it.
func (s *Store) CreateBundle(ctx context.Context, tenantID string, req retention.BundleRequest, actor string) (retention.Bundle, error) {
	if err := req.Validate(); err != nil {
		return retention.Bundle{}, err
	}
	if req.Scope == retention.ScopeIncident {
		if err := s.incidentExists(ctx, tenantID, req.ID); err != nil {
			return retention.Bundle{}, err
		}
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

// staleRunning selects running bundles whose builder stopped beating for
// staleAfter ($1 is now minus staleAfter): it died (crash, OOM, restart).
const staleRunning = `status = 'running' AND COALESCE(heartbeat_at, started_at) < $1`

// ClaimBundle marks the oldest pending bundle, or one whose builder died
// and that has attempts left (fewer than maxAttempts builds started),
// running, counts the attempt and returns it; ok is false when there is
// none.
func (s *Store) ClaimBundle(ctx context.Context, staleAfter time.Duration, maxAttempts int) (b retention.Bundle, ok bool, err error) {
	b, err = scanBundle(s.pool.QueryRow(ctx,
		`UPDATE evidence_bundles SET status = 'running', started_at = now(), heartbeat_at = now(), attempts = attempts + 1
		 WHERE id = (SELECT id FROM evidence_bundles
		             WHERE status = 'pending' OR (`+staleRunning+` AND attempts < $2)
		             ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		 RETURNING `+bundleColumns, time.Now().Add(-staleAfter), maxAttempts))
	if errors.Is(err, pgx.ErrNoRows) {
		return b, false, nil
	}
	if err != nil {
		return b, false, dbErr(err, "claim evidence bundle")
	}
	return b, true, nil
}

// FailCrashedBundles fails the bundles whose builder died after the last
// of maxAttempts builds (error code attempts_exhausted, recorded in their
// custody) instead of claiming them again, and returns them.
func (s *Store) FailCrashedBundles(ctx context.Context, staleAfter time.Duration, maxAttempts int) ([]retention.Bundle, error) {
	var out []retention.Bundle
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx,
			`UPDATE evidence_bundles SET status = 'failed', finished_at = now(), error_code = $3,
			   error = 'the build stopped (worker crashed, ran out of memory or restarted) ' || attempts || ' times; not retried'
			 WHERE `+staleRunning+` AND attempts >= $2 RETURNING `+bundleColumns,
			time.Now().Add(-staleAfter), maxAttempts, retention.BundleErrAttempts)
		if err != nil {
			return err
		}
		if out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (retention.Bundle, error) { return scanBundle(r) }); err != nil {
			return err
		}
		for _, b := range out {
			if err := addCustody(ctx, tx, b.TenantID, retention.CustodyBundleFailed, "system", b.ID, nil,
				map[string]any{"error": b.Error, "errorCode": b.ErrorCode, "attempts": b.Attempts}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, dbErr(err, "fail crashed evidence bundles")
	}
	return out, nil
}

// HeartbeatBundle records that the build of attempt is alive; owned is
// false when the bundle is no longer that build's (taken over or
// finished), and the build should stop.
func (s *Store) HeartbeatBundle(ctx context.Context, id string, attempt int) (owned bool, err error) {
	tag, err := s.pool.Exec(ctx,
		`UPDATE evidence_bundles SET heartbeat_at = now() WHERE id = $1 AND status = 'running' AND attempts = $2`, id, attempt)
	if err != nil {
		return false, dbErr(err, "evidence bundle heartbeat")
	}
	return tag.RowsAffected() == 1, nil
}

// RequeueBundle puts a bundle whose build stopped cleanly (its worker is
// shutting down) back to pending without counting the attempt, if it is
// still this build's (b.Attempts).
func (s *Store) RequeueBundle(ctx context.Context, b retention.Bundle) error {
	_, err := s.pool.Exec(ctx,
		`UPDATE evidence_bundles SET status = 'pending', attempts = attempts - 1, heartbeat_at = NULL
		 WHERE id = $1 AND status = 'running' AND attempts = $2`, b.ID, b.Attempts)
	if err != nil {
		return dbErr(err, "requeue evidence bundle")
	}
	return nil
}

// TenantBundleBytes is the size of the tenant's stored (done) archives.
func (s *Store) TenantBundleBytes(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx,
		`SELECT COALESCE(SUM(GREATEST(archive_bytes, COALESCE(octet_length(archive), 0))), 0)::BIGINT
		 FROM evidence_bundles WHERE tenant_id = $1 AND status = 'done'`, tenantID).Scan(&n)
	if err != nil {
		return 0, dbErr(err, "evidence bytes of tenant")
	}
	return n, nil
}

// errNotOwned: another build took the bundle over (this one was thought
// dead) or it is no longer running.
var errNotOwned = errors.New("the evidence bundle is no longer this build's")

// FinishBundle stores a built bundle's manifest and its archive, read from
// archive in pieces (size bytes, SHA-256 sha), if the bundle is still this
// build's (b.Attempts).
func (s *Store) FinishBundle(ctx context.Context, b retention.Bundle, m *retention.Manifest, archive io.Reader, size int64, sha string) error {
	mj, err := json.Marshal(m)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM evidence_bundles WHERE id = $1 AND status = 'running' AND attempts = $2 FOR UPDATE`,
			b.ID, b.Attempts).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotOwned
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM evidence_bundle_chunks WHERE bundle_id = $1`, b.ID); err != nil {
			return err
		}
		buf := make([]byte, bundleChunkBytes)
		var total int64
		for seq := 0; ; seq++ {
			n, rerr := io.ReadFull(archive, buf)
			if n > 0 {
				if _, err := tx.Exec(ctx, `INSERT INTO evidence_bundle_chunks (bundle_id, seq, data) VALUES ($1, $2, $3)`,
					b.ID, seq, buf[:n]); err != nil {
					return err
				}
				total += int64(n)
			}
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				break
			}
			if rerr != nil {
				return fmt.Errorf("read the archive: %w", rerr)
			}
		}
		if total != size {
			return fmt.Errorf("the archive has %d bytes, expected %d", total, size)
		}
		if _, err := tx.Exec(ctx,
			`UPDATE evidence_bundles SET status = 'done', finished_at = now(), manifest = $2, archive_bytes = $3, archive_sha256 = $4,
			   error = '', error_code = '' WHERE id = $1`, b.ID, mj, size, sha); err != nil {
			return err
		}
		return addCustody(ctx, tx, b.TenantID, retention.CustodyBundleCompleted, "system", b.ID, nil,
			map[string]any{"archiveSha256": sha, "archiveBytes": size})
	})
	if errors.Is(err, errNotOwned) {
		return fmt.Errorf("finish evidence bundle %s: %w", b.ID, err)
	}
	if err != nil {
		return dbErr(err, "finish evidence bundle")
	}
	return nil
}

// FailBundle records why a bundle could not be built (code: one of the
// retention.BundleErr codes), if it is still this build's (b.Attempts).
func (s *Store) FailBundle(ctx context.Context, b retention.Bundle, code, msg string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx,
			`UPDATE evidence_bundles SET status = 'failed', finished_at = now(), error = $2, error_code = $3
			 WHERE id = $1 AND status = 'running' AND attempts = $4`, b.ID, retention.ClipText(msg), code, b.Attempts)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil // another build owns it now
		}
		return addCustody(ctx, tx, b.TenantID, retention.CustodyBundleFailed, "system", b.ID, nil,
			map[string]any{"error": retention.ClipText(msg), "errorCode": code})
	})
	if err != nil {
		return dbErr(err, "fail evidence bundle")
	}
	return nil
}

// DownloadBundle records the download of a finished bundle (who, when) in
// its custody log and returns the bundle and a reader of its archive,
// which fetches it piece by piece (read it within ctx; Close it). A bundle
// not finished yet is apperr.KindConflict.
func (s *Store) DownloadBundle(ctx context.Context, tenantID, id, actor string) (retention.Bundle, io.ReadCloser, error) {
	var b retention.Bundle
	var chunks int
	var legacy []byte
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if b, err = scanBundle(tx.QueryRow(ctx,
			`SELECT `+bundleColumns+` FROM evidence_bundles WHERE tenant_id = $1 AND id = $2`, tenantID, id)); err != nil {
			return err
		}
		if b.Status != retention.BundleDone {
			return apperr.New(apperr.KindConflict, "evidence bundle %s is %s, not done", id, b.Status)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM evidence_bundle_chunks WHERE bundle_id = $1`, id).Scan(&chunks); err != nil {
			return err
		}
		if chunks == 0 { // built before archives were stored in pieces
			if err := tx.QueryRow(ctx, `SELECT COALESCE(archive, ''::bytea) FROM evidence_bundles WHERE id = $1`, id).Scan(&legacy); err != nil {
				return err
			}
		}
		return addCustody(ctx, tx, tenantID, retention.CustodyBundleDownload, actor, id, nil,
			map[string]any{"archiveSha256": b.ArchiveSHA256})
	})
	if apperr.KindOf(err) == apperr.KindConflict {
		return b, nil, err
	}
	if err := oneRow(err, "download evidence bundle", "evidence bundle %q not found", id); err != nil {
		return b, nil, err
	}
	if chunks == 0 {
		return b, io.NopCloser(bytes.NewReader(legacy)), nil
	}
	return b, &chunkReader{ctx: ctx, s: s, id: id, n: chunks}, nil
}

// chunkReader reads a stored archive one piece at a time.
type chunkReader struct {
	ctx context.Context
	s   *Store
	id  string
	seq int
	n   int
	buf []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.seq >= r.n {
			return 0, io.EOF
		}
		if err := r.s.pool.QueryRow(r.ctx, `SELECT data FROM evidence_bundle_chunks WHERE bundle_id = $1 AND seq = $2`,
			r.id, r.seq).Scan(&r.buf); err != nil {
			return 0, dbErr(err, "read evidence bundle")
		}
		r.seq++
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *chunkReader) Close() error { return nil }

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
