package reliability

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// seedMonth gives the stack the shape of a deployment that has run for a
// month before the quiet tenant's baseline: the load tenant's traces on
// each of the last 29 days, so the daily partitions exist. Without it the
// baseline runs on one partition, and the first case that writes old data
// (hostile_timestamps) changes the shape of the store rather than testing
// isolation: every trace-by-id lookup then reads its index in ~30 more
// partitions, whoever sent what.
func seedMonth(ctx context.Context, e *env) error {
	now := time.Now()
	for day := 1; day < 30; day++ {
		td, _ := trace("seed", 0, now)
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for i := range 200 { // 200 traces of one span that day
			one, _ := trace("seed", 1, now.Add(-time.Duration(day)*24*time.Hour+time.Duration(i)*time.Second))
			one.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).CopyTo(spans.AppendEmpty())
		}
		a := e.st.export(ctx, e.load.Key, td)
		if a.err != nil || a.status != http.StatusOK {
			return fmt.Errorf("seed day -%d: status %d %v", day, a.status, a.err)
		}
	}
	return e.st.WaitIdle(ctx, 3*time.Minute)
}
