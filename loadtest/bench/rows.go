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

// timeSpan is the time from the earliest span start to the latest span
// end over batches.
func timeSpan(batches []*otlpconv.SpanBatch) time.Duration {
	var lo, hi uint64
	for _, b := range batches {
		for i := range b.Len() {
			if lo == 0 || b.StartNs[i] < lo {
				lo = b.StartNs[i]
			}
			hi = max(hi, b.EndNs[i])
		}
	}
	return time.Duration(hi - lo)
}
