package rca

import (
	"fmt"
	"math"
	"net/url"
)

// callFindings judges the call paths seen in the spans: how often a
// service calls each callee per span of its own, against its baseline. A
// call path that vanished or shrank (it stopped calling a callee: an
// early return, an exception before the call) or that is new or surging
// (a retry loop, a fallback) is a change of the caller's behaviour and
// its evidence.
func callFindings(spans []SpanStat, fr frame) ([]finding, map[string]int) {
	type edge struct{ caller, callee string }
	own := map[string]map[int64]float64{} // caller → its spans by bucket
	calls := map[edge]map[int64]float64{}
	for _, s := range spans {
		switch {
		case s.Kind == SpanSelf:
			svc := serviceOf(s.Service, s.Pod, "")
			if own[svc] == nil {
				own[svc] = map[int64]float64{}
			}
			own[svc][s.T] += float64(s.Count)
		case s.Kind == SpanInbound && s.Caller != "":
			e := edge{serviceOf(s.Caller, s.CallerPod, ""), serviceOf(s.Service, s.Pod, "")}
			if e.caller == e.callee {
				continue
			}
			if calls[e] == nil {
				calls[e] = map[int64]float64{}
			}
			calls[e][s.T] += float64(s.Count)
		}
	}
	var out []finding
	judged := 0
	for e, c := range calls {
		exp := own[e.caller]
		v, ok := fr.judgeCount(counts{c: c, e: exp})
		if !ok {
			continue
		}
		judged++
		ref := "/api/v1/traces?service=" + url.QueryEscape(e.caller) + "&" + winQuery(fr)
		switch {
		case v.Rise > 0 && v.Count >= 2*math.Max(v.Expected, 1):
			novel := "more often"
			if v.BaseCount == 0 {
				novel = "on a new call path"
			}
			out = append(out, finding{family: famStructure, svc: e.caller, z: zOfSurprise(v.Rise), s: surpriseZ(zOfSurprise(v.Rise)) / 2,
				onset: v.Onset, key: "calls|" + e.callee, spanBacked: true, ref: ref,
				what: fmt.Sprintf("calls %s %s: %.0f calls in the window where %.1f were expected for its own traffic", e.callee, novel, v.Count, v.Expected)})
		case v.Fall > 0 && v.Count <= v.Expected/2:
			out = append(out, finding{family: famStructure, svc: e.caller, z: zOfSurprise(v.Fall), s: surpriseZ(zOfSurprise(v.Fall)) / 2,
				key: "calls|" + e.callee, spanBacked: true, ref: ref,
				what: fmt.Sprintf("stopped calling %s: %.0f calls in the window where %.1f were expected for its own traffic", e.callee, v.Count, v.Expected)})
		}
	}
	return out, map[string]int{famStructure: judged}
}
