package correlator

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

type rulesJSON struct {
	MinSeverity     int      `json:"minSeverity"`
	MinSeverityText string   `json:"minSeverityText"`
	EventTypes      []string `json:"eventTypes"`
	AnomalyMinScore float64  `json:"anomalyMinScore"`
	Custom          bool     `json:"custom"`
	UpdatedAt       *string  `json:"updatedAt"`
}

// A tenant's incident rules, set through PUT /api/v1/incident-rules,
// replace the configured severity rule for that tenant only: under t1's
// rule (emergency, or a security alert) a critical container error opens
// nothing and a notice-level security alert opens an incident; after t1
// sets error again, a critical error opens one. Bad input is a 400 naming
// the field; tenant t2 sees the defaults, not t1's rules.
func TestIncidentRulesPerTenant(t *testing.T) {
	h := startHarness(t, testConfig())
	base := startAPI(t, h)
	ctx := context.Background()
	url := base + "/api/v1/incident-rules"

	var got rulesJSON
	if code := httpJSON(t, http.MethodPut, url, "k1", `{"minSeverity": 21, "eventTypes": ["security_alert"], "anomalyMinScore": 0}`, &got); code != http.StatusOK {
		t.Fatalf("put: %d %+v", code, got)
	}
	if !got.Custom || got.MinSeverity != 21 || got.MinSeverityText != "emergency" || len(got.EventTypes) != 1 || got.UpdatedAt == nil {
		t.Fatalf("put answered %+v", got)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"anomalyMinScore": 1}`, "minSeverity"},
		{`{"minSeverity": 30, "anomalyMinScore": 1}`, "minSeverity"},
		{`{"minSeverity": 0, "anomalyMinScore": 1}`, "minSeverity"},
		{`{"minSeverity": 13}`, "anomalyMinScore"},
		{`{"minSeverity": 13, "anomalyMinScore": -1}`, "anomalyMinScore"},
		{`{"minSeverity": 13, "anomalyMinScore": 1e9}`, "anomalyMinScore"},
		{`{"minSeverity": 13, "anomalyMinScore": 1, "eventTypes": ["oom_killed", "nope"]}`, "eventTypes[1]"},
		{`{"minSeverity": 13, "anomalyMinScore": 1, "eventTypes": ["oom_killed", "oom_killed"]}`, "eventTypes[1]"},
		{`{"minSeverity": 13, "anomalyMinScore": 1, "bogus": 1}`, "body"},
		{`{"minSeverity": "high", "anomalyMinScore": 1}`, "body"},
		{``, "body"},
	} {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if code := httpJSON(t, http.MethodPut, url, "k1", tc.body, &e); code != http.StatusBadRequest || e.Error.Code != "invalid_argument" || !strings.HasPrefix(e.Error.Message, tc.field) {
			t.Errorf("%s: %d %+v, want 400 naming %s", tc.body, code, e.Error, tc.field)
		}
	}
	var mine, theirs rulesJSON
	if code := httpJSON(t, http.MethodGet, url, "k1", "", &mine); code != http.StatusOK || !mine.Custom || mine.MinSeverity != 21 || mine.AnomalyMinScore != 0 {
		t.Fatalf("get t1 after bad puts: %d %+v", code, mine)
	}
	if code := httpJSON(t, http.MethodGet, url, "k2", "", &theirs); code != http.StatusOK || theirs.Custom || theirs.MinSeverity != 17 ||
		theirs.AnomalyMinScore != DefaultAnomalyMinScore || theirs.UpdatedAt != nil {
		t.Fatalf("get t2 (defaults): %d %+v", code, theirs)
	}

	evTime := time.Now().Add(-10 * time.Minute)
	critical := events.Event{ID: events.NewID("t1", events.SourceK8sObject, []byte("crit")), TimeUnixNano: uint64(evTime.UnixNano()),
		Source: events.SourceK8sObject, Type: events.TypeContainerError, Severity: events.SeverityCritical, Reason: "Error",
		Namespace: "shop", Workload: "api", ExitCode: 1}
	alert := events.Event{ID: events.NewID("t1", events.SourceFalco, []byte("shell")), TimeUnixNano: uint64(evTime.Add(time.Second).UnixNano()),
		Source: events.SourceFalco, Type: events.TypeSecurityAlert, Severity: events.SeverityNotice, Reason: "Terminal shell in container",
		Namespace: "ops", Workload: "batch", ExitCode: events.ExitCodeUnknown}
	h.publish(t, "r1", critical, alert)
	acked := func(n float64) func() bool {
		return func() bool { return testutil.ToFloat64(h.svc.m.messages.WithLabelValues("acked", "")) == n }
	}
	waitUntil(t, "first message acked", 30*time.Second, acked(1))
	list, err := h.pg.ListIncidents(ctx, pgstore.IncidentQuery{TenantID: "t1", Start: evTime.Add(-time.Hour), End: evTime.Add(time.Hour)})
	if err != nil || len(list) != 1 || list[0].ID != alert.ID.String() || list[0].Kind != pgstore.IncidentKindEvent {
		t.Fatalf("incidents under t1's rule: %+v %v, want only the alert's", list, err)
	}
	if none := testutil.ToFloat64(h.svc.m.incidents.WithLabelValues(pgstore.IncidentOutcomeNone)); none != 1 {
		t.Errorf("events below t1's rule = %v, want 1", none)
	}

	// Back to error and above: another critical error opens an incident.
	if code := httpJSON(t, http.MethodPut, url, "k1", `{"minSeverity": 17, "anomalyMinScore": 5}`, &got); code != http.StatusOK || len(got.EventTypes) != 0 {
		t.Fatalf("put: %d %+v", code, got)
	}
	critical2 := critical
	critical2.ID = events.NewID("t1", events.SourceK8sObject, []byte("crit2"))
	h.publish(t, "r2", critical2)
	waitUntil(t, "second message acked", 30*time.Second, acked(2))
	if _, err := h.pg.GetIncident(ctx, "t1", critical2.ID.String()); err != nil {
		t.Fatalf("the critical error under the restored rule opened no incident: %v", err)
	}
}
