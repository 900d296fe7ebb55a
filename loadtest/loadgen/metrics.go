package loadgen

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Histogram bucket bounds of http.server.duration, in milliseconds.
var durationBounds = []float64{1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000}

// podStats accumulates what a pod served since the last metrics export.
type podStats struct {
	total     uint64 // cumulative requests (for the sum)
	errors    uint64 // cumulative failures
	count     uint64 // requests in this interval
	sum       float64
	min, max  float64
	buckets   []uint64
	exemplars []exemplar // at most one per bucket: the latest
}

type exemplar struct {
	ms      float64
	traceID pcommon.TraceID
	spanID  pcommon.SpanID
	bucket  int
	valid   bool
}

// EnableMetrics makes the generator keep per-pod request statistics that
// Metrics turns into OTLP metrics.
func (g *Generator) EnableMetrics() {
	if g.stats == nil {
		g.stats = map[*Pod]*podStats{}
	}
}

func (g *Generator) observe(p *Pod, tid pcommon.TraceID, sid pcommon.SpanID, d time.Duration, failed bool) {
	if g.stats == nil {
		return
	}
	st := g.stats[p]
	if st == nil {
		st = &podStats{buckets: make([]uint64, len(durationBounds)+1), exemplars: make([]exemplar, len(durationBounds)+1)}
		g.stats[p] = st
	}
	ms := float64(d) / float64(time.Millisecond)
	b := len(durationBounds)
	for i, ub := range durationBounds {
		if ms <= ub {
			b = i
			break
		}
	}
	st.total++
	if failed {
		st.errors++
	}
	if st.count == 0 || ms < st.min {
		st.min = ms
	}
	if st.count == 0 || ms > st.max {
		st.max = ms
	}
	st.count++
	st.sum += ms
	st.buckets[b]++
	st.exemplars[b] = exemplar{ms: ms, traceID: tid, spanID: sid, bucket: b, valid: true}
}

// Metrics exports, for every pod of the model, the interval ending at at
// (which started at from): container CPU and memory gauges, a cumulative
// request counter and a delta duration histogram whose exemplars point at
// spans generated in the interval. Interval statistics are reset.
func (g *Generator) Metrics(from, at time.Time) (pmetric.Metrics, int) {
	md := pmetric.NewMetrics()
	points := 0
	ts := pcommon.NewTimestampFromTime(at)
	start := pcommon.NewTimestampFromTime(from)
	for _, s := range g.m.Services {
		for _, p := range s.Pods {
			rm := md.ResourceMetrics().AppendEmpty()
			p.Resource.CopyTo(rm.Resource().Attributes())
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName("shop/metrics")
			ms := sm.Metrics()
			st := g.stats[p]

			cpu := ms.AppendEmpty()
			cpu.SetName("container.cpu.utilization")
			cpu.SetUnit("1")
			dp := cpu.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			load := 0.05 + 0.2*g.rng.Float64()
			if st != nil {
				load += float64(st.count) / 2000
			}
			dp.SetDoubleValue(min(load, 1))

			mem := ms.AppendEmpty()
			mem.SetName("container.memory.usage")
			mem.SetUnit("By")
			dp = mem.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetIntValue(int64(200<<20 + g.rng.IntN(50<<20)))
			points += 2
			if st == nil {
				continue
			}

			req := ms.AppendEmpty()
			req.SetName("http.server.request.count")
			req.SetUnit("{request}")
			sum := req.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			for _, outcome := range []struct {
				name string
				n    uint64
			}{{"ok", st.total - st.errors}, {"error", st.errors}} {
				dp := sum.DataPoints().AppendEmpty()
				dp.SetStartTimestamp(0)
				dp.SetTimestamp(ts)
				dp.SetIntValue(int64(outcome.n))
				dp.Attributes().PutStr("outcome", outcome.name)
				points++
			}

			dur := ms.AppendEmpty()
			dur.SetName("http.server.duration")
			dur.SetUnit("ms")
			h := dur.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			hp := h.DataPoints().AppendEmpty()
			hp.SetStartTimestamp(start)
			hp.SetTimestamp(ts)
			hp.SetCount(st.count)
			hp.SetSum(st.sum)
			if st.count > 0 {
				hp.SetMin(st.min)
				hp.SetMax(st.max)
			}
			hp.ExplicitBounds().FromRaw(durationBounds)
			hp.BucketCounts().FromRaw(st.buckets)
			for _, ex := range st.exemplars {
				if !ex.valid {
					continue
				}
				e := hp.Exemplars().AppendEmpty()
				e.SetTimestamp(ts)
				e.SetDoubleValue(ex.ms)
				e.SetTraceID(ex.traceID)
				e.SetSpanID(ex.spanID)
			}
			points++
			st.count, st.sum, st.min, st.max = 0, 0, 0, 0
			st.buckets = make([]uint64, len(durationBounds)+1)
			st.exemplars = make([]exemplar, len(durationBounds)+1)
		}
	}
	return md, points
}
