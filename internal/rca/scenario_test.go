package rca

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// first is the top candidate's service ("" without candidates).
func first(r Result) string {
	if len(r.Candidates) == 0 {
		return ""
	}
	return r.Candidates[0].Service
}

// kinds lists the evidence kinds of a candidate.
func kinds(c Candidate) []string {
	var out []string
	for _, e := range c.Evidence {
		out = append(out, e.Kind)
	}
	return out
}

func TestScenarios(t *testing.T) {
	minute := func(m int) int64 { return synthStart.Add(time.Duration(m) * time.Minute).UnixNano() }
	base := traffic(1, shop, -60, 10, 30, fault{})
	for _, tc := range []struct {
		name     string
		sig      signals
		want     string
		evidence string // an evidence kind the first candidate must show
	}{
		{
			name: "slow own time (CPU starvation): the service, not its callers", want: "store", evidence: famLatency,
			sig: signals{spans: traffic(1, shop, -60, 10, 30, fault{self: map[string]float64{"store": 4}})},
		},
		{
			name: "network delay into a service: the callee of the widened gap", want: "pricing", evidence: famNetwork,
			sig: signals{spans: traffic(1, shop, -60, 10, 30, fault{gap: map[[2]string]float64{{"cart", "pricing"}: 200}})},
		},
		{
			name: "a caller whose gaps to all its callees widened is slow itself", want: "cart", evidence: famNetwork,
			sig: signals{spans: traffic(1, shop, -60, 10, 30, fault{gap: map[[2]string]float64{{"cart", "pricing"}: 30, {"cart", "store"}: 30}})},
		},
		{
			name: "failures: the deepest failing service of the failed traces", want: "store", evidence: famErrors,
			sig: signals{spans: base, errs: []ErrorTrace{
				{T: minute(1), Services: []string{"cart", "store", "web"}, Count: 40},
				{T: minute(2), Services: []string{"cart", "store", "web"}, Count: 35},
				{T: minute(-30), Services: []string{"web"}, Count: 1},
				{T: minute(-20), Services: []string{"catalog"}, Count: 1},
			}},
		},
		{
			name: "a new error template in a service's logs (no trace context)", want: "pricing", evidence: famLogs,
			sig: signals{spans: base, logs: logLines(func(m int) []LogPattern {
				ps := []LogPattern{
					{Service: "pricing", Pod: "pricing-5d9c-x7k2q", Key: "#:#:# INFO price computed for item #", T: minute(m), Count: 50},
					{Service: "web", Pod: "web-5d9c-x7k2q", Key: "#:#:# INFO GET / #", T: minute(m), Count: 80},
				}
				if m >= 0 {
					ps = append(ps, LogPattern{Service: "pricing", Pod: "pricing-5d9c-x7k2q", Key: "#:#:# ERROR rate table missing for currency #", T: minute(m), Count: 12})
				}
				return ps
			})},
		},
		{
			name: "a callee that stopped being called points at its caller", want: "cart",
			sig: signals{spans: base, metrics: metricSeries(func(m int) []MetricStat {
				rate := 50.0
				if m >= 0 {
					rate = 0.5
				}
				steady := 50 + float64(m%3)
				return []MetricStat{
					{Service: "store", Pod: "store-5d9c-x7k2q", Name: "requests", T: minute(m), Value: rate + float64(m%3)},
					{Service: "pricing", Pod: "pricing-5d9c-x7k2q", Name: "requests", T: minute(m), Value: rate + float64(m%2)},
					{Service: "catalog", Pod: "catalog-5d9c-x7k2q", Name: "requests", T: minute(m), Value: steady},
					{Service: "web", Pod: "web-5d9c-x7k2q", Name: "requests", T: minute(m), Value: steady},
					{Service: "cart", Pod: "cart-5d9c-x7k2q", Name: "requests", T: minute(m), Value: steady},
				}
			})},
		},
		{
			name: "a caller that stopped calling one of its callees (an early return)", want: "cart", evidence: famStructure,
			sig: signals{spans: func() []SpanStat {
				var out []SpanStat
				for _, s := range traffic(1, shop, -60, 10, 30, fault{}) {
					if s.T >= minute(0) && s.Kind == SpanInbound && s.Caller == "cart" && s.Service == "pricing" {
						continue // cart no longer calls pricing
					}
					out = append(out, s)
				}
				return out
			}()},
		},
		{
			name: "metrics only, no service.name: the workload of the pod", want: "payments", evidence: famMetrics,
			sig: signals{metrics: metricSeries(func(m int) []MetricStat {
				cpu := 0.2 + float64(m%4)*0.01
				if m >= 0 {
					cpu = 0.95
				}
				return []MetricStat{
					{Service: "unknown_service", Pod: "payments-7f9c5d6b4-x7k2q", Name: "container.cpu.utilization", T: minute(m), Value: cpu},
					{Service: "unknown_service", Pod: "orders-7f9c5d6b4-q2w4r", Name: "container.cpu.utilization", T: minute(m), Value: 0.3 + float64(m%5)*0.01},
				}
			})},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := analyzeSynthetic(tc.sig)
			if first(res) != tc.want {
				var got []string
				for _, c := range res.Candidates {
					got = append(got, fmt.Sprintf("%s=%.2f%v", c.Service, c.Score, kinds(c)))
				}
				t.Fatalf("ranked %v, want %s first", got, tc.want)
			}
			top := res.Candidates[0]
			if tc.evidence != "" && !slices.Contains(kinds(top), tc.evidence) {
				t.Errorf("evidence kinds %v, want %s", kinds(top), tc.evidence)
			}
			if res.Status != StatusRanked {
				t.Errorf("status %q", res.Status)
			}
			for _, e := range top.Evidence {
				if e.Summary == "" || e.Ref == "" || !strings.HasPrefix(e.Ref, "/api/v1/") {
					t.Errorf("evidence without a summary or an API reference: %+v", e)
				}
			}
		})
	}
}

func logLines(at func(m int) []LogPattern) []LogPattern {
	var out []LogPattern
	for m := -60; m < 10; m++ {
		out = append(out, at(m)...)
	}
	return out
}

func metricSeries(at func(m int) []MetricStat) []MetricStat {
	var out []MetricStat
	for m := -60; m < 10; m++ {
		out = append(out, at(m)...)
	}
	return out
}

// An answer never reads as "nothing wrong" without saying why.
func TestVerdicts(t *testing.T) {
	minute := func(m int) int64 { return synthStart.Add(time.Duration(m) * time.Minute).UnixNano() }
	for _, tc := range []struct {
		name   string
		sig    signals
		status string
		reason string
	}{
		{"no data at all", signals{}, StatusInsufficentData, "no spans, logs or metrics in the window"},
		{"data only in the window", signals{metrics: []MetricStat{
			{Service: "a", Pod: "a-1", Name: "m", T: minute(1), Value: 1}, {Service: "a", Pod: "a-1", Name: "m", T: minute(2), Value: 1},
		}}, StatusNoBaseline, "to learn what is normal"},
		{"steady traffic", signals{spans: traffic(3, shop, -60, 10, 30, fault{})}, StatusNoSignalMoved, "stayed within its baseline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := analyzeSynthetic(tc.sig)
			if res.Status != tc.status || len(res.Candidates) != 0 {
				t.Fatalf("status %q with %d candidates, want %q", res.Status, len(res.Candidates), tc.status)
			}
			if !strings.Contains(strings.Join(res.Reasons, "\n"), tc.reason) || len(res.Suggestions) == 0 {
				t.Errorf("reasons %q, suggestions %q", res.Reasons, res.Suggestions)
			}
			if res.Coverage == nil || res.Signals == nil {
				t.Errorf("coverage %v, signals %v", res.Coverage, res.Signals)
			}
		})
	}
}

// Asking about one service keeps it and its callees.
func TestScopeToService(t *testing.T) {
	sig := signals{spans: traffic(1, shop, -60, 10, 30, fault{self: map[string]float64{"store": 4, "catalog": 4}})}
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return synthStart.Add(10 * time.Minute) }
	res, err := New(fakeSource{sig}, cfg).Analyze(t.Context(), Query{TenantID: "t", Start: synthStart, End: synthStart.Add(10 * time.Minute), Service: "cart"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Candidates {
		if c.Service != "cart" && c.Service != "store" && c.Service != "pricing" {
			t.Errorf("candidate %s is neither cart nor one of its callees", c.Service)
		}
	}
	if first(res) != "store" {
		t.Errorf("first = %q, want store", first(res))
	}
}
