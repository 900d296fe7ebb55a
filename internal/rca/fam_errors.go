package rca

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// errorFindings attributes every trace with failures (failed spans, error
// log lines) to the deepest services that failed in it — those none of
// whose callees, among the trace's failing services, failed too: a
// caller that fails because its callee did is a symptom — and judges, per
// service, the traces it is the deepest failure of against what its
// baseline rate per span (or per log line, without spans) expects.
func errorFindings(ets []ErrorTrace, spans []SpanStat, pats []LogPattern, g graph, fr frame) ([]finding, map[string]int) {
	if len(ets) == 0 {
		return nil, nil
	}
	// exposure: spans per service and bucket, else log lines
	exposure := map[string]map[int64]float64{}
	add := func(svc string, t int64, n float64) {
		if exposure[svc] == nil {
			exposure[svc] = map[int64]float64{}
		}
		exposure[svc][t] += n
	}
	for _, s := range spans {
		if s.Kind == SpanSelf {
			add(serviceOf(s.Service, s.Pod, ""), s.T, float64(s.Count))
		}
	}
	logExposure := map[string]map[int64]float64{}
	for _, p := range pats {
		svc := serviceOf(p.Service, p.Pod, "")
		if logExposure[svc] == nil {
			logExposure[svc] = map[int64]float64{}
		}
		logExposure[svc][p.T] += float64(p.Count)
	}
	deepest := map[string]map[int64]float64{}
	with := map[string]map[string]float64{} // service -> the services failing with it in the window
	for _, et := range ets {
		svcs := make([]string, 0, len(et.Services))
		for _, s := range et.Services {
			svcs = append(svcs, serviceOf(s, "", ""))
		}
		for _, s := range svcs {
			explained := false
			for _, o := range svcs {
				if o != s && g.reaches(s, o) && !g.reaches(o, s) {
					explained = true
					break
				}
			}
			if explained {
				continue
			}
			if deepest[s] == nil {
				deepest[s] = map[int64]float64{}
			}
			deepest[s][et.T] += float64(et.Count)
			if fr.inWindow(et.T) {
				if with[s] == nil {
					with[s] = map[string]float64{}
				}
				for _, o := range svcs {
					if o != s {
						with[s][o] += float64(et.Count)
					}
				}
			}
		}
	}
	var out []finding
	judged := 0
	for svc, c := range deepest {
		e := exposure[svc]
		unit := "span"
		if len(e) == 0 {
			e, unit = logExposure[svc], "log line"
		}
		if len(e) == 0 {
			continue
		}
		v, ok := fr.judgeCount(counts{c: c, e: e})
		if !ok {
			continue
		}
		judged++
		if v.Rise <= 0 || v.Count < 2 {
			continue
		}
		callers := ""
		if w := with[svc]; len(w) > 0 {
			names := make([]string, 0, len(w))
			for o := range w {
				names = append(names, o)
			}
			sort.Slice(names, func(i, j int) bool {
				return w[names[i]] > w[names[j]] || w[names[i]] == w[names[j]] && names[i] < names[j]
			})
			if len(names) > 3 {
				names = names[:3]
			}
			callers = "; its callers " + strings.Join(names, ", ") + " failed in the same traces"
		}
		out = append(out, finding{family: famErrors, svc: svc, z: zOfSurprise(v.Rise), s: surpriseZ(zOfSurprise(v.Rise)), onset: v.Onset, spanBacked: unit == "span",
			key: "errors",
			what: fmt.Sprintf("deepest failure (failed spans or error log lines) in %.0f traces where %.1f were expected from its baseline rate per %s%s",
				v.Count, v.Expected, unit, callers),
			ref: "/api/v1/traces?service=" + url.QueryEscape(svc) + "&" + winQuery(fr)})
	}
	return out, map[string]int{famErrors: judged}
}
