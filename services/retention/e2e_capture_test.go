package retention

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/retention/retentiontest"
)

// falcoAlert is a Falco alert of tenant on container c, seen at seen.
func falcoAlert(tenant, name string, sev uint8, rule string, c retentiontest.Container, containerID string, seen time.Time) events.Event {
	e := events.Event{
		TenantID: tenant, TimeUnixNano: uint64(seen.Add(-time.Second).UnixNano()), ObservedUnixNano: uint64(seen.UnixNano()),
		Source: events.SourceFalco, Type: events.TypeSecurityAlert, Severity: sev, SeverityText: events.SeverityName(sev),
		Reason: rule, ContainerID: containerID, PodUID: c.PodUID, PodName: c.PodName, Namespace: c.Namespace,
		ExitCode: events.ExitCodeUnknown,
	}
	e.ID = events.NewID(tenant, events.SourceFalco, []byte(name))
	return e
}

// TestCaptureIsPerTenantAndTrigger (issue case 3): a tenant's trigger whose
// hold cannot be placed, followed by more than a capture batch of that
// tenant's alerts, no longer freezes capture: another tenant's alert is
// captured at the first pass; the failing trigger is recorded, counted and
// skipped after MaxCaptureAttempts passes, after which its tenant's later
// alerts are captured too. Rule names over 1024 bytes or with a NUL byte
// place their holds (the reason is clipped).
func TestCaptureIsPerTenantAndTrigger(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	st := newStack(t, now, func(c *Config, _ *Deps) { c.MaxCaptureAttempts = 3 })
	ctx := context.Background()
	rule := []retention.CaptureRule{{ID: "crit", Trigger: retention.TriggerFalco, MinSeverity: "critical", Before: 60, After: 60}}
	for _, tenant := range []string{"acme", "beta"} {
		if _, err := st.pg.SetCaptureRules(ctx, tenant, rule); err != nil {
			t.Fatal(err)
		}
	}
	a1, a2, a3 := retentiontest.NewContainer("a1", "shop", "cart"), retentiontest.NewContainer("a2", "shop", "web"),
		retentiontest.NewContainer("a3", "shop", "db")
	b1 := retentiontest.NewContainer("b1", "shop", "cart")
	at := func(i int) time.Time { return now.Add(-time.Hour + time.Duration(i)*time.Millisecond) }
	longRule := strings.Repeat("Terminal shell in container ", 60) // 1680 bytes
	evs := []events.Event{
		falcoAlert("acme", "long", events.SeverityCritical, longRule, a1, a1.ID, at(1)),
		falcoAlert("acme", "nul", events.SeverityCritical, "Write below etc\x00(injected)", a2, a2.ID, at(2)),
		// Its container id has a NUL byte: no hold can be placed on it.
		falcoAlert("acme", "bad", events.SeverityCritical, "Bad container", a3, "0123456789\x00bcdef", at(3)),
	}
	for i := range captureBatch + 1 { // acme's burst of notices: no rule fires, but they fill batches
		evs = append(evs, falcoAlert("acme", fmt.Sprintf("notice-%d", i), events.SeverityNotice, "Notice", a1, a1.ID, at(10+i)))
	}
	later := falcoAlert("acme", "later", events.SeverityCritical, "Later", a3, a3.ID, at(captureBatch+20))
	other := falcoAlert("beta", "other", events.SeverityCritical, "Other tenant", b1, b1.ID, at(captureBatch+30))
	evs = append(evs, later, other)
	if err := st.ch.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	holdsOf := func(tenant string) map[string]retention.Hold {
		hs, err := st.pg.ListHolds(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]retention.Hold{}
		for _, h := range hs {
			out[string(h.Scope)+"/"+h.Target] = h
		}
		return out
	}

	if _, err := st.svc.EvaluateCaptureRules(ctx); err != nil {
		t.Logf("first pass: %v", err)
	}
	if h := holdsOf("beta"); len(h) != 2 {
		t.Fatalf("the other tenant's alert was not captured at the first pass: %s", describe(h))
	}
	for _, c := range []retentiontest.Container{a1, a2} {
		h, ok := holdsOf("acme")["container/"+c.Short()]
		if !ok || len(h.Reason) > 1024 || strings.ContainsRune(h.Reason, 0) {
			t.Errorf("hold of %s's alert: %v %q", c.Short(), ok, h.Reason)
		}
	}
	passes := 1
	for ; passes < 8; passes++ {
		if _, ok := holdsOf("acme")["container/"+a3.Short()]; ok {
			break
		}
		if _, err := st.svc.EvaluateCaptureRules(ctx); err != nil {
			t.Logf("pass %d: %v", passes+1, err)
		}
	}
	if _, ok := holdsOf("acme")["container/"+a3.Short()]; !ok {
		t.Fatalf("the tenant's later alert was not captured in %d passes", passes)
	}
	key := "crit/" + falcoAlert("acme", "bad", 0, "", a3, "", at(0)).ID.String()
	f, err := st.pg.CaptureFailures(ctx, "acme", []string{key})
	if err != nil {
		t.Fatal(err)
	}
	if got := f[key]; got.Attempts != 3 || !got.Skipped || got.LastError == "" {
		t.Errorf("failing trigger record %+v", got)
	}
	if n := st.counter("aftertrace_retention_capture_failures_total", map[string]string{"trigger": "falco", "reason": "invalid"}); n != 3 {
		t.Errorf("failed attempts counted %v, want 3", n)
	}
	if n := st.counter("aftertrace_retention_capture_failures_total", map[string]string{"reason": reasonSkipped}); n != 1 {
		t.Errorf("skipped triggers counted %v, want 1", n)
	}
	mark, ok, err := st.pg.CaptureWatermark(ctx, "acme", retention.TriggerFalco)
	if err != nil || !ok || mark != int64(later.ObservedUnixNano) {
		t.Errorf("acme's falco watermark %d %v %v, want %d", mark, ok, err, later.ObservedUnixNano)
	}
}
