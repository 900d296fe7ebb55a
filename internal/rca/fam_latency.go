package rca

import (
	"fmt"
	"math"
	"net/url"
)

// tailLevel is the baseline quantile whose exceedance the latency test
// counts: a slowdown puts far more than 1 − tailLevel of the window's
// calls above it. The 90th percentile is far enough out to ignore the
// baseline's ordinary variation and low enough that earlier incidents in
// the baseline (a few percent of its calls) barely move it.
const tailLevel = 0.9

// minWindowSpans is the fewest spans a latency key needs in the window.
const minWindowSpans = 3

type latKey struct {
	kind, svc, pod, op, callee, caller, callerPod string
}

// latencyFindings compares, for every span key, the window's distribution
// of the span's own time (self) or of the caller → callee gap (inbound)
// with the baseline's: how many of the window's spans exceed the
// baseline's 90th percentile, against the tenth expected (a binomial
// tail), calibrated by what the baseline's own window-long stretches
// show. Self time is the service's own (CPU, locks, its own I/O); the gap
// is the network and queueing between caller and callee. A caller whose
// gaps to several callees all widened is slow itself, so the shared part
// moves to the caller.
func latencyFindings(spans []SpanStat, fr frame) ([]finding, map[string]int) {
	type acc struct {
		base, win mixture
		buckets   map[int64]*mixture
	}
	series := map[latKey]*acc{}
	for _, s := range spans {
		if s.Count == 0 || len(s.Q) != len(levels) {
			continue
		}
		k := latKey{kind: s.Kind, svc: serviceOf(s.Service, s.Pod, ""), pod: s.Pod, op: s.Operation}
		if s.Kind == SpanInbound {
			k.callee, k.caller, k.callerPod = s.Callee, serviceOf(s.Caller, s.CallerPod, ""), s.CallerPod
		}
		a := series[k]
		if a == nil {
			a = &acc{buckets: map[int64]*mixture{}}
			series[k] = a
		}
		if fr.inWindow(s.T) {
			a.win.add(s.Q, float64(s.Count))
		} else {
			a.base.add(s.Q, float64(s.Count))
			b := a.buckets[s.T]
			if b == nil {
				b = &mixture{}
				a.buckets[s.T] = b
			}
			b.add(s.Q, float64(s.Count))
		}
	}
	var out []finding
	judged := map[string]int{}
	type callerKey struct{ svc, pod string }
	byCaller := map[callerKey][]int{}
	byCallerZ := map[callerKey][]float64{}
	for k, a := range series {
		if a.win.n < minWindowSpans || len(a.buckets) < minBase {
			continue
		}
		t := a.base.quantile(tailLevel)
		p0 := 1 - a.base.cdf(t)
		if t <= 0 || p0 <= 0 {
			continue
		}
		fam := famLatency
		if k.kind == SpanInbound {
			fam = famNetwork
		}
		judged[fam]++
		kw := a.win.above(t)
		sig := surpriseBinom(kw, a.win.n, p0)
		medW, medB := a.win.quantile(0.5), a.base.quantile(0.5)
		// effect: the shift of the median in robust standard deviations of
		// the baseline's (log) samples, at least a tenth (latencyFloor)
		spread := math.Log(a.base.quantile(0.75)/max(a.base.quantile(0.25), 1)) / 1.349
		z := math.Log(max(medW, 1)/max(medB, 1)) / max(spread, latencyFloor)
		if sig < minSignificance {
			z = min(z, zOfSurprise(sig))
		}
		if k.kind == SpanInbound {
			ck := callerKey{k.caller, k.callerPod}
			byCallerZ[ck] = append(byCallerZ[ck], z)
		}
		if z < 1 {
			continue
		}
		f := finding{family: fam, svc: k.svc, pod: k.pod, z: z, s: surpriseZ(z), spanBacked: true,
			ref: "/api/v1/traces?service=" + url.QueryEscape(k.svc) + "&" + winQuery(fr), key: k.kind + "|" + k.op}
		share := fmt.Sprintf("%.0f of %.0f calls above the baseline's p90 of %s (%.0f expected); median %s, usually %s",
			kw, a.win.n, fmtDuration(t), a.win.n*p0, fmtDuration(medW), fmtDuration(medB))
		if k.kind == SpanInbound {
			f.what = fmt.Sprintf("network/queueing gap of calls from %s (%s) to %s: %s", k.caller, k.op, k.svc, share)
			ck := callerKey{k.caller, k.callerPod}
			byCaller[ck] = append(byCaller[ck], len(out))
		} else {
			f.what = fmt.Sprintf("self time of %s: %s", k.op, share)
		}
		out = append(out, f)
	}
	// A caller whose gaps to several services (most of those it calls)
	// all widened is slow itself — its CPU, its own network — and explains
	// them: the evidence moves to the caller.
	for ck, idx := range byCaller {
		zs := byCallerZ[ck]
		callees := map[string]bool{}
		for _, i := range idx {
			callees[out[i].svc] = true
		}
		if len(callees) < 2 {
			continue
		}
		if median(zs) < zOnset {
			continue // most of its calls kept their pace
		}
		rising := make([]float64, len(idx))
		for n, i := range idx {
			rising[n] = out[i].z
			out[i].z, out[i].s = 0, 0 // the caller explains them
		}
		shared := median(rising)
		out = append(out, finding{family: famNetwork, svc: ck.svc, pod: ck.pod, z: shared, s: surpriseZ(shared), spanBacked: true,
			what: fmt.Sprintf("its calls to %d services all slowed on the way (median gap z %.1f): its own network or CPU", len(callees), shared),
			ref:  "/api/v1/traces?service=" + url.QueryEscape(ck.svc) + "&" + winQuery(fr)})
	}
	// A caller whose own time rose is slow itself (CPU, GC, locks): the
	// gaps of its calls, measured by its own clock and scheduling, rose
	// with it and are its evidence, not its callees'.
	slowSelf := map[callerKey]bool{}
	for _, f := range out {
		if f.family == famLatency && f.z >= zOnset {
			slowSelf[callerKey{f.svc, f.pod}] = true
		}
	}
	for ck, idx := range byCaller {
		if !slowSelf[ck] {
			continue
		}
		for _, i := range idx {
			out[i].z, out[i].s = 0, 0
		}
	}
	return out, judged
}

// latencyFloor is the smallest spread of log-latencies: a 10 % change is
// the least that counts as one standard deviation (timers and scheduling
// jitter make smaller ones meaningless).
var latencyFloor = math.Log(1.1)

// minSignificance is the surprise (−log10 p) a change must reach to be
// judged by its size: fewer calls than that prove nothing, however slow.
const minSignificance = 3
