package bench

import (
	"time"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/loadtest/loadgen"
)

// BuildBatches converts the loadgen model's traffic into ready-to-insert
// span batches of about rows rows each: n batches whose traces start at
// start and advance by step per generated request of reqSpans spans.
func BuildBatches(g *loadgen.Generator, tenant string, n, rows, reqSpans int, start time.Time, step time.Duration) []*otlpconv.SpanBatch {
	out := make([]*otlpconv.SpanBatch, 0, n)
	at := start
	for range n {
		b := &otlpconv.SpanBatch{}
		for b.Len() < rows {
			req := g.NextBatch(at, reqSpans)
			b.AppendTraces(tenant, req.Traces)
			at = at.Add(step)
		}
		out = append(out, b)
	}
	return out
}
