package retention

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// bundleSignals are the files of a bundle, in order.
var bundleSignals = []string{"spans", "logs", "metrics", "events", "links"}

// BuildPendingBundles builds every pending evidence bundle, one after the
// other, until none is left.
func (s *Service) BuildPendingBundles(ctx context.Context) error {
	for ctx.Err() == nil {
		b, ok, err := s.deps.State.ClaimBundle(ctx)
		if err != nil || !ok {
			return err
		}
		if err := s.buildBundle(ctx, b); err != nil {
			s.m.bundles.WithLabelValues("failed").Inc()
			s.log.Warn("retention: evidence bundle failed", "bundle", b.ID, "tenant", b.TenantID, "err", err)
			if ferr := s.deps.State.FailBundle(context.WithoutCancel(ctx), b, err.Error()); ferr != nil {
				return ferr
			}
			continue
		}
		s.m.bundles.WithLabelValues("done").Inc()
	}
	return nil
}

// buildBundle exports the bundle's rows as NDJSON per signal, packs them
// with the manifest and stores the archive.
func (s *Service) buildBundle(ctx context.Context, b retention.Bundle) error {
	sel, err := s.selection(ctx, b.TenantID, b.Request.Scope, b.Request.ID)
	if err != nil {
		return err
	}
	sel.After, sel.Upto = afterStart(b.Request.Start), b.Request.End
	bufs := map[string]*bytes.Buffer{}
	for _, sig := range bundleSignals {
		bufs[sig] = &bytes.Buffer{}
	}
	counts, truncated, err := s.deps.Data.ExportSelection(ctx, sel, s.cfg.MaxBundleRows, func(signal string, row []byte) error {
		buf := bufs[signal]
		if buf == nil {
			return fmt.Errorf("unexpected signal %q", signal)
		}
		buf.Write(row)
		buf.WriteByte('\n')
		return nil
	})
	if err != nil {
		return err
	}
	files := make([]retention.BundleFile, 0, len(bundleSignals))
	for _, sig := range bundleSignals {
		files = append(files, retention.BundleFile{
			Name: sig + ".ndjson", Signal: sig, Rows: counts[sig], Truncated: truncated[sig], Data: bufs[sig].Bytes(),
		})
	}
	m := &retention.Manifest{
		BundleID: b.ID, TenantID: b.TenantID, Request: b.Request, CreatedBy: b.CreatedBy, CreatedAt: b.CreatedAt.UTC(),
	}
	archive, err := retention.BuildArchive(m, files)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(archive)
	if err := s.deps.State.FinishBundle(ctx, b, m, archive, hex.EncodeToString(sum[:])); err != nil {
		return errors.Join(errors.New("store the archive"), err)
	}
	s.log.Info("retention: evidence bundle built", "bundle", b.ID, "tenant", b.TenantID, "bytes", len(archive))
	return nil
}
