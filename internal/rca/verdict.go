package rca

import (
	"fmt"
	"sort"
	"time"
)

// sigCoverage counts, per signal, the buckets with data in the window and
// in the baseline, and the services seen.
type sigCoverage map[string]*covAcc

type covAcc struct {
	win, base map[int64]bool
	svcs      map[string]bool
}

func coverage(sig signals, fr frame) sigCoverage {
	c := sigCoverage{}
	note := func(name string, t int64, svc string) {
		a := c[name]
		if a == nil {
			a = &covAcc{win: map[int64]bool{}, base: map[int64]bool{}, svcs: map[string]bool{}}
			c[name] = a
		}
		if fr.inWindow(t) {
			a.win[t] = true
		} else {
			a.base[t] = true
		}
		a.svcs[svc] = true
	}
	for _, s := range sig.spans {
		note("spans", s.T, serviceOf(s.Service, s.Pod, ""))
	}
	for _, l := range sig.logs {
		note("logs", l.T, serviceOf(l.Service, l.Pod, ""))
	}
	for _, m := range sig.metrics {
		note("metrics", m.T, serviceOf(m.Service, m.Pod, m.Container))
	}
	for _, e := range sig.events {
		note("events", e.T, serviceOf(e.Service, e.Pod, e.Container))
	}
	return c
}

// enoughBaseline reports whether some signal has data in at least minBase
// baseline buckets.
func (c sigCoverage) enoughBaseline() bool {
	for name, a := range c {
		if name != "events" && len(a.base) >= minBase {
			return true
		}
	}
	return false
}

func (c sigCoverage) byName() map[string]Coverage {
	out := map[string]Coverage{}
	for _, name := range []string{"spans", "logs", "metrics", "events"} {
		a := c[name]
		if a == nil {
			out[name] = Coverage{}
			continue
		}
		out[name] = Coverage{WindowBuckets: len(a.win), BaselineBuckets: len(a.base), Services: len(a.svcs)}
	}
	return out
}

// verdictOf says whether the analysis could rank and, if not, why, and
// what would help.
func verdictOf(res analysis, cov sigCoverage, w Window) (status string, reasons, suggestions []string) {
	var have []string
	for _, name := range []string{"spans", "logs", "metrics", "events"} {
		if a := cov[name]; a != nil {
			have = append(have, fmt.Sprintf("%s: %d window and %d baseline buckets of %s, %d services", name, len(a.win), len(a.base), w.Step, len(a.svcs)))
		} else {
			have = append(have, name+": none")
		}
	}
	base := fmt.Sprintf("baseline searched from %s to %s (outside the window)", w.BaselineStart.UTC().Format(time.RFC3339), w.BaselineEnd.UTC().Format(time.RFC3339))
	if len(res.cands) > 0 {
		var fams []string
		for f, n := range res.moved {
			fams = append(fams, fmt.Sprintf("%s (%d services)", f, n))
		}
		sort.Strings(fams)
		return StatusRanked, append([]string{fmt.Sprintf("signals that moved: %v", fams), base}, have...), nil
	}
	windowData, baseData := false, false
	for name, a := range cov {
		if name == "events" {
			continue
		}
		windowData = windowData || len(a.win) > 0
		baseData = baseData || len(a.base) >= minBase
	}
	switch {
	case !windowData:
		return StatusInsufficentData, append([]string{"no spans, logs or metrics in the window", base}, have...),
			[]string{"check that telemetry of this time range was sent to this tenant (and namespace)", "try a window where data exists"}
	case !baseData:
		return StatusNoBaseline, append([]string{fmt.Sprintf("fewer than %d buckets of data around the window to learn what is normal", minBase), base}, have...),
			[]string{"send telemetry continuously, not only during incidents, so a baseline exists", "try a longer window that includes normal time"}
	}
	var judged []string
	for _, f := range families {
		judged = append(judged, fmt.Sprintf("%s: %d series", f, res.judged[f]))
	}
	return StatusNoSignalMoved, append([]string{"every judged signal stayed within its baseline", fmt.Sprintf("judged: %v", judged), base}, have...),
		[]string{"widen the window to include the onset of the problem", "send logs and traces with errors (span status, log severity) if only metrics are sent"}
}
