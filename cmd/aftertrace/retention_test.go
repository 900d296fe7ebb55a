package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/retention/retentiontest"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// TestRetentionEnforceCommand: --dry-run prints the plan and changes
// nothing; without it the expired partitions are gone from system.parts
// and the held container's old trace still reads.
func TestRetentionEnforceCommand(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	chCfg := chstore.DefaultConfig()
	chCfg.Addr, chCfg.Database = env.ClickHouseAddr, env.ClickHouseDB
	ch, err := chstore.Open(chCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	pg, err := pgstore.Open(ctx, env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()

	if err := pg.SetPolicies(ctx, "t1", []retention.Policy{{Signal: retention.SignalSpans, Days: 2}}); err != nil {
		t.Fatal(err)
	}
	cls := retention.NewClassifier(pg, nil)
	if err := cls.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	asOf := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	a, b := retentiontest.NewContainer("a", "ns", "svc"), retentiontest.NewContainer("b", "ns", "svc")
	if err := retentiontest.Seed(ctx, ch, cls, "t1", asOf, 5, []retentiontest.Container{a, b}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pg.CreateHold(ctx, "t1", pgstore.NewHold{
		HoldRequest: retention.HoldRequest{Scope: retention.ScopeContainer, ID: a.ID, Reason: "test"}, Actor: "test",
	}); err != nil {
		t.Fatal(err)
	}
	args := []string{"retention", "enforce", "--as-of", asOf.Format(time.RFC3339),
		"--clickhouse-addr", env.ClickHouseAddr, "--clickhouse-database", env.ClickHouseDB, "--postgres-dsn", env.PostgresDSN,
		"--retention-default-days-logs", "0", "--retention-default-days-metrics", "0", "--retention-default-days-events", "0",
		"--retention-default-days-spans", "0", "--retention-default-days-links", "0"}
	count := func(class string) int {
		parts, err := ch.ListPartitions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range parts {
			if p.Class == class {
				n++
			}
		}
		return n
	}
	// Days 3 and 4 of spans and trace_index, and of the sightings of spans.
	out := mustRun(t, append(args, "--dry-run")...)
	if !strings.Contains(out, "would drop 6 partitions") || !strings.Contains(out, "spans") {
		t.Errorf("dry run printed:\n%s", out)
	}
	if n := count("d2"); n != 15 {
		t.Fatalf("d2 partitions after the dry run: %d, want 15", n)
	}
	out = mustRun(t, args...)
	if !strings.Contains(out, "dropped 6 partitions") {
		t.Errorf("enforce printed:\n%s", out)
	}
	if n := count("d2"); n != 9 {
		t.Errorf("d2 partitions after enforcement: %d, want 9", n)
	}
	if spans, err := ch.GetTrace(ctx, "t1", a.TraceID(4)); err != nil || len(spans) != 2 {
		t.Errorf("held trace of day 4: %d spans, %v", len(spans), err)
	}
	if _, err := ch.GetTrace(ctx, "t1", b.TraceID(4)); err == nil {
		t.Error("unheld trace of day 4 still reads")
	}
	if _, _, err := runCLI(t, "retention", "enforce", "--as-of", "yesterday", "--postgres-dsn", env.PostgresDSN); err == nil {
		t.Error("a bad --as-of was accepted")
	}
}

func TestEvidenceVerifyCommand(t *testing.T) {
	m := &retention.Manifest{BundleID: "0123456789abcdef", TenantID: "t1", CreatedBy: "api-key:k", CreatedAt: time.Unix(0, 0).UTC()}
	archive, err := retention.BuildArchive(m, []retention.BundleFile{
		{Name: "spans.ndjson", Signal: "spans", Rows: 1, Data: []byte(strings.Repeat(`{"span":"x"}`, 50) + "\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar.gz")
	if err := os.WriteFile(good, archive, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(archive)
	out := mustRun(t, "evidence", "verify", good, "--sha256", hex.EncodeToString(sum[:]))
	if !strings.Contains(out, "OK") || !strings.Contains(out, "spans.ndjson") {
		t.Errorf("verify printed %q", out)
	}
	bad := filepath.Join(dir, "bad.tar.gz")
	flipped := append([]byte(nil), archive...)
	flipped[len(flipped)/2] ^= 0x01
	if err := os.WriteFile(bad, flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "evidence", "verify", bad); err == nil || !strings.Contains(err.Error(), "FAILED") {
		t.Errorf("a changed byte verified: %v", err)
	}
	// A header byte changes no content; the archive hash still catches it.
	hdr := append([]byte(nil), archive...)
	hdr[4] ^= 0x01 // gzip mtime
	hdrFile := filepath.Join(dir, "hdr.tar.gz")
	if err := os.WriteFile(hdrFile, hdr, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "evidence", "verify", hdrFile, "--sha256", hex.EncodeToString(sum[:])); err == nil {
		t.Error("a changed header byte verified against the archive hash")
	}
}
