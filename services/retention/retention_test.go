package retention

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// TestMain runs the tests with the testenv servers (started only by the
// end-to-end tests that call testenv.Get) and checks for leaked goroutines.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// fakeData records what the worker asks of ClickHouse.
type fakeData struct {
	calls   []string
	parts   []retention.Partition
	copies  []retention.Selection
	trigger []retention.TriggerEvent
	copyErr error
}

func (f *fakeData) ListPartitions(context.Context) ([]retention.Partition, error) {
	f.calls = append(f.calls, "list")
	return f.parts, nil
}

func (f *fakeData) DropPartition(_ context.Context, table string, date time.Time, class string) error {
	f.calls = append(f.calls, "drop "+table+"/"+date.Format(time.DateOnly)+"/"+class)
	return nil
}

func (f *fakeData) CopyHeld(_ context.Context, sel retention.Selection) (map[string]uint64, error) {
	f.calls = append(f.calls, "copy")
	f.copies = append(f.copies, sel)
	return map[string]uint64{"spans": 3}, f.copyErr
}

func (f *fakeData) CopyLateHeld(_ context.Context, _ retention.Selection, table string, _ []time.Time) (uint64, error) {
	f.calls = append(f.calls, "late "+table)
	return 0, f.copyErr
}

func (f *fakeData) RescueKept(context.Context, string, []retention.Partition, time.Time, retention.Keep, []string) (uint64, error) {
	return 0, nil
}

func (f *fakeData) PartitionTenantRows(_ context.Context, table string, _ time.Time, _ string, _ []string) (uint64, uint64, error) {
	f.calls = append(f.calls, "count "+table)
	return 1, 0, nil
}

func (f *fakeData) DeletePartitionRows(_ context.Context, table string, _ []chstore.KeptRows) error {
	f.calls = append(f.calls, "delete "+table)
	return nil
}

func (f *fakeData) ExpiredRows(context.Context, string, time.Time, time.Time, retention.Keep, []string) (map[time.Time]uint64, error) {
	return nil, nil
}

func (f *fakeData) DeleteExpired(context.Context, string, time.Time, time.Time, retention.Keep, []string) error {
	return nil
}

func (f *fakeData) WaitMutations(context.Context, string) error { return nil }

func (f *fakeData) ExportSelection(context.Context, retention.Selection, int, chstore.ExportRow) (map[string]int64, map[string]bool, error) {
	return nil, nil, nil
}

func (f *fakeData) TenantTriggerEvents(_ context.Context, tenant, trigger string, after, upto uint64, _ int) ([]retention.TriggerEvent, error) {
	var out []retention.TriggerEvent
	for _, e := range f.trigger {
		if e.TenantID == tenant && e.SeenNs > after && e.SeenNs <= upto && (trigger != retention.TriggerFalco || e.Source == "falco") {
			out = append(out, e)
		}
	}
	return out, nil
}

// fakeState is an in-memory StateStore.
type fakeState struct {
	holds    []retention.Hold
	rules    map[string][]retention.CaptureRule
	state    map[string]int64
	marks    map[string]int64
	created  []pgstore.NewHold
	keys     map[string]bool
	failures map[string]retention.CaptureFailure
}

func (f *fakeState) RecordHoldSyncFailure(_ context.Context, id, msg string) error {
	for i := range f.holds {
		if f.holds[i].ID == id {
			f.holds[i].SyncError = msg
			f.holds[i].SyncFailures++
		}
	}
	return nil
}

func (f *fakeState) PlacedTriggerKeys(_ context.Context, _ string, keys []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, k := range keys {
		out[k] = f.keys[k]
	}
	return out, nil
}

func (f *fakeState) AllPolicies(context.Context) (map[string][]retention.Policy, error) {
	return nil, nil
}

func (f *fakeState) CaptureWatermark(_ context.Context, tenant, trigger string) (int64, bool, error) {
	v, ok := f.marks[tenant+"/"+trigger]
	return v, ok, nil
}

func (f *fakeState) SetCaptureWatermark(_ context.Context, tenant, trigger string, ns int64) error {
	if f.marks == nil {
		f.marks = map[string]int64{}
	}
	f.marks[tenant+"/"+trigger] = max(f.marks[tenant+"/"+trigger], ns)
	return nil
}

func (f *fakeState) CaptureFailures(_ context.Context, _ string, keys []string) (map[string]retention.CaptureFailure, error) {
	out := map[string]retention.CaptureFailure{}
	for _, k := range keys {
		if c, ok := f.failures[k]; ok {
			out[k] = c
		}
	}
	return out, nil
}

func (f *fakeState) RecordCaptureFailure(_ context.Context, _ string, c retention.CaptureFailure, maxAttempts int) (retention.CaptureFailure, error) {
	if f.failures == nil {
		f.failures = map[string]retention.CaptureFailure{}
	}
	c.Attempts = f.failures[c.Key].Attempts + 1
	c.Skipped = c.Attempts >= maxAttempts
	f.failures[c.Key] = c
	return c, nil
}

func (f *fakeState) ClearCaptureFailure(_ context.Context, _, key string) error {
	delete(f.failures, key)
	return nil
}

func (f *fakeState) OpenHolds(context.Context) ([]retention.Hold, error) {
	var out []retention.Hold
	for _, h := range f.holds {
		if h.Status == retention.HoldOpen {
			out = append(out, h)
		}
	}
	return out, nil
}

func (f *fakeState) ExpireHolds(_ context.Context, now time.Time) ([]retention.Hold, error) {
	for i := range f.holds {
		if u := f.holds[i].Until; u != nil && u.Before(now) {
			f.holds[i].Status = retention.HoldExpired
		}
	}
	return nil, nil
}

func (f *fakeState) AdvanceHold(_ context.Context, id string, upto time.Time, rows uint64) error {
	for i := range f.holds {
		if f.holds[i].ID == id {
			f.holds[i].CopiedUntil = &upto
			f.holds[i].CopiedRows += rows
		}
	}
	return nil
}

func (f *fakeState) CreateHold(_ context.Context, tenantID string, n pgstore.NewHold) (retention.Hold, bool, error) {
	if f.keys == nil {
		f.keys = map[string]bool{}
	}
	if f.keys[n.TriggerKey] {
		return retention.Hold{}, false, nil
	}
	f.keys[n.TriggerKey] = true
	f.created = append(f.created, n)
	return retention.Hold{TenantID: tenantID, Scope: n.Scope, Target: n.ID}, true, nil
}

func (f *fakeState) AllCaptureRules(context.Context) (map[string][]retention.CaptureRule, error) {
	return f.rules, nil
}

func (f *fakeState) StateNs(_ context.Context, key string) (int64, error) { return f.state[key], nil }

func (f *fakeState) SetStateNs(_ context.Context, key string, v int64) error {
	if f.state == nil {
		f.state = map[string]int64{}
	}
	f.state[key] = v
	return nil
}

func (f *fakeState) ClaimBundle(context.Context, time.Duration, int) (retention.Bundle, bool, error) {
	return retention.Bundle{}, false, nil
}

func (f *fakeState) FailCrashedBundles(context.Context, time.Duration, int) ([]retention.Bundle, error) {
	return nil, nil
}

func (f *fakeState) HeartbeatBundle(context.Context, string, int) (bool, error) { return true, nil }

func (f *fakeState) RequeueBundle(context.Context, retention.Bundle) error { return nil }

func (f *fakeState) TenantBundleBytes(context.Context, string) (int64, error) { return 0, nil }

func (f *fakeState) FinishBundle(context.Context, retention.Bundle, *retention.Manifest, io.Reader, int64, string) error {
	return nil
}

func (f *fakeState) FailBundle(context.Context, retention.Bundle, string, string) error { return nil }

var asOf = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func newTestService(t *testing.T, data *fakeData, state *fakeState) *Service {
	t.Helper()
	cfg := DefaultConfig()
	cfg.SettleDelay = time.Minute
	s, err := New(cfg, Deps{Data: data, State: state, Registry: prometheus.NewRegistry(), Now: func() time.Time { return asOf }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEnforceSyncsHoldsBeforeDropping(t *testing.T) {
	data := &fakeData{parts: []retention.Partition{
		{Table: "spans", Date: asOf.AddDate(0, 0, -40), Class: "default"},
		{Table: "spans", Date: asOf.AddDate(0, 0, -40), Class: "hold"},
		{Table: "spans", Date: asOf.AddDate(0, 0, -1), Class: "d7"},
	}}
	state := &fakeState{holds: []retention.Hold{{ID: "h1", TenantID: "t", Scope: "container", Target: "abcdefabcdef", Status: "open"}}}
	s := newTestService(t, data, state)

	rep, err := s.Enforce(context.Background(), asOf, true)
	if err != nil || len(rep.Drops) != 1 || slices.Contains(data.calls, "copy") || len(data.calls) != 1 {
		t.Fatalf("dry run: %+v %v, calls %v", rep, err, data.calls)
	}
	rep, err = s.Enforce(context.Background(), asOf, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"list", "copy", "list", "late spans", "drop spans/2026-10-11/default"}
	if !slices.Equal(data.calls, want) {
		t.Errorf("calls %v, want %v", data.calls, want)
	}
	if state.holds[0].CopiedUntil == nil || !state.holds[0].CopiedUntil.Equal(asOf.Add(-time.Minute)) || state.holds[0].CopiedRows != 3 {
		t.Errorf("hold after sync %+v", state.holds[0])
	}

	// A failed hold copy keeps its tenant's rows: the partition, where
	// only that tenant has rows, is not dropped; the hold records why.
	data.calls, data.copyErr = nil, errors.New("clickhouse down")
	state.holds[0].CopiedUntil = nil
	rep, err = s.Enforce(context.Background(), asOf, false)
	if err != nil || slices.ContainsFunc(data.calls, func(c string) bool { return c[:4] == "drop" }) || len(rep.Kept) != 1 ||
		len(rep.HoldFailures) != 1 || state.holds[0].SyncFailures != 1 || state.holds[0].SyncError == "" {
		t.Errorf("enforce after a failed copy: %v, calls %v, report %+v, hold %+v", err, data.calls, rep, state.holds[0])
	}
}

func TestSyncHoldsWindows(t *testing.T) {
	start := asOf.Add(-48*time.Hour + 500*time.Millisecond)
	end := asOf.Add(-24 * time.Hour)
	until := asOf.Add(-time.Hour)
	data := &fakeData{}
	state := &fakeState{holds: []retention.Hold{
		{ID: "window", TenantID: "t", Scope: "pod", Target: "p", Status: "open", Start: &start, End: &end},
		{ID: "expired", TenantID: "t", Scope: "pod", Target: "q", Status: "open", Until: &until},
		{ID: "incident", TenantID: "t", Scope: "incident", Target: "i", Status: "open"},
	}}
	s := newTestService(t, data, state)
	if _, err := s.SyncHolds(context.Background()); err == nil || !strings.Contains(err.Error(), "hold incident") {
		t.Fatalf("sync with an incident hold and no resolver: %v", err)
	}
	if len(data.copies) != 1 {
		t.Fatalf("copies %+v (the expired and the incident hold without resolver copy nothing)", data.copies)
	}
	c := data.copies[0]
	if !c.After.Equal(asOf.Add(-48*time.Hour-time.Second)) || !c.Upto.Equal(end) || !slices.Equal(c.Pods, []string{"p"}) {
		t.Errorf("copy window %v..%v %+v", c.After, c.Upto, c)
	}
	// Done up to its end: the next sync copies nothing for it.
	if _, err := s.SyncHolds(context.Background()); len(data.copies) != 1 {
		t.Errorf("second sync copied again: %d, %v", len(data.copies), err)
	}
	if state.holds[1].Status != retention.HoldExpired {
		t.Errorf("hold past until: %s", state.holds[1].Status)
	}
}

func TestCaptureRulesPlaceHoldsOnce(t *testing.T) {
	alert := retention.TriggerEvent{TenantID: "t", EventID: "e1", TimeNs: uint64(asOf.UnixNano()), SeenNs: uint64(asOf.UnixNano()), Source: "falco",
		Severity: 18, ContainerID: "abcdefabcdef", PodUID: "pod-1", Namespace: "shop"}
	warning := alert
	warning.EventID, warning.Severity = "e2", 13
	data := &fakeData{trigger: []retention.TriggerEvent{alert, warning}}
	state := &fakeState{rules: map[string][]retention.CaptureRule{
		"t": {{ID: "r1", Trigger: "falco", MinSeverity: "critical", Before: 60, After: 120}},
	}}
	s := newTestService(t, data, state)
	for range 2 {
		if _, err := s.EvaluateCaptureRules(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(state.created) != 2 {
		t.Fatalf("holds placed %+v", state.created)
	}
	h := state.created[0]
	if h.Scope != "container" || h.ID != "abcdefabcdef" || !h.Start.Equal(asOf.Add(-time.Minute)) || !h.End.Equal(asOf.Add(2*time.Minute)) ||
		h.Actor != "capture-rule:r1" || state.created[1].Scope != "pod" {
		t.Errorf("hold %+v", h)
	}
	if state.marks["t/falco"] != int64(alert.SeenNs) {
		t.Errorf("watermark %d", state.marks["t/falco"])
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.HoldSyncInterval = 0
	c.DefaultDays["traces"] = 3
	c.MaxBundleRows = 0
	err := c.Validate()
	for _, want := range []string{"hold sync", "traces", "bundle rows"} {
		if err == nil || !contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to mention %q", err, want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

type fakeIncidents struct{}

func (fakeIncidents) IncidentSelection(_ context.Context, tenantID, id string) (retention.Selection, error) {
	return retention.Selection{Containers: []string{"c-of-" + id}, Pods: []string{"p-of-" + id}}, nil
}

func (fakeIncidents) IncidentsOpenedSince(_ context.Context, _ []string, since time.Time, _ int) ([]pgstore.OpenedIncident, error) {
	inc := pgstore.OpenedIncident{TenantID: "t", ID: "inc1", Namespace: "shop", FirstEventAt: asOf.Add(-time.Hour), OpenedAt: asOf}
	if !inc.OpenedAt.After(since) {
		return nil, nil
	}
	return []pgstore.OpenedIncident{inc}, nil
}

func TestIncidentRuleAndHold(t *testing.T) {
	data := &fakeData{}
	state := &fakeState{rules: map[string][]retention.CaptureRule{
		"t": {{ID: "inc", Trigger: "incident", Before: 600, After: 600}, {ID: "other-ns", Trigger: "incident", Namespace: "payments"}},
	}}
	cfg := DefaultConfig()
	cfg.CaptureLookback = 0
	s, err := New(cfg, Deps{Data: data, State: state, Incidents: fakeIncidents{}, Now: func() time.Time { return asOf }})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.EvaluateCaptureRules(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(state.created) != 1 || state.created[0].Scope != retention.ScopeIncident || state.created[0].ID != "inc1" ||
		!state.created[0].Start.Equal(asOf.Add(-time.Hour-10*time.Minute)) {
		t.Fatalf("incident holds %+v", state.created)
	}
	state.holds = []retention.Hold{{ID: "h", TenantID: "t", Scope: retention.ScopeIncident, Target: "inc1", Status: "open"}}
	if _, err := s.SyncHolds(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(data.copies) != 1 || data.copies[0].Containers[0] != "c-of-inc1" || data.copies[0].TenantID != "t" {
		t.Errorf("incident hold copy %+v", data.copies)
	}
}
