package rca

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// logFindings mines templates from the window's and the baseline's log
// lines and judges, per service, every template's count against what the
// baseline's share of that template in the service's lines expects: new
// or surging error and warning templates. Error lines that mostly carry a
// trace id are left to errorFindings, which attributes them to the
// deepest failing service of their trace.
func logFindings(pats []LogPattern, fr frame) ([]finding, map[string]int) {
	if len(pats) == 0 {
		return nil, nil
	}
	// Mine the most frequent keys first: templates are then stable.
	type keyAgg struct {
		key string
		n   uint64
		sev uint8
	}
	agg := map[string]*keyAgg{}
	for _, p := range pats {
		a := agg[p.Key]
		if a == nil {
			a = &keyAgg{key: p.Key}
			agg[p.Key] = a
		}
		a.n += p.Count
		a.sev = max(a.sev, p.Severity)
	}
	keys := make([]*keyAgg, 0, len(agg))
	for _, a := range agg {
		keys = append(keys, a)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].n != keys[j].n {
			return keys[i].n > keys[j].n
		}
		return keys[i].key < keys[j].key
	})
	m := newTemplateMiner()
	tplOf := map[string]*logTemplate{}
	sevOf := map[*logTemplate]int{}
	for _, a := range keys {
		t := m.add(a.key)
		tplOf[a.key] = t
		sevOf[t] = max(sevOf[t], severityClass(a.sev, strings.Fields(a.key)))
	}

	type tplKey struct {
		svc string
		tpl *logTemplate
	}
	total := map[string]map[int64]float64{}
	series := map[tplKey]map[int64]float64{}
	podOf := map[tplKey]map[string]float64{}
	for _, p := range pats {
		svc := serviceOf(p.Service, p.Pod, "")
		if total[svc] == nil {
			total[svc] = map[int64]float64{}
		}
		total[svc][p.T] += float64(p.Count)
		k := tplKey{svc, tplOf[p.Key]}
		if series[k] == nil {
			series[k] = map[int64]float64{}
			podOf[k] = map[string]float64{}
		}
		series[k][p.T] += float64(p.Count)
		if fr.inWindow(p.T) {
			podOf[k][p.Pod] += float64(p.Count)
		}
	}
	var out []finding
	judged := 0
	for k, c := range series {
		sev := sevOf[k.tpl]
		if sev == sevOther {
			continue
		}
		v, ok := fr.judgeCount(counts{c: c, e: total[k.svc]})
		if !ok {
			continue
		}
		judged++
		if v.Rise <= 0 || v.Count < 2 {
			continue
		}
		level := "error"
		if sev == sevWarn {
			level = "warning"
		}
		novel := ""
		if v.BaseCount == 0 {
			novel = "new "
		}
		pod, best := "", 0.0
		for p, n := range podOf[k] {
			if n > best || n == best && p < pod {
				pod, best = p, n
			}
		}
		out = append(out, finding{family: famLogs, svc: k.svc, pod: pod, z: zOfSurprise(v.Rise), s: surpriseZ(zOfSurprise(v.Rise)), onset: v.Onset,
			key: "logs|" + k.tpl.Text(),
			what: fmt.Sprintf("%s%s log template %q: %.0f lines in the window where %.1f were expected",
				novel, level, truncate(k.tpl.Text(), 160), v.Count, v.Expected),
			ref: "/api/v1/logs?service=" + url.QueryEscape(k.svc) + "&" + winQuery(fr)})
	}
	return out, map[string]int{famLogs: judged}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
