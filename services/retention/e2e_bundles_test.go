package retention

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/retention/retentiontest"
)

// TestEvidenceBuildsSpoolCapAndSurviveCrashes (issue case 8): a build
// that dies (OOM, crash) no longer makes a crash loop: it is resumed
// while attempts are left, then the bundle fails with attempts_exhausted;
// builds stream through a spool dir that is removed (leftovers of a dead
// build too); the per-bundle and per-tenant byte caps fail a bundle with
// their error codes.
func TestEvidenceBuildsSpoolCapAndSurviveCrashes(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	spool := t.TempDir()
	spoolCfg := func(c *Config) {
		c.SpoolDir, c.MaxBundleAttempts, c.BundleStaleAfter = spool, 2, time.Minute
	}
	st := newStack(t, now, func(c *Config, _ *Deps) { spoolCfg(c) })
	ctx := context.Background()
	c := retentiontest.NewContainer("c", "shop", "cart")
	st.seed("acme", now, 5, c)
	req := retention.BundleRequest{Scope: retention.ScopeContainer, ID: c.Short(), Start: now.Add(-6 * 24 * time.Hour), End: now.Add(24 * time.Hour)}
	create := func() retention.Bundle {
		b, err := st.pg.CreateBundle(ctx, "acme", req, "api-key:k")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// crash is a build of id that claims it, leaves its spool dir and
	// dies: its heartbeat stops.
	crash := func(id string) {
		t.Helper()
		b, ok, err := st.pg.ClaimBundle(ctx, time.Minute, 2)
		if err != nil || !ok || b.ID != id {
			t.Fatalf("claim: %s %v %v, want %s", b.ID, ok, err, id)
		}
		if err := os.MkdirAll(filepath.Join(spool, spoolPrefix+id+"-dead", "x"), 0o755); err != nil {
			t.Fatal(err)
		}
		st.sql(`UPDATE evidence_bundles SET heartbeat_at = now() - interval '1 hour', started_at = now() - interval '1 hour' WHERE id = $1`, id)
	}
	spoolEmpty := func(when string) {
		t.Helper()
		if left, _ := os.ReadDir(spool); len(left) != 0 {
			t.Errorf("%s: spool dir holds %d entries (%s)", when, len(left), left[0].Name())
		}
	}
	bundle := func(id string) retention.Bundle {
		t.Helper()
		b, err := st.pg.GetBundle(ctx, "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// Dies at every build: failed after the attempts, not claimed forever.
	loop := create()
	crash(loop.ID)
	crash(loop.ID)
	if err := st.svc.BuildPendingBundles(ctx); err != nil {
		t.Fatal(err)
	}
	if b := bundle(loop.ID); b.Status != retention.BundleFailed || b.ErrorCode != retention.BundleErrAttempts || b.Attempts != 2 {
		t.Fatalf("bundle whose builds kept dying: %s %s attempts %d %q", b.Status, b.ErrorCode, b.Attempts, b.Error)
	}
	spoolEmpty("after failing the bundle whose builds died")
	if n := st.counter("aftertrace_retention_bundle_failures_total", map[string]string{"reason": retention.BundleErrAttempts}); n != 1 {
		t.Errorf("attempts_exhausted counted %v", n)
	}

	// Died once: resumed and built.
	resumed := create()
	crash(resumed.ID)
	if err := st.svc.BuildPendingBundles(ctx); err != nil {
		t.Fatal(err)
	}
	b := bundle(resumed.ID)
	if b.Status != retention.BundleDone || b.Attempts != 2 || b.ArchiveBytes == 0 {
		t.Fatalf("resumed bundle: %s attempts %d %q", b.Status, b.Attempts, b.Error)
	}
	spoolEmpty("after a build")
	got, rc, err := st.pg.DownloadBundle(ctx, "acme", resumed.ID, "api-key:k")
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || int64(len(archive)) != got.ArchiveBytes {
		t.Fatalf("download: %d bytes of %d, %v", len(archive), got.ArchiveBytes, err)
	}
	m, err := retention.Verify(bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("resumed bundle does not verify: %v", err)
	}
	if m.Files[0].Signal != "spans" || m.Files[0].Rows != 10 {
		t.Errorf("manifest files %+v", m.Files)
	}

	// Over the per-bundle cap, and over the tenant's.
	for _, c := range []struct {
		name string
		edit func(*Config)
		code string
	}{
		{"bundle cap", func(c *Config) { c.MaxBundleBytes = 2000 }, retention.BundleErrTooLarge},
		{"tenant cap", func(c *Config) { c.MaxTenantBundleBytes = got.ArchiveBytes + 100 }, retention.BundleErrTenantQuota},
	} {
		w := st.worker(func(cfg *Config, d *Deps) {
			spoolCfg(cfg)
			c.edit(cfg)
			d.Registry = prometheus.NewRegistry()
		})
		capped := create()
		if err := w.BuildPendingBundles(ctx); err != nil {
			t.Fatal(err)
		}
		if b := bundle(capped.ID); b.Status != retention.BundleFailed || b.ErrorCode != c.code || !strings.Contains(b.Error, "bytes") {
			t.Errorf("%s: %s %s %q", c.name, b.Status, b.ErrorCode, b.Error)
		}
		spoolEmpty(c.name)
	}
}
