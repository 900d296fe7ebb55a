package correlator

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// Links get the retention class of the tenant's "links" policies for the
// event's namespace and workload (the service of its spans when the event
// names no workload), like the writer classifies the other signals.
func TestLinksRetentionClass(t *testing.T) {
	ctx := context.Background()
	h := startHarnessWith(t, testConfig(), func(h *harness, d *Deps) {
		if err := h.pg.SetPolicies(ctx, "t1", []retention.Policy{
			{Signal: retention.SignalLinks, Days: 90, Namespace: "shop"},
			{Signal: retention.SignalLinks, Days: 3, Service: "frontend"},
			{Signal: retention.SignalSpans, Days: 7},
		}); err != nil {
			t.Fatal(err)
		}
		cls := retention.NewClassifier(h.pg, nil)
		if err := cls.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		d.Classifier = cls
	})
	evTime := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	spansAround(t, h.ch, evTime.Add(-6*time.Minute), 50)
	mk := func(raw, container, pod, namespace, workload string) events.Event {
		return events.Event{ID: events.NewID("t1", events.SourceFalco, []byte(raw)), TimeUnixNano: uint64(evTime.UnixNano()),
			Source: events.SourceFalco, Type: events.TypeSecurityAlert, Severity: events.SeverityNotice, ContainerID: container,
			PodName: pod, Namespace: namespace, Workload: workload, ExitCode: events.ExitCodeUnknown}
	}
	tests := []struct {
		name string
		ev   events.Event
		want string
	}{
		{"namespace policy (payment's container in shop)", mk("pay", cPay[:12], "", "shop", ""), retention.DaysClass(90)},
		{"service policy wins over namespace (frontend's pod by name)", mk("web", "", "frontend-pod", "shop", ""), retention.DaysClass(3)},
		{"no policy matches (workload batch, no namespace)", mk("batch", cWeb, "", "", "batch"), retention.ClassDefault},
	}
	var evs []events.Event
	for _, tc := range tests {
		evs = append(evs, tc.ev)
	}
	h.publish(t, "c1", evs...)
	waitUntil(t, "acked", 30*time.Second, func() bool {
		return testutil.ToFloat64(h.svc.m.messages.WithLabelValues("acked", "")) == 1
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			links, err := h.ch.LinksOfEvent(ctx, "t1", tc.ev.ID, 1000)
			if err != nil || len(links) == 0 {
				t.Fatalf("links: %d %v", len(links), err)
			}
			for _, l := range links {
				if l.Class != tc.want {
					t.Fatalf("link class %q, want %q", l.Class, tc.want)
				}
			}
		})
	}
}
