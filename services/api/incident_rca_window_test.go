package api

import (
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/pgstore"
)

func TestIncidentRCAWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 8, 0, 8, 51, 0, time.UTC)
	tests := []struct {
		name             string
		kind             string
		first, last, opn time.Time
		start, end       time.Time
	}{
		{"opened with its event", pgstore.IncidentKindEvent, t0, t0.Add(2 * time.Minute), t0.Add(2*time.Minute + time.Second),
			t0.Add(-10 * time.Minute), t0.Add(3*time.Minute + time.Second)},
		{"anomaly opened 10 min after its onset", pgstore.IncidentKindAnomaly, t0, t0, t0.Add(10 * time.Minute),
			t0.Add(-10 * time.Minute), t0.Add(10*time.Minute + time.Second)},
		{"anomaly opened late", pgstore.IncidentKindAnomaly, t0, t0, t0.Add(24 * time.Hour),
			t0.Add(-10 * time.Minute), t0.Add(10*time.Minute + time.Second)},
		{"event replayed a day later", pgstore.IncidentKindEvent, t0, t0, t0.Add(24 * time.Hour),
			t0.Add(-10 * time.Minute), t0.Add(time.Minute + time.Second)},
	}
	for _, tc := range tests {
		s, e := incidentRCAWindow(pgstore.Incident{Kind: tc.kind, FirstEventAt: tc.first, LastEventAt: tc.last, OpenedAt: tc.opn})
		if !s.Equal(tc.start) || !e.Equal(tc.end) {
			t.Errorf("%s: window %v – %v, want %v – %v", tc.name, s, e, tc.start, tc.end)
		}
	}
}
