package loadgen

import (
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/events"
)

func TestScenarioEventsParse(t *testing.T) {
	m, err := NewModel(DefaultModelConfig())
	if err != nil {
		t.Fatal(err)
	}
	p := m.Service("payment").Pods[0]
	at := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	evs, err := events.ParseFalco("dev", FalcoAlert(p, at, "Terminal shell in container", "Critical", "A shell was spawned"), at)
	if err != nil || len(evs) != 1 {
		t.Fatalf("falco: %v %v", evs, err)
	}
	if e := evs[0]; e.ContainerID != p.ContainerID[:12] || e.TimeUnixNano != uint64(at.UnixNano()) || e.PodName != p.Name || e.Severity != events.SeverityCritical {
		t.Errorf("falco event %+v", e)
	}
	oom := events.FromLogs("dev", OOMKilledPod(p, at))
	if len(oom) != 1 || oom[0].Type != events.TypeOOMKilled || oom[0].PodUID != p.UID || oom[0].ContainerID != "" ||
		oom[0].TimeUnixNano != uint64(at.Truncate(time.Second).UnixNano()) {
		t.Fatalf("oom events %+v", oom)
	}
}

func TestEventTruth(t *testing.T) {
	m, err := NewModel(DefaultModelConfig())
	if err != nil {
		t.Fatal(err)
	}
	g := NewGenerator(m, 3)
	rec := NewSpanRecorder()
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range 200 {
		rec.Observe(g.NextBatch(start.Add(time.Duration(i)*time.Second), 1).Traces)
	}
	p := m.Service("payment").Pods[0]
	tr := rec.Truth("x", "falco", p, start.Add(100*time.Second), true, 30*time.Second, 10*time.Second)
	byPod := rec.Truth("x", "oom", p, start.Add(100*time.Second), false, 30*time.Second, 10*time.Second)
	if len(tr.TraceIDs) == 0 || len(tr.TraceIDs) != len(byPod.TraceIDs) {
		t.Fatalf("truth: %d by container, %d by pod", len(tr.TraceIDs), len(byPod.TraceIDs))
	}
	if len(tr.Impact) == 0 {
		t.Errorf("no business impact in %+v", tr)
	}
}
