package gateway

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/limits"
)

// A request within the tenant's fair share travels in the share lane; one
// beyond it, or holding a record older than LateAfter, in the bulk lane.
// Both are accepted (200): the lane only decides whose batches go first.
func TestLanes(t *testing.T) {
	g := startGateway(t, func(c *Config) {
		c.TenantLimit = limits.Limit{ShareRecordsPerSecond: 10} // burst: one second, 10 records
		c.LateAfter = time.Hour
	})
	at := func(n int, ts time.Time) ptrace.Traces {
		td := sampleTraces(n)
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for i := range spans.Len() {
			spans.At(i).SetStartTimestamp(pcommon.NewTimestampFromTime(ts))
			spans.At(i).SetEndTimestamp(pcommon.NewTimestampFromTime(ts.Add(time.Millisecond)))
		}
		return td
	}
	now := time.Now()
	for _, tc := range []struct {
		name string
		td   ptrace.Traces
		want bus.Lane
	}{
		{"within the share", at(10, now), bus.LaneShare},
		{"late", at(1, now.Add(-2*time.Hour)), bus.LaneBulk},
		{"beyond the share (refilled only after a second)", at(10, now), bus.LaneBulk},
	} {
		if r := postHTTP(t, g, httpRequest{contentType: "application/json", body: jsonBody(t, tc.td)}); r.status != 200 {
			t.Fatalf("%s: status %d %q", tc.name, r.status, r.body)
		}
		calls := g.pub.take()
		if len(calls) != 1 || calls[0].lane != tc.want {
			t.Errorf("%s: published %+v, want one call in lane %v", tc.name, calls, tc.want)
		}
	}
	if got := counterValue(g.svc.metrics.laneRecords.WithLabelValues("traces", "bulk")); got != 11 {
		t.Errorf("lane_records_total{traces,bulk} = %v, want 11", got)
	}
}
