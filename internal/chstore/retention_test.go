package chstore_test

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/retention/retentiontest"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

type staticPolicies map[string][]retention.Policy

func (s staticPolicies) AllPolicies(context.Context) (map[string][]retention.Policy, error) {
	return s, nil
}

func TestParsePartitionKey(t *testing.T) {
	cases := []struct {
		key   string
		date  string
		class string
		ok    bool
	}{
		{"('2026-10-01','d7')", "2026-10-01", "d7", true},
		{"('2026-10-01', 'default')", "2026-10-01", "default", true},
		{"('2026-10-01','hold')", "2026-10-01", "hold", true},
		{"('2026-10-01','x7')", "", "", false},
		{"('2026-10-01','d0')", "", "", false},
		{"20261001", "", "", false},
		{"('2026-13-01','d7')", "", "", false},
		{"('2026-10-01','d7'); DROP", "", "", false},
	}
	for _, c := range cases {
		d, class, ok := chstore.ParsePartitionKey(c.key)
		if ok != c.ok || (ok && (d.Format(time.DateOnly) != c.date || class != c.class)) {
			t.Errorf("ParsePartitionKey(%q) = %v %q %v, want %s %q %v", c.key, d, class, ok, c.date, c.class, c.ok)
		}
	}
}

// partitionSet indexes partitions as "table/date/class" → rows.
func partitionSet(t *testing.T, s *chstore.Store) map[string]uint64 {
	t.Helper()
	parts, err := s.ListPartitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, p := range parts {
		out[p.Table+"/"+p.Date.Format(time.DateOnly)+"/"+p.Class] += p.Rows
	}
	return out
}

// TestRetentionPartitionsHoldsExport runs the retention SQL on a real
// ClickHouse: partitions by (date, class), hold copies (with their index
// rows), partition drops, exports and capture rule events.
func TestRetentionPartitionsHoldsExport(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database = env.ClickHouseAddr, env.ClickHouseDB
	s, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	cls := retention.NewClassifier(staticPolicies{"t1": {{Signal: retention.SignalSpans, Days: 3}}}, nil)
	if err := cls.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	asOf := time.Date(2026, 11, 20, 18, 0, 0, 0, time.UTC)
	a := retentiontest.NewContainer("a", "shop", "checkout")
	b := retentiontest.NewContainer("b", "shop", "checkout")
	if err := retentiontest.Seed(ctx, s, cls, "t1", asOf, 10, []retentiontest.Container{a, b}); err != nil {
		t.Fatal(err)
	}
	day9 := retentiontest.At(asOf, 9).Format(time.DateOnly)
	parts := partitionSet(t, s)
	for key, want := range map[string]uint64{
		"spans/" + day9 + "/d3":                    4,
		"trace_index/" + day9 + "/d3":              2,
		"logs/" + day9 + "/default":                2,
		"log_trace_index/" + day9 + "/default":     2,
		"metric_points/" + day9 + "/default":       2,
		"container_events/" + day9 + "/default":    2,
		"container_sightings/" + day9 + "/d3":      2,
		"container_sightings/" + day9 + "/default": 6,
	} {
		if parts[key] != want {
			t.Errorf("partition %s: %d rows, want %d", key, parts[key], want)
		}
	}

	// A hold on container a copies its rows of every signal into "hold".
	sel := retention.SelectScope("t1", retention.ScopeContainer, a.Short())
	copied, err := s.CopyHeld(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]uint64{"spans": 20, "logs": 10, "metric_points": 10, "container_events": 10} {
		if copied[table] != want {
			t.Errorf("copied %s = %d, want %d (all: %v)", table, copied[table], want, copied)
		}
	}
	// A second copy finds nothing new in a window already copied... but the
	// hold rows themselves are never re-copied.
	sel.Upto = retentiontest.At(asOf, 5)
	again, err := s.CopyHeld(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	if again["spans"] != 10 {
		t.Errorf("second copy of days 5..9: %d spans, want 10 (originals only)", again["spans"])
	}
	parts = partitionSet(t, s)
	for key, want := range map[string]uint64{
		"spans/" + day9 + "/hold":               4, // twice (dedup on read)
		"trace_index/" + day9 + "/hold":         2,
		"container_events/" + day9 + "/hold":    2,
		"container_sightings/" + day9 + "/hold": 8, // container a, 4 signals, copied twice
	} {
		if parts[key] != want {
			t.Errorf("partition %s: %d rows, want %d", key, parts[key], want)
		}
	}

	// Dropping day 9's d3 spans leaves container a's trace readable from the
	// hold copy, container b's gone.
	for _, table := range []string{"spans", "trace_index"} {
		if err := s.DropPartition(ctx, table, retentiontest.At(asOf, 9), "d3"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DropPartition(ctx, "spans", retentiontest.At(asOf, 9), retention.ClassHold); err == nil {
		t.Error("dropping a hold partition was allowed")
	}
	if err := s.DropPartition(ctx, "service_index", retentiontest.At(asOf, 9), "d3"); err == nil {
		t.Error("dropping from an unmanaged table was allowed")
	}
	parts = partitionSet(t, s)
	if _, ok := parts["spans/"+day9+"/d3"]; ok {
		t.Error("spans d3 partition still there after the drop")
	}
	held, err := s.GetTrace(ctx, "t1", a.TraceID(9))
	if err != nil || len(held) != 2 {
		t.Errorf("held trace after drop: %d spans, %v; want 2", len(held), err)
	}
	if _, err := s.GetTrace(ctx, "t1", b.TraceID(9)); err == nil {
		t.Error("unheld trace still readable after its partition was dropped")
	}

	// Export: each row once, FixedString ids as hex.
	var spans, evs []string
	counts, truncated, err := s.ExportSelection(ctx, retention.SelectScope("t1", retention.ScopeContainer, a.Short()), 1000,
		func(signal string, row []byte) error {
			switch signal {
			case "spans":
				spans = append(spans, string(row))
			case "events":
				evs = append(evs, string(row))
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if counts["spans"] != 20 || counts["logs"] != 10 || counts["metrics"] != 10 || counts["events"] != 10 || len(spans) != 20 || truncated["spans"] {
		t.Errorf("export counts %v truncated %v (%d span rows)", counts, truncated, len(spans))
	}
	if len(spans) > 0 && (!strings.Contains(spans[0], `"trace_id":"`) || strings.Contains(spans[0], "retention_class")) {
		t.Errorf("span row %s", spans[0])
	}
	// A trace's bundle: its spans, found by the hex id (the export's hex
	// columns must not stand in for the stored ids in the conditions).
	tid := a.TraceID(5)
	counts, _, err = s.ExportSelection(ctx, retention.SelectScope("t1", retention.ScopeTrace, hex.EncodeToString(tid[:])), 1000,
		func(string, []byte) error { return nil })
	if err != nil || counts["spans"] != 2 {
		t.Errorf("trace export: counts %v, %v; want the trace's 2 spans", counts, err)
	}
	_, truncated, err = s.ExportSelection(ctx, retention.SelectScope("t1", retention.ScopeContainer, a.Short()), 5,
		func(string, []byte) error { return nil })
	if err != nil || !truncated["spans"] {
		t.Errorf("export over the cap: truncated %v, %v", truncated, err)
	}

	// Capture rule events: a Falco alert is found, the plain k8s events not.
	alert := events.Event{
		TenantID: "t1", TimeUnixNano: uint64(asOf.UnixNano()), ObservedUnixNano: uint64(asOf.Add(time.Second).UnixNano()),
		Source: events.SourceFalco, Type: events.TypeSecurityAlert, Severity: events.SeverityCritical, Reason: "Terminal shell in container",
		ContainerID: a.Short(), PodUID: a.PodUID, Namespace: a.Namespace, ExitCode: events.ExitCodeUnknown,
	}
	alert.ID = events.NewID("t1", events.SourceFalco, []byte("shell"))
	if err := s.InsertEvents(ctx, []events.Event{alert}); err != nil {
		t.Fatal(err)
	}
	trig, last, err := s.TriggerEvents(ctx, []string{"t1"}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(trig) != 1 || trig[0].EventID != alert.ID.String() || trig[0].ContainerID != a.Short() || last != alert.ObservedUnixNano {
		t.Fatalf("trigger events %+v last %d", trig, last)
	}
	if trig, _, _ := s.TriggerEvents(ctx, []string{"t1"}, last, 100); len(trig) != 0 {
		t.Errorf("events after the watermark: %+v", trig)
	}
}
