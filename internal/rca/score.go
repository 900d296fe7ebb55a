package rca

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// finding is one judged signal of one candidate.
type finding struct {
	kind    string // latency, errors, rate, metric, logs
	what    string // plain-language name of the signal
	a       anomaly
	adjZ    float64 // z after removing what all peers share
	weight  float64
	ref     string
	spanned bool
	caller  candKey           // inbound latency: the calling service and pod
	offset  float64           // part of the z explained elsewhere (by a slow caller)
	series  map[int64]float64 // the judged values by bucket (history and window)
}

func (f finding) strength() float64 { return math.Abs(f.adjZ) * f.weight }

// Weights of the signal kinds: a change of request rate is more often a
// symptom (callers slowed down) than a cause.
var kindWeight = map[string]float64{"fanout": 1, "latency": 1, "errors": 1, "rate": 0.5, "metric": 1, "logs": 1}

// ratioFloor is the smallest spread of a ratio (errors per request): one
// percentage point.
const ratioFloor = 0.01

type candKey struct{ svc, pod string }

// judged is a finding of one candidate.
type judged struct {
	ck candKey
	f  finding
}

type seriesKey struct {
	kind, svc, pod, op, caller string
}

// series collects points by bucket.
type series struct {
	key       seriesKey
	container string
	count     map[int64]float64
	errs      map[int64]float64
	p90       map[int64]float64
	val       map[int64]float64
	cum       bool
}

func newSeries(k seriesKey) *series {
	return &series{key: k, count: map[int64]float64{}, errs: map[int64]float64{}, p90: map[int64]float64{}, val: map[int64]float64{}}
}

// split divides the points of m at the buckets in ts into history (before
// start) and window points.
func split(m map[int64]float64, ts []int64, start int64, fill bool) ([]float64, []point) {
	var hist []float64
	var win []point
	for _, t := range ts {
		v, ok := m[t]
		if !ok {
			if !fill {
				continue
			}
			v = 0
		}
		if t < start {
			hist = append(hist, v)
		} else {
			win = append(win, point{T: t, V: v})
		}
	}
	return hist, win
}

func sortedKeys(m map[int64]bool) []int64 {
	ts := make([]int64, 0, len(m))
	for t := range m {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts
}

func fmtDur(ns float64) string {
	return time.Duration(ns).Round(10 * time.Microsecond).String()
}

func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339) }

// rank judges every signal and ranks the candidates.
func rank(sig signals, w Window, service string, maxN int) rankResult {
	start := w.Start.UnixNano()
	winQ := "start=" + url.QueryEscape(w.Start.UTC().Format(time.RFC3339)) + "&end=" + url.QueryEscape(w.End.UTC().Format(time.RFC3339))
	counts := map[string]int{"spans": 0, "metrics": 0, "logs": 0, "events": len(sig.events)}
	found := map[candKey][]finding{}
	containers := map[candKey]string{}

	// ---- spans: RED per kind, service, pod, operation, caller ----
	spanBuckets := map[int64]bool{}
	bySeries := map[seriesKey]*series{}
	callerPod := map[seriesKey]string{}
	callees := map[string]map[string]bool{} // service -> services it calls
	for _, s := range sig.spans {
		spanBuckets[s.T] = true
		k := seriesKey{s.Kind, s.Service, s.Pod, s.Operation, s.Caller}
		se := bySeries[k]
		if se == nil {
			se = newSeries(k)
			bySeries[k] = se
		}
		se.count[s.T] += float64(s.Count)
		se.errs[s.T] += float64(s.Errors)
		se.p90[s.T] = s.P90
		if s.CallerPod != "" {
			callerPod[k] = s.CallerPod
		}
		if s.Kind == SpanInbound && s.Caller != "" && s.Caller != s.Service {
			if callees[s.Caller] == nil {
				callees[s.Caller] = map[string]bool{}
			}
			callees[s.Caller][s.Service] = true
		}
	}
	ts := sortedKeys(spanBuckets)
	var spanFindings []judged
	for _, se := range bySeries {
		k := se.key
		ck := candKey{k.svc, k.pod}
		label := k.op
		if k.kind == SpanInbound {
			label = fmt.Sprintf("calls from %s to %s", k.caller, k.op)
		}
		traceRef := "/api/v1/traces?service=" + url.QueryEscape(k.svc) + "&" + winQ
		// latency
		hist, win := split(se.p90, ts, start, false)
		if a, ok := judge(hist, win); ok {
			what := "p90 self time of " + label
			if k.kind == SpanInbound {
				what = "p90 network/queueing time of " + label
			}
			spanFindings = append(spanFindings, judged{ck, finding{kind: "latency", what: what, a: a, ref: traceRef, spanned: true, caller: candKey{k.caller, callerPod[k]}, series: se.p90}})
			counts["spans"]++
		}
		// errors per request
		ratio := map[int64]float64{}
		for t, n := range se.count {
			if n > 0 {
				ratio[t] = se.errs[t] / n
			}
		}
		hist, win = split(ratio, ts, start, false)
		if a, ok := judgeFloor(hist, win, ratioFloor); ok {
			spanFindings = append(spanFindings, judged{ck, finding{kind: "errors", what: "error ratio of " + label, a: a, ref: traceRef, spanned: true, series: ratio}})
		}
		// rate (buckets with any span at all, 0 when this series had none)
		if k.kind == SpanSelf {
			hist, win = split(se.count, ts, start, true)
			if a, ok := judge(hist, win); ok {
				spanFindings = append(spanFindings, judged{ck, finding{kind: "rate", what: "spans per bucket of " + label, a: a, ref: traceRef, spanned: true, series: se.count}})
			}
		}
	}
	// A caller whose calls to several services all slowed down is slow
	// itself (starved of CPU, its own network): the shared part of the
	// inbound gaps moves from the callees to the caller.
	byCaller := map[candKey][]int{}
	for i, j := range spanFindings {
		if j.f.kind == "latency" && j.f.caller.svc != "" {
			byCaller[j.f.caller] = append(byCaller[j.f.caller], i)
		}
	}
	for caller, idx := range byCaller {
		callees := map[string]bool{}
		zs := make([]float64, len(idx))
		for n, i := range idx {
			callees[spanFindings[i].ck.svc] = true
			zs[n] = spanFindings[i].f.a.Z
		}
		if len(callees) < 2 {
			continue
		}
		shared := median(zs)
		if math.Abs(shared) < zOnset {
			continue
		}
		var onset int64
		for _, i := range idx {
			f := &spanFindings[i].f
			f.offset = shared
			if o := f.a.Onset; o != 0 && (onset == 0 || o < onset) {
				onset = o
			}
		}
		spanFindings = append(spanFindings, judged{caller, finding{kind: "latency", weight: 1, spanned: true,
			what: fmt.Sprintf("network/queueing time of its calls to %d services", len(callees)),
			a:    anomaly{Z: shared, Onset: onset}, adjZ: shared, ref: spanFindings[idx[0]].f.ref}})
	}
	peerAdjust(len(spanFindings), func(i int) *finding { return &spanFindings[i].f }, func(i int) string {
		return spanFindings[i].f.kind + "\x00" + strings.SplitN(spanFindings[i].f.what, " of ", 2)[0]
	})
	fanOutFindings(sig.spans, ts, start, winQ, func(ck candKey, f finding) {
		spanFindings = append(spanFindings, judged{ck, f})
	})
	for _, j := range spanFindings {
		found[j.ck] = append(found[j.ck], j.f)
	}

	// ---- pod metrics ----
	type mkey struct{ svc, pod, name string }
	metricSeries := map[mkey]*series{}
	metricBuckets := map[int64]bool{}
	for _, m := range sig.metrics {
		k := mkey{m.Service, m.Pod, m.Name}
		se := metricSeries[k]
		if se == nil {
			se = newSeries(seriesKey{kind: "metric", svc: m.Service, pod: m.Pod, op: m.Name})
			metricSeries[k] = se
		}
		se.val[m.T] = m.Value
		se.cum = se.cum || m.Cumulative
		if m.Container != "" {
			containers[candKey{m.Service, m.Pod}] = m.Container
		}
		metricBuckets[m.T] = true
	}
	mts := sortedKeys(metricBuckets)
	var metricFindings []judged
	for k, se := range metricSeries {
		vals := se.val
		if se.cum {
			vals = increments(se.val, mts)
		}
		hist, win := split(vals, mts, start, false)
		a, ok := judge(hist, win)
		if !ok {
			continue
		}
		counts["metrics"]++
		ref := "/api/v1/metrics/series?name=" + url.QueryEscape(k.name) + "&label.k8s.pod.name=" + url.QueryEscape(k.pod) + "&" + winQ
		metricFindings = append(metricFindings, judged{candKey{k.svc, k.pod}, finding{kind: "metric", what: k.name, a: a, ref: ref, series: vals}})
	}
	peerAdjust(len(metricFindings), func(i int) *finding { return &metricFindings[i].f }, func(i int) string { return metricFindings[i].f.what })
	for _, j := range metricFindings {
		found[j.ck] = append(found[j.ck], j.f)
	}

	// ---- log error rates ----
	type lkey struct{ svc, pod string }
	logSeries := map[lkey]*series{}
	logBuckets := map[int64]bool{}
	for _, l := range sig.logs {
		k := lkey{l.Service, l.Pod}
		se := logSeries[k]
		if se == nil {
			se = newSeries(seriesKey{kind: "logs", svc: l.Service, pod: l.Pod})
			logSeries[k] = se
		}
		se.count[l.T] += float64(l.Count)
		se.errs[l.T] += float64(l.Errors)
		if l.Container != "" {
			containers[candKey{l.Service, l.Pod}] = l.Container
		}
		logBuckets[l.T] = true
	}
	lts := sortedKeys(logBuckets)
	var logFindings []judged
	for k, se := range logSeries {
		hist, win := split(se.errs, lts, start, true)
		a, ok := judge(hist, win)
		if !ok {
			continue
		}
		counts["logs"]++
		ref := "/api/v1/logs?service=" + url.QueryEscape(k.svc) + "&severityMin=17&" + winQ
		logFindings = append(logFindings, judged{candKey{k.svc, k.pod}, finding{kind: "logs", what: "error log records per bucket", a: a, ref: ref, series: se.errs}})
	}
	peerAdjust(len(logFindings), func(i int) *finding { return &logFindings[i].f }, func(int) string { return "logs" })
	for _, j := range logFindings {
		found[j.ck] = append(found[j.ck], j.f)
	}

	// ---- candidates ----
	cands := map[candKey]*ranked{}
	get := func(k candKey) *ranked {
		c := cands[k]
		if c == nil {
			c = &ranked{Candidate: Candidate{Service: k.svc, Pod: k.pod, Container: containers[k]}}
			cands[k] = c
		}
		return c
	}
	for k, fs := range found {
		if k.svc == "" && k.pod == "" {
			continue
		}
		sort.Slice(fs, func(i, j int) bool {
			if si, sj := fs[i].strength(), fs[j].strength(); si != sj {
				return si > sj
			}
			if fs[i].kind != fs[j].kind {
				return fs[i].kind < fs[j].kind
			}
			return fs[i].what < fs[j].what
		})
		c := get(k)
		// Diminishing weights: the strongest signal counts fully, the next
		// ones less, so many correlated signals do not outvote one clear one.
		// Signals that move together (p90/p95/p99 of one latency, a usage
		// and its percentage of the limit) are one piece of evidence: a
		// signal whose series correlates strongly with a stronger one
		// already counted adds nothing.
		wt := 1.0
		var counted []finding
		for _, f := range fs {
			if len(counted) >= 3 {
				break
			}
			if redundant(f, counted) {
				continue
			}
			counted = append(counted, f)
			c.raw += wt * f.strength()
			if f.adjZ > 0 {
				c.rise += wt * f.strength()
			}
			wt /= 2
		}
		for _, f := range fs {
			if math.Abs(f.a.Z) >= zOnset && f.a.Onset != 0 && (c.onset == 0 || f.a.Onset < c.onset) {
				c.onset = f.a.Onset
			}
			c.spanBacked = c.spanBacked || f.spanned
		}
		for i, f := range fs {
			if i >= 5 || f.strength() < 1 {
				break
			}
			c.Evidence = append(c.Evidence, Evidence{Kind: f.kind, Z: round2(f.adjZ), Ref: f.ref, Summary: describe(f)})
		}
	}
	// container events raise their pod
	for _, ev := range sig.events {
		k := candKey{ev.Service, ev.Pod}
		if ev.Pod == "" {
			continue
		}
		if _, ok := cands[k]; !ok {
			// match the pod of a known candidate when the event has no workload
			for ck := range cands {
				if ck.pod == ev.Pod {
					k = ck
					break
				}
			}
		}
		c := get(k)
		boost := eventBoost(ev.Severity)
		c.raw += boost
		c.rise += boost
		if c.onset == 0 || ev.T < c.onset {
			c.onset = ev.T
		}
		c.Evidence = append(c.Evidence, Evidence{Kind: "event",
			Summary: fmt.Sprintf("%s event %q at %s: %s", ev.Type, ev.Reason, fmtTime(ev.T), ev.Message),
			Ref:     "/api/v1/events?pod=" + url.QueryEscape(ev.Pod) + "&" + winQ})
	}

	list := make([]ranked, 0, len(cands))
	for _, c := range cands {
		c.Score = c.raw
		list = append(list, *c)
	}
	upstreamDrops(list, callees)
	demote(list, callees)
	if service != "" {
		keep := reachable(callees, service)
		out := list[:0]
		for _, c := range list {
			if keep[c.Service] {
				out = append(out, c)
			}
		}
		list = out
	}
	for i := range list {
		list[i].Score = round2(list[i].Score)
		if list[i].onset != 0 {
			t := time.Unix(0, list[i].onset).UTC()
			list[i].Onset = &t
		}
		if list[i].Evidence == nil {
			list[i].Evidence = []Evidence{}
		}
	}
	sortRanked(list)
	out := list[:0]
	for _, c := range list {
		if c.Score > 0 {
			out = append(out, c)
		}
	}
	if len(out) > maxN {
		out = out[:maxN]
	}
	return rankResult{Candidates: out, Signals: counts}
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// eventBoost raises a candidate for one container event: more for higher
// severities (OTLP severity numbers: WARN 13, ERROR 17, FATAL 21).
func eventBoost(sev uint8) float64 {
	switch {
	case sev >= 17:
		return zOnset * 2
	case sev >= 13:
		return zOnset
	}
	return zOnset / 2
}

func describe(f finding) string {
	dir := "rose"
	if f.a.Z < 0 {
		dir = "fell"
	}
	val := func(v float64) string {
		if f.kind == "latency" {
			return fmtDur(v)
		}
		if f.kind == "errors" {
			return fmt.Sprintf("%.1f%%", 100*v)
		}
		return fmt.Sprintf("%.4g", v)
	}
	s := fmt.Sprintf("%s %s to %s (baseline median %s over %d buckets; robust z %.1f",
		f.what, dir, val(f.a.Value), val(f.a.Baseline.Median), f.a.Baseline.N, f.a.Z)
	if f.a.Peak != 0 && math.Abs(f.a.Peak-f.a.Z) >= 0.05 {
		s += fmt.Sprintf(" sustained, %.1f at its peak", f.a.Peak)
	}
	if f.adjZ != f.a.Z {
		s += fmt.Sprintf(", %.1f beyond its peers", f.adjZ)
	}
	s += ")"
	if f.a.Onset != 0 {
		s += " from " + fmtTime(f.a.Onset)
	}
	return s
}

// increments turns a cumulative series into per-bucket increases (resets
// drop the bucket).
func increments(m map[int64]float64, ts []int64) map[int64]float64 {
	out := map[int64]float64{}
	prev, have := 0.0, false
	for _, t := range ts {
		v, ok := m[t]
		if !ok {
			continue
		}
		if have && v >= prev {
			out[t] = v - prev
		}
		prev, have = v, true
	}
	return out
}

// peerAdjust removes from each finding's z what its peers (findings of the
// same group: the same metric on other pods, the same span signal on
// other services) share: a change everywhere at once (a load change, a
// node-wide effect) points at no one candidate. With fewer than three
// peers the z is kept.
func peerAdjust(n int, at func(int) *finding, group func(int) string) {
	groups := map[string][]int{}
	for i := 0; i < n; i++ {
		f := at(i)
		f.adjZ = removeShared(f.a.Z, f.offset)
		if f.weight == 0 {
			f.weight = kindWeight[f.kind]
		}
		groups[group(i)] = append(groups[group(i)], i)
	}
	for _, idx := range groups {
		if len(idx) < 3 {
			continue
		}
		zs := make([]float64, len(idx))
		for j, i := range idx {
			zs[j] = at(i).adjZ
		}
		m := median(zs)
		for _, i := range idx {
			at(i).adjZ = removeShared(at(i).adjZ, m)
		}
	}
}

// removeShared takes from z the part shared with others: only a shared
// change in the same direction explains (part of) z, and explaining never
// turns a normal signal into an anomaly of the opposite sign.
func removeShared(z, shared float64) float64 {
	switch {
	case z > 0 && shared > 0:
		return max(0, z-shared)
	case z < 0 && shared < 0:
		return min(0, z-shared)
	}
	return z
}

// maxDepth bounds the call-graph walk.
const maxDepth = 8

// reachable is service and every service it calls, transitively.
func reachable(callees map[string]map[string]bool, service string) map[string]bool {
	seen := map[string]bool{service: true}
	frontier := []string{service}
	for d := 0; d < maxDepth && len(frontier) > 0; d++ {
		var next []string
		for _, s := range frontier {
			for c := range callees[s] {
				if !seen[c] {
					seen[c] = true
					next = append(next, c)
				}
			}
		}
		frontier = next
	}
	return seen
}

// demoteFactor scales down a candidate whose anomaly a callee explains.
const demoteFactor = 0.5

// demote lowers every candidate that has a (transitive) callee at least as
// anomalous whose anomaly began no later: the caller most likely inherits
// the callee's problem. Only what rose in the callee (latency, errors,
// resource use, activity) counts: a callee that merely gets fewer calls or
// answers faster explains nothing upstream — it is rather a consequence of
// a change in its callers.
func demote(list []ranked, callees map[string]map[string]bool) {
	best := map[string]*ranked{} // strongest candidate per service
	for i := range list {
		c := &list[i]
		if b := best[c.Service]; b == nil || c.raw > b.raw {
			best[c.Service] = c
		}
	}
	for i := range list {
		c := &list[i]
		var by *ranked
		for s := range reachable(callees, c.Service) {
			if s == c.Service {
				continue
			}
			d := best[s]
			if d == nil || d.rise < c.raw-c.credit {
				continue
			}
			if d.onset != 0 && c.onset != 0 && d.onset > c.onset {
				continue
			}
			if by == nil || d.raw > by.raw {
				by = d
			}
		}
		if by != nil {
			c.Score = c.raw * demoteFactor
			c.Evidence = append(c.Evidence, Evidence{Kind: "propagation",
				Summary: fmt.Sprintf("%s calls %s, which is at least as anomalous (score %.1f) and started no later: likely inherited", c.Service, by.Service, by.raw)})
		}
	}
}

// fanOutFindings judges, per service and pod, the calls it makes to other
// services per span of its own: a service that starts returning early or
// failing before calling its dependencies (a code defect) changes its
// fan-out, while its callers' and callees' fan-outs stay as they were.
func fanOutFindings(spans []SpanStat, ts []int64, start int64, winQ string, add func(candKey, finding)) {
	own := map[candKey]map[int64]float64{}
	out := map[candKey]map[int64]float64{}
	inc := func(m map[candKey]map[int64]float64, k candKey, t int64, n uint64) {
		if m[k] == nil {
			m[k] = map[int64]float64{}
		}
		m[k][t] += float64(n)
	}
	for _, s := range spans {
		switch s.Kind {
		case SpanSelf:
			inc(own, candKey{s.Service, s.Pod}, s.T, s.Count)
		case SpanInbound:
			if s.Caller != "" {
				inc(out, candKey{s.Caller, s.CallerPod}, s.T, s.Count)
			}
		}
	}
	for k, calls := range out {
		ratio := map[int64]float64{}
		for t, n := range own[k] {
			if n > 0 {
				ratio[t] = calls[t] / n
			}
		}
		hist, win := split(ratio, ts, start, false)
		if a, ok := judge(hist, win); ok {
			add(k, finding{kind: "fanout", weight: 1, spanned: true, a: a, adjZ: a.Z, series: ratio,
				what: "calls to other services per own span of " + k.svc,
				ref:  "/api/v1/traces?service=" + url.QueryEscape(k.svc) + "&" + winQ})
		}
	}
}

// redundantCorr is the correlation from which two signals of one candidate
// count as one piece of evidence.
const redundantCorr = 0.9

// redundant reports whether f's series moves with one of the counted
// findings' series (same or opposite direction).
func redundant(f finding, counted []finding) bool {
	for _, c := range counted {
		if f.kind == "metric" && c.kind == "metric" && variants(f.what, c.what) {
			return true
		}
		if r, ok := correlation(f.series, c.series); ok && math.Abs(r) >= redundantCorr {
			return true
		}
	}
	return false
}

// correlation is Pearson's r over the buckets both series have (ok false
// with fewer than minHistory+2 shared buckets or a constant series).
func correlation(a, b map[int64]float64) (float64, bool) {
	var n, sa, sb, saa, sbb, sab float64
	for t, x := range a {
		y, ok := b[t]
		if !ok {
			continue
		}
		n++
		sa += x
		sb += y
		saa += x * x
		sbb += y * y
		sab += x * y
	}
	if n < minHistory+2 {
		return 0, false
	}
	va, vb := saa-sa*sa/n, sbb-sb*sb/n
	if va <= 0 || vb <= 0 {
		return 0, false
	}
	return (sab - sa*sb/n) / math.Sqrt(va*vb), true
}

// upstreamDrops credits callers with the activity their callees lost: when
// a service's evidence is mostly signals that fell (fewer requests, less
// CPU, fewer bytes) it is doing less because less reached it, so half of
// that evidence moves to the services that call it, split among them. A
// service that fails or returns early stops calling its dependencies, and
// this is often the only trace of it in their metrics.
func upstreamDrops(list []ranked, callees map[string]map[string]bool) {
	callers := map[string][]string{}
	for caller, cs := range callees {
		for c := range cs {
			callers[c] = append(callers[c], caller)
		}
	}
	idx := map[string]int{} // strongest candidate per service
	for i := range list {
		if j, ok := idx[list[i].Service]; !ok || list[i].raw > list[j].raw {
			idx[list[i].Service] = i
		}
	}
	credit := map[string]float64{}
	from := map[string][]string{}
	svcs := make([]string, 0, len(idx))
	for svc := range idx {
		svcs = append(svcs, svc)
	}
	sort.Strings(svcs) // sums in a fixed order: reproducible scores
	for _, svc := range svcs {
		c := &list[idx[svc]]
		fall := c.raw - c.rise
		if fall <= c.rise || len(callers[svc]) == 0 {
			continue
		}
		share := fall / 2 / float64(len(callers[svc]))
		c.Score -= fall / 2
		c.raw -= fall / 2
		for _, up := range callers[svc] {
			credit[up] += share
			from[up] = append(from[up], svc)
		}
	}
	for _, svc := range svcs {
		cr, ok := credit[svc]
		if !ok {
			continue
		}
		i, ok := idx[svc]
		if !ok {
			continue
		}
		c := &list[i]
		c.raw += cr
		c.rise += cr
		c.credit += cr
		c.Score += cr
		sort.Strings(from[svc])
		c.Evidence = append(c.Evidence, Evidence{Kind: "propagation", Z: round2(cr),
			Summary: fmt.Sprintf("its callees %s are doing less than usual (their signals fell): the change likely starts in their caller", strings.Join(from[svc], ", "))})
	}
}

// variants reports whether two metric names name one quantity: names are
// built from tokens (separated by '.', '_', '-', '/'), quantiles of one
// distribution differ only in a last percentile token (p90, p99, q0.5 →
// a letter and digits, or digits), and a derived form (a rate, a ratio, a
// percentage of a limit) appends one token to the base name. Both are
// naming conventions (OpenTelemetry, Prometheus), not names.
func variants(a, b string) bool {
	ta, tb := nameTokens(a), nameTokens(b)
	if len(ta) < 2 || len(tb) < 2 {
		return false
	}
	if len(ta) > len(tb) {
		ta, tb = tb, ta
	}
	if len(tb) == len(ta)+1 {
		return slices.Equal(ta, tb[:len(ta)])
	}
	if len(ta) != len(tb) {
		return false
	}
	n := len(ta) - 1
	return slices.Equal(ta[:n], tb[:n]) && quantileToken(ta[n]) && quantileToken(tb[n])
}

func nameTokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '/' })
}

// quantileToken: "p99", "q5", "99", "p999" — an optional letter and digits.
func quantileToken(t string) bool {
	if t == "" {
		return false
	}
	if t[0] < '0' || t[0] > '9' {
		t = t[1:]
	}
	if t == "" {
		return false
	}
	for _, r := range t {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
