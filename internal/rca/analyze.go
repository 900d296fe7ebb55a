package rca

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aftertrace/aftertrace/internal/events"
)

// Signal families: each judges one kind of evidence and says, per
// service, how surprising its strongest change is.
const (
	famLatency   = "latency"   // span self time
	famNetwork   = "network"   // the gap between a caller's client span and the callee's server span
	famErrors    = "errors"    // failed spans
	famLogs      = "logs"      // log templates: new or surging errors, vanished or new lines
	famMetrics   = "metrics"   // pod and service metrics
	famEvents    = "events"    // container events (Kubernetes, runtime security)
	famStructure = "structure" // calls that vanished: a callee that does less
	famEdges     = "edges"     // per-edge request metrics (a service mesh's) into the service
)

var families = []string{famLatency, famNetwork, famErrors, famLogs, famMetrics, famEdges, famEvents, famStructure}

// finding is one judged signal of one service (and pod).
type finding struct {
	family         string
	svc, pod, ctr  string
	what           string  // plain-language description
	z              float64 // robust z (or its equivalent) of the change
	s              float64 // surprise: −log10 of its probability under the baseline, compressed
	onset          int64
	ref            string
	spanBacked     bool
	key            string // what was judged (for propagation: the same metric on a callee)
	fell           bool   // a fall of activity (passed on to the callers, see upstreamDrops)
	explainedShare float64
	explainedBy    string
}

// ranked is a candidate with bookkeeping.
type ranked struct {
	Candidate
	spanBacked bool
	onset      int64
	fam        map[string]float64
}

type analysis struct {
	cands  []ranked
	judged map[string]int // series judged per family
	moved  map[string]int // services with a finding per family
}

// serviceOf names the service of a row: its service.name or, when the
// sender set none, the workload of its pod, else its container.
func serviceOf(svc, pod, ctr string) string {
	if svc != "" && !strings.HasPrefix(svc, "unknown_service") {
		return svc
	}
	if pod != "" {
		return events.WorkloadFromPodName(pod)
	}
	if ctr != "" {
		return ctr
	}
	return svc
}

// winQuery is the window as API query parameters.
func winQuery(fr frame) string {
	return "start=" + url.QueryEscape(time.Unix(0, fr.start).UTC().Format(time.RFC3339)) +
		"&end=" + url.QueryEscape(time.Unix(0, fr.end).UTC().Format(time.RFC3339))
}

// analyze judges every signal family and ranks the services.
func analyze(sig signals, fr frame, scope string, maxN int) analysis {
	g := callGraph(sig.spans)
	var fs []finding
	judged := map[string]int{}
	for _, fam := range []struct {
		name string
		run  func() ([]finding, map[string]int)
	}{
		{famLatency, func() ([]finding, map[string]int) { return latencyFindings(sig.spans, fr) }},
		{famErrors, func() ([]finding, map[string]int) { return errorFindings(sig.errs, sig.spans, sig.logs, g, fr) }},
		{famLogs, func() ([]finding, map[string]int) { return logFindings(sig.logs, fr) }},
		{famMetrics, func() ([]finding, map[string]int) { return metricFindings(sig.metrics, fr) }},
		{famEvents, func() ([]finding, map[string]int) { return eventFindings(sig.events, fr) }},
		{famStructure, func() ([]finding, map[string]int) { return callFindings(sig.spans, fr) }},
	} {
		out, n := fam.run()
		fs = append(fs, out...)
		for f, k := range n {
			judged[f] += k
		}
	}
	for i := range fs {
		fs[i].s *= familyWeight[fs[i].family]
	}
	res := fuse(fs, g, scope, maxN)
	res.judged = judged
	return res
}

// fuse combines the findings into one score per service. A service's
// findings fall into groups of one phenomenon (its self time; the network
// into it; its failures, as failed traces and error templates; each
// metric with its derived forms); a group counts with its strongest
// finding, and the service's score sums its strongest groups with
// diminishing weights (1, ½, ¼), so many correlated signals do not outvote
// one clear one. Evidence a callee explains is discounted (see below), and
// a callee whose activity fell passes that evidence to its callers: they
// stopped calling it.
func fuse(fs []finding, g graph, scope string, maxN int) analysis {
	fs = append(fs, upstreamDrops(fs, g)...)
	bySvc := map[string]map[string]*finding{} // service -> group -> strongest finding
	for i := range fs {
		f := &fs[i]
		if f.svc == "" || strings.HasPrefix(f.svc, "unknown_service") {
			continue // evidence without an owner cannot rank one
		}
		if scope != "" && f.svc != scope && !g.reaches(scope, f.svc) {
			continue
		}
		m := bySvc[f.svc]
		if m == nil {
			m = map[string]*finding{}
			bySvc[f.svc] = m
		}
		grp := groupOf(f)
		if b := m[grp]; b == nil || f.s > b.s {
			m[grp] = f
		}
	}
	sum := func(gs []*finding, share func(*finding) float64) float64 {
		ss := make([]float64, 0, len(gs))
		for _, f := range gs {
			ss = append(ss, f.s*(1-share(f)))
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(ss)))
		var t, w float64 = 0, 1
		for i, x := range ss {
			if i >= maxGroups {
				break
			}
			t += w * x
			w /= 2
		}
		return t
	}
	groups := map[string][]*finding{}
	own, causes, slows := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for svc, m := range bySvc {
		var cs, ss []*finding
		for _, f := range m {
			groups[svc] = append(groups[svc], f)
			if causesUpstream(f) {
				cs = append(cs, f)
				if f.family != famErrors && f.family != famLogs {
					ss = append(ss, f)
				}
			}
		}
		own[svc] = sum(groups[svc], func(*finding) float64 { return 0 })
		causes[svc] = sum(cs, func(*finding) float64 { return 0 })
		slows[svc] = sum(ss, func(*finding) float64 { return 0 })
	}
	// A service whose callees moved is likely their symptom: its evidence
	// keeps the share its own strength has of its own plus the strongest
	// callee's, except what no callee can cause (events on it, the
	// network gap into it).
	res := analysis{moved: map[string]int{}}
	for svc, gs := range groups {
		down, downSvc := 0.0, ""
		slow, slowSvc := 0.0, ""
		for c := range g.descendants(svc) {
			if c != svc && causes[c] > down {
				down, downSvc = causes[c], c
			}
			if c != svc && slows[c] > slow {
				slow, slowSvc = slows[c], c
			}
		}
		for _, f := range gs {
			switch {
			case f.family == famErrors && slow > 0:
				// failures it is the deepest of, but a callee was slow:
				// timeouts
				f.explainedShare, f.explainedBy = slow/(own[svc]+slow), slowSvc
			case !local(f) && down > 0:
				f.explainedShare, f.explainedBy = down/(own[svc]+down), downSvc
			}
		}
		c := ranked{Candidate: Candidate{Service: svc}, fam: map[string]float64{}}
		c.Score = sum(gs, func(f *finding) float64 { return f.explainedShare })
		if c.Score <= 0 {
			continue
		}
		sort.Slice(gs, func(i, j int) bool {
			return gs[i].s*(1-gs[i].explainedShare) > gs[j].s*(1-gs[j].explainedShare)
		})
		c.Pod, c.Container = gs[0].pod, gs[0].ctr
		for i, f := range gs {
			if i >= maxEvidence {
				break
			}
			what := f.what
			if f.explainedShare > 0 {
				what += fmt.Sprintf(" (%.0f%% of it may come from its callee %s)", 100*f.explainedShare, f.explainedBy)
			}
			v := f.s * (1 - f.explainedShare)
			c.Evidence = append(c.Evidence, Evidence{Kind: f.family, Summary: what, Z: round2(f.z), Score: round2(v), Ref: f.ref})
			if _, ok := c.fam[f.family]; !ok {
				c.Signals = append(c.Signals, f.family)
				res.moved[f.family]++
			}
			c.fam[f.family] = max(c.fam[f.family], v)
			if f.spanBacked {
				c.spanBacked = true
			}
			if f.onset > 0 && (c.onset == 0 || f.onset < c.onset) {
				c.onset = f.onset
			}
		}
		if c.onset > 0 {
			t := time.Unix(0, c.onset).UTC()
			c.Onset = &t
		}
		c.Score = round2(c.Score)
		res.cands = append(res.cands, c)
	}
	sort.SliceStable(res.cands, func(i, j int) bool {
		a, b := res.cands[i], res.cands[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		if len(a.fam) != len(b.fam) {
			return len(a.fam) > len(b.fam)
		}
		return a.Service < b.Service
	})
	if len(res.cands) > maxN {
		res.cands = res.cands[:maxN]
	}
	return res
}

// familyWeight scales each family's surprise: a pod-level metric is an
// aggregate of everything the pod does (and often of its node), so its
// move is weaker evidence about a request path than a request's own
// spans, failures and logs.
var familyWeight = map[string]float64{famLatency: 1, famNetwork: 1, famErrors: 1, famLogs: 1, famMetrics: 0.5, famEdges: 1, famEvents: 1, famStructure: 1}

// maxGroups is how many of a service's evidence groups its score sums;
// maxEvidence how many findings its answer lists.
const (
	maxGroups   = 3
	maxEvidence = 6
)

// groupOf names the phenomenon a finding belongs to: findings of one
// group are one piece of evidence.
func groupOf(f *finding) string {
	switch f.family {
	case famErrors, famLogs:
		return "failures"
	case famMetrics:
		return "metric|" + metricBase(strings.TrimPrefix(f.key, "metric|"))
	case famEvents:
		return f.family + "|" + f.key
	}
	return f.family
}

// metricBase strips the suffixes that make derived forms of one quantity
// (…_p90/_p99/_quantile quantiles, …_rate/_ratio/_utilization shares of a
// limit, …_total/_sum/_count/_bucket parts), so they count as one.
func metricBase(name string) string {
	for changed := true; changed; {
		changed = false
		i := strings.LastIndexAny(name, "._")
		if i <= 0 {
			break
		}
		suf := strings.ToLower(name[i+1:])
		if len(suf) >= 2 && suf[0] == 'p' && strings.Trim(suf[1:], "0123456789") == "" {
			name, changed = name[:i], true
			continue
		}
		switch suf {
		case "rate", "ratio", "utilization", "usage", "percent", "pct", "total", "sum", "count", "bucket", "quantile", "seconds", "bytes":
			name, changed = name[:i], true
		}
	}
	return name
}

// upstreamDrops turns a service's fallen activity into evidence on its
// callers: a callee whose metrics fell (less traffic, CPU, I/O) has been
// called less, and the caller that stopped calling it is the candidate,
// not the callee (a service without callers keeps its own).
func upstreamDrops(fs []finding, g graph) []finding {
	best := map[string]*finding{}
	for i := range fs {
		f := &fs[i]
		if f.fell && (best[f.svc] == nil || f.s > best[f.svc].s) {
			best[f.svc] = f
		}
	}
	callers := map[string][]string{}
	for caller, cs := range g.callees {
		for c := range cs {
			callers[c] = append(callers[c], caller)
		}
	}
	var out []finding
	for svc, f := range best {
		for _, p := range callers[svc] {
			out = append(out, finding{family: famStructure, svc: p, s: f.s, z: f.z, key: svc,
				what: fmt.Sprintf("its callee %s does less: %s", svc, f.what), ref: f.ref})
		}
	}
	// A fall of activity is its callers' evidence, not the service's own.
	for i := range fs {
		if fs[i].fell && len(callers[fs[i].svc]) > 0 {
			fs[i].s = 0
		}
	}
	return out
}

// causesUpstream reports evidence of a change its callers feel: it
// fails, it is slow, its containers had events. (A callee's metrics alone
// do not explain its callers' failures.)
func causesUpstream(f *finding) bool {
	switch f.family {
	case famErrors, famLogs, famLatency, famNetwork, famEdges, famEvents:
		return true
	}
	return false
}

// local reports evidence a callee does not cause: events on the
// service's own containers, the network gap of calls into it, its own
// (self) time, which excludes the time its callees take, its pods'
// metrics (but request durations, which include its callees'), and the failures of traces
// it is the deepest failure of (its callees did not fail there). What a callee does cause in its callers
// are error lines they log, changed calls and slower answers (per-edge
// response times).
func local(f *finding) bool {
	if f.family == famMetrics && measuresCalls(strings.TrimPrefix(f.key, "metric|")) {
		return false
	}
	return f.family != famErrors && f.family != famLogs && f.family != famStructure && f.family != famEdges
}

// measuresCalls reports a metric of request durations that include the
// callees' time: by the OpenTelemetry semantic conventions' naming
// (http.client.*, rpc.client.*, db.client.* for the calls a service
// makes; http.server.*, rpc.server.* for the answers it gives) and its
// usual spellings elsewhere, a name with a "client" or "server" token. Its
// move is the callees' as much as its own.
func measuresCalls(name string) bool {
	for _, tok := range strings.FieldsFunc(strings.ToLower(name), func(r rune) bool { return r == '.' || r == '_' || r == '-' }) {
		if tok == "client" || tok == "server" {
			return true
		}
	}
	return false
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
