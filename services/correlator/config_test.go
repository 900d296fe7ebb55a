package correlator

import (
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := DefaultConfig()
	c.Durable, c.Workers, c.MaxTracesPerEvent, c.RetryMin = "", 0, 0, 0
	c.Anomalies.Window, c.Anomalies.MaxTenants, c.Incidents.AnomalyMinScore = time.Second, 0, -1
	err := c.Validate()
	for _, want := range []string{"durable", "workers", "max traces", "retry", "anomaly window", "anomaly max tenants", "anomaly min score"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}

func TestResolvePod(t *testing.T) {
	old := chstore.PodSighting{UID: "old", FirstSeenNs: 100, LastSeenNs: 200}
	repl := chstore.PodSighting{UID: "new", FirstSeenNs: 300, LastSeenNs: 400}
	overlap := chstore.PodSighting{UID: "twin", FirstSeenNs: 150, LastSeenNs: 350}
	tests := []struct {
		name      string
		sightings []chstore.PodSighting
		t         uint64
		want      string
		ok        bool
	}{
		{"alive", []chstore.PodSighting{old, repl}, 150, "old", true},
		{"replacement alive", []chstore.PodSighting{old, repl}, 350, "new", true},
		{"between: the one that just ended", []chstore.PodSighting{old, repl}, 250, "old", true},
		{"only later", []chstore.PodSighting{repl}, 250, "new", true},
		{"two alive: ambiguous", []chstore.PodSighting{old, overlap}, 160, "", false},
		{"none", nil, 1, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := resolvePod(tc.sightings, tc.t)
			if got != tc.want || ok != tc.ok {
				t.Errorf("resolvePod = %q %v, want %q %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
