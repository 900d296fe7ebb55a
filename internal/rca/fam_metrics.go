package rca

import (
	"cmp"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// metricRelFloor is the smallest spread of a metric as a share of its
// typical size: a metric that never moved needs a 5 % change to count as
// one standard deviation.
const metricRelFloor = 0.05

// metricZCap bounds the z-score a metric is judged by: a metric's robust
// spread is often tiny (idle pods, quantized rates, quantiles of a handful
// of requests), so its z-scores reach thousands without meaning more than
// "clearly off"; beyond this they all count the same.
const metricZCap = 20

type metricKey struct{ svc, pod, ctr, name, src, dst string }

// metricFindings judges every metric of every pod (or service) in both
// directions: what rose or fell beyond its own baseline, less what the
// same metric did on every pod at once. Cumulative sums are judged by
// their increments. A per-edge metric (a service mesh's, labelled with
// source and destination workloads) that rose is evidence of the
// destination's response time (famEdges) — unless the source's edges to
// several services all rose, which is the source's.
func metricFindings(ms []MetricStat, fr frame) ([]finding, map[string]int) {
	type acc struct {
		v   map[int64]float64
		cum bool
	}
	series := map[metricKey]*acc{}
	for _, m := range ms {
		k := metricKey{serviceOf(m.Service, m.Pod, m.Container), m.Pod, m.Container, m.Name, m.Source, m.Destination}
		if m.Destination != "" {
			k.svc, k.pod, k.ctr = m.Destination, "", ""
		}
		a := series[k]
		if a == nil {
			a = &acc{v: map[int64]float64{}}
			series[k] = a
		}
		a.v[m.T] = m.Value
		a.cum = a.cum || m.Cumulative
	}
	type judgedSeries struct {
		k        metricKey
		up, down verdict
	}
	var all []judgedSeries
	type sharedKey struct{ name, dir string }
	zs := map[sharedKey][]float64{}
	for k, a := range series {
		vals := a.v
		if a.cum {
			vals = increments(a.v)
		}
		ps := sortedPoints(vals)
		var base []float64
		var win []point
		for _, p := range ps {
			if fr.inWindow(p.T) {
				win = append(win, p)
			} else {
				base = append(base, p.V)
			}
		}
		if len(base) < minBase || len(win) == 0 {
			continue
		}
		up, down, ok := fr.judgeLevels(ps, metricRelFloor*typicalMagnitude(base, win))
		if !ok {
			continue
		}
		all = append(all, judgedSeries{k, up, down})
		if k.dst == "" {
			zs[sharedKey{k.name, "rose"}] = append(zs[sharedKey{k.name, "rose"}], up.Z)
			zs[sharedKey{k.name, "fell"}] = append(zs[sharedKey{k.name, "fell"}], down.Z)
		}
	}
	// What every pod's same metric does at once (a load change, a node
	// effect) points at no one: the median z of a metric over the pods
	// that have it is taken off each (with three or more pods).
	shared := map[sharedKey]float64{}
	for k, v := range zs {
		if len(v) >= 3 {
			shared[k] = median(v)
		}
	}
	// A source whose edges (of one metric) mostly rose explains them.
	type srcKey struct{ src, name string }
	bySrc := map[srcKey][]float64{}
	dsts := map[srcKey]map[string]bool{}
	for _, j := range all {
		if j.k.dst != "" && j.k.src != "" {
			sk := srcKey{j.k.src, j.k.name}
			bySrc[sk] = append(bySrc[sk], j.up.Z)
			if j.up.Z >= zOnset {
				if dsts[sk] == nil {
					dsts[sk] = map[string]bool{}
				}
				dsts[sk][j.k.dst] = true
			}
		}
	}
	slices.SortFunc(all, func(a, b judgedSeries) int {
		return cmp.Or(strings.Compare(a.k.svc, b.k.svc), strings.Compare(a.k.pod, b.k.pod), strings.Compare(a.k.ctr, b.k.ctr),
			strings.Compare(a.k.name, b.k.name), strings.Compare(a.k.src, b.k.src), strings.Compare(a.k.dst, b.k.dst))
	})
	// A metric is judged against its own history and against the same
	// metric on every pod: rare by either counts as rare (the first is
	// blind where the series had an earlier incident, the second where
	// other pods did). Far out, every z counts the same (metricZCap).
	cal := calibrator{}
	for _, j := range all {
		series := fmt.Sprintf("%s|%s|%s|%s|%s|%s", j.k.svc, j.k.pod, j.k.ctr, j.k.name, j.k.src, j.k.dst)
		cal.add("series|up|"+series, j.up.Nulls)
		cal.add("series|down|"+series, j.down.Nulls)
		cal.add("name|up|"+j.k.name, j.up.Nulls)
		cal.add("name|down|"+j.k.name, j.down.Nulls)
	}
	cal.sort()
	var out []finding
	for _, j := range all {
		k := j.k
		series := fmt.Sprintf("%s|%s|%s|%s|%s|%s", k.svc, k.pod, k.ctr, k.name, k.src, k.dst)
		v, dir, d := j.up, "rose", "up"
		if j.down.Z > j.up.Z {
			v, dir, d = j.down, "fell", "down"
		}
		if sh := shared[sharedKey{k.name, dir}]; sh > 0 && k.dst == "" {
			v.Z = max(0, v.Z-sh)
		}
		if v.Z < 1 {
			continue
		}
		zc := min(v.Z, metricZCap)
		s := max(cal.surprise("series|"+d+"|"+series, zc), cal.surprise("name|"+d+"|"+k.name, zc))
		f := finding{family: famMetrics, svc: k.svc, pod: k.pod, ctr: k.ctr, z: v.Z, s: s,
			fell: dir == "fell", onset: v.Onset, key: "metric|" + k.name,
			ref: metricRef(k, fr)}
		who := k.pod
		if who == "" {
			who = k.svc
		}
		f.what = fmt.Sprintf("%s of %s %s to %.4g (baseline median %.4g, z %.1f)", k.name, who, dir, v.Value, v.Center, v.Z)
		if k.dst != "" {
			f.what = fmt.Sprintf("%s of calls from %s to %s %s to %.4g (baseline median %.4g, z %.1f)", k.name, k.src, k.dst, dir, v.Value, v.Center, v.Z)
			sk := srcKey{k.src, k.name}
			if dir == "fell" {
				continue // a per-edge quantity that fell says nothing of the edge's two ends
			}
			// the destination's response time as its callers see it
			// (it includes the destination's own callees)
			f.family, f.fell = famEdges, false
			if len(dsts[sk]) >= 2 && median(bySrc[sk]) >= zOnset {
				// the source's calls to most services rose: its own
				f.svc = k.src
				f.what += fmt.Sprintf("; its calls to %d services all rose", len(dsts[sk]))
			}
		}
		out = append(out, f)
	}
	return out, map[string]int{famMetrics: len(all)}
}

// metricRef is the query API path showing a metric's series in the window.
func metricRef(k metricKey, fr frame) string {
	ref := "/api/v1/metrics/series?name=" + url.QueryEscape(k.name)
	switch {
	case k.dst != "":
		ref += "&label.destination_workload=" + url.QueryEscape(k.dst)
	case k.pod != "":
		ref += "&label.k8s.pod.name=" + url.QueryEscape(k.pod)
	}
	return ref + "&" + winQuery(fr)
}

// typicalMagnitude is the size of a metric's values: the median of their
// magnitudes, else (a mostly-zero series) their mean magnitude, else the
// window's. It sets the resolution below which changes do not count.
func typicalMagnitude(base []float64, win []point) float64 {
	abs := make([]float64, len(base))
	var sum float64
	for i, v := range base {
		abs[i] = math.Abs(v)
		sum += abs[i]
	}
	if m := median(abs); m > 0 {
		return m
	}
	if sum > 0 {
		return sum / float64(len(base))
	}
	for _, p := range win {
		sum += math.Abs(p.V)
	}
	if sum > 0 {
		return sum / float64(len(win))
	}
	return 1e-9
}

// increments turns a cumulative series into its per-bucket increments
// (a reset, where the value falls, starts again from the new value).
func increments(v map[int64]float64) map[int64]float64 {
	ts := make([]int64, 0, len(v))
	for t := range v {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	out := make(map[int64]float64, len(ts))
	for i := 1; i < len(ts); i++ {
		d := v[ts[i]] - v[ts[i-1]]
		if d < 0 {
			d = v[ts[i]]
		}
		out[ts[i]] = d
	}
	return out
}
