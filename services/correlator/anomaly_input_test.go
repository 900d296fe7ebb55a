package correlator

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/rca"
)

func TestAnomalyInputKey(t *testing.T) {
	w := 10 * time.Minute
	end := time.Date(2024, 6, 1, 12, 10, 0, 0, time.UTC)
	onset := end.Add(-8 * time.Minute)
	c := rca.Candidate{Service: "store", Pod: "store-1", Score: 9.5, Onset: &onset, Evidence: []rca.Evidence{
		{Kind: "trace", Summary: "example", Ref: "/api/v1/traces/ab"},
		{Kind: "latency", Summary: "self time of store rose"},
	}}
	rule := DefaultConfig().Incidents
	id := func(c rca.Candidate, end time.Time) string {
		return anomalyInput("t1", &c, end.Add(-w), end, w, rule).Event.EventID
	}
	base := anomalyInput("t1", &c, end.Add(-w), end, w, rule)
	if base.Kind != pgstore.IncidentKindAnomaly || !base.Opens || base.Event.Type != TypeAnomaly || !base.Event.EventTime.Equal(onset) ||
		base.Event.Workload != "store" || base.Event.Score != 9.5 || len(base.Services) != 1 {
		t.Fatalf("input %+v", base)
	}
	if !strings.HasPrefix(base.Event.Summary, "self time of store rose") || !strings.Contains(base.Event.Summary, "/api/v1/traces/ab") ||
		!strings.Contains(base.Title, "self time of store rose") {
		t.Errorf("summary %q title %q", base.Event.Summary, base.Title)
	}
	other := c
	other.Service = "cart"
	otherPod := c
	otherPod.Pod = "store-2"
	for _, tc := range []struct {
		name string
		got  string
		same bool
	}{
		{"same bucket, later window", id(c, end.Add(9*time.Minute)), true},
		{"another pod of the service", id(otherPod, end), true},
		{"next bucket", id(c, end.Add(w)), false},
		{"another service", id(other, end), false},
	} {
		if (tc.got == base.Event.EventID) != tc.same {
			t.Errorf("%s: id %s vs %s, same = %v", tc.name, tc.got, base.Event.EventID, tc.same)
		}
	}
	if s := truncateUTF8(strings.Repeat("日", 10), 7); s != "日日" || !utf8.ValidString(s) {
		t.Errorf("truncate = %q", s)
	}
}
