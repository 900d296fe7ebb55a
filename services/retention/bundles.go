package retention

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// bundleSignals are the files of a bundle, in order.
var bundleSignals = []string{"spans", "logs", "metrics", "events", "links"}

// errNotOwned: the bundle was taken over by another build (this one was
// thought dead) or is no longer running.
var errNotOwned = errors.New("the evidence bundle was taken over by another build")

// bundleError is a failed build with its error code.
type bundleError struct {
	code string
	err  error
}

func (e *bundleError) Error() string { return e.err.Error() }
func (e *bundleError) Unwrap() error { return e.err }

func codeOf(err error) string {
	var be *bundleError
	if errors.As(err, &be) {
		return be.code
	}
	return retention.BundleErrBuild
}

// BuildPendingBundles fails the bundles whose builds kept dying, then
// builds every pending bundle (and every one whose builder died, while it
// has attempts left), one after the other, until none is left.
func (s *Service) BuildPendingBundles(ctx context.Context) error {
	crashed, err := s.deps.State.FailCrashedBundles(ctx, s.cfg.BundleStaleAfter, s.cfg.MaxBundleAttempts)
	if err != nil {
		return err
	}
	for _, b := range crashed {
		s.bundleFailed(b, retention.BundleErrAttempts, errors.New(b.Error))
		removeSpools(s.cfg.SpoolDir, b.ID)
	}
	for ctx.Err() == nil {
		b, ok, err := s.deps.State.ClaimBundle(ctx, s.cfg.BundleStaleAfter, s.cfg.MaxBundleAttempts)
		if err != nil || !ok {
			return err
		}
		if b.Attempts > 1 {
			removeSpools(s.cfg.SpoolDir, b.ID) // what the build that died here left
		}
		err = s.buildBundle(ctx, b)
		switch {
		case err == nil:
			s.m.bundles.WithLabelValues("done").Inc()
		case errors.Is(err, errNotOwned):
			s.log.Warn("retention: evidence bundle taken over by another build", "bundle", b.ID, "tenant", b.TenantID)
		case ctx.Err() != nil:
			// Shutting down: back to pending, this attempt not counted.
			if rerr := s.deps.State.RequeueBundle(context.WithoutCancel(ctx), b); rerr != nil {
				return errors.Join(err, rerr)
			}
			return nil
		default:
			code := codeOf(err)
			s.bundleFailed(b, code, err)
			if ferr := s.deps.State.FailBundle(context.WithoutCancel(ctx), b, code, err.Error()); ferr != nil {
				return ferr
			}
		}
	}
	return nil
}

// bundleFailed counts and logs a failed bundle.
func (s *Service) bundleFailed(b retention.Bundle, code string, err error) {
	s.m.bundles.WithLabelValues("failed").Inc()
	s.m.bundleFailures.WithLabelValues(code).Inc()
	s.log.Warn("retention: evidence bundle failed", "bundle", b.ID, "tenant", b.TenantID, "code", code, "attempts", b.Attempts, "err", err)
}

// buildBundle exports the bundle's rows as NDJSON per signal into a spool
// dir, packs them with the manifest into an archive there, stores the
// archive in pieces, and removes the dir: memory holds a row and a piece,
// never the bundle. The byte caps fail it with their error codes.
func (s *Service) buildBundle(ctx context.Context, b retention.Bundle) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := s.heartbeat(ctx, b, cancel)
	defer stop()

	stored, err := s.deps.State.TenantBundleBytes(ctx, b.TenantID)
	if err != nil {
		return err
	}
	if quota := s.cfg.MaxTenantBundleBytes; quota > 0 && stored >= quota {
		return &bundleError{retention.BundleErrTenantQuota, fmt.Errorf(
			"the tenant's evidence bundles already take %d bytes of its %d (retention-tenant-bundle-max-bytes)", stored, quota)}
	}
	sel, err := s.selection(ctx, b.TenantID, b.Request.Scope, b.Request.ID)
	if err != nil {
		return err
	}
	sel.After, sel.Upto = afterStart(b.Request.Start), b.Request.End
	sp, err := newSpool(s.cfg.SpoolDir, b.ID, bundleSignals, s.cfg.MaxBundleBytes)
	if err != nil {
		return err
	}
	defer sp.remove()
	counts, truncated, err := s.deps.Data.ExportSelection(ctx, sel, s.cfg.MaxBundleRows, sp.write)
	if errors.Is(err, errBundleTooLarge) {
		return &bundleError{retention.BundleErrTooLarge, fmt.Errorf(
			"the bundle's files exceed %d bytes (retention-bundle-max-bytes); narrow its scope or window", s.cfg.MaxBundleBytes)}
	}
	if err != nil {
		return s.ownership(ctx, err)
	}
	files, err := sp.finish(counts, truncated)
	if err != nil {
		return err
	}
	m := &retention.Manifest{
		BundleID: b.ID, TenantID: b.TenantID, Request: b.Request, CreatedBy: b.CreatedBy, CreatedAt: b.CreatedAt.UTC(),
	}
	af, err := sp.create("bundle.tar.gz")
	if err != nil {
		return err
	}
	defer af.Close()
	sum := sha256.New()
	count := &countingWriter{}
	bw := bufio.NewWriterSize(io.MultiWriter(af, sum, count), 256<<10)
	if err := archive(bw, m, files); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if quota := s.cfg.MaxTenantBundleBytes; quota > 0 && stored+count.n > quota {
		return &bundleError{retention.BundleErrTenantQuota, fmt.Errorf(
			"this %d-byte bundle would take the tenant's evidence bundles to %d bytes, over its %d (retention-tenant-bundle-max-bytes)",
			count.n, stored+count.n, quota)}
	}
	if _, err := af.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	sha := hex.EncodeToString(sum.Sum(nil))
	if err := s.deps.State.FinishBundle(ctx, b, m, af, count.n, sha); err != nil {
		return s.ownership(ctx, fmt.Errorf("store the archive: %w", err))
	}
	s.log.Info("retention: evidence bundle built", "bundle", b.ID, "tenant", b.TenantID, "bytes", count.n)
	return nil
}

// ownership turns the failure of a build that lost its bundle into
// errNotOwned.
func (s *Service) ownership(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errNotOwned) {
		return errNotOwned
	}
	return err
}

// heartbeat records every BundleStaleAfter/4 that the build of b is alive,
// until stop; it cancels the build if b was taken over.
func (s *Service) heartbeat(ctx context.Context, b retention.Bundle, cancel context.CancelCauseFunc) (stop func()) {
	hctx, hcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(s.cfg.BundleStaleAfter/4, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
			}
			owned, err := s.deps.State.HeartbeatBundle(hctx, b.ID, b.Attempts)
			if err != nil {
				if hctx.Err() == nil {
					s.log.Warn("retention: evidence bundle heartbeat failed", "bundle", b.ID, "err", err)
				}
				continue
			}
			if !owned {
				cancel(errNotOwned)
				return
			}
		}
	})
	return func() {
		hcancel()
		wg.Wait()
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
