package rca

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)

const stepNs = int64(time.Minute)

// synth builds span statistics for a call chain: for every minute from
// -30 to +5 (the window starts at minute 0), every service of the chain
// has a self series and every call an inbound series; change(svc, minute)
// alters the self p90 of a service.
type synth struct {
	spans []SpanStat
}

func (s *synth) chain(chain []string, selfP90 func(svc string, minute int) float64, gap func(callee string, minute int) float64) {
	for m := -30; m < 5; m++ {
		t := t0.UnixNano() + int64(m)*stepNs
		jitter := 1 + 0.02*math.Sin(float64(m)*1.7)
		for i, svc := range chain {
			s.spans = append(s.spans, SpanStat{Kind: SpanSelf, Service: svc, Pod: svc + "-pod", Operation: "op " + svc,
				T: t, Count: 100, P90: selfP90(svc, m) * jitter})
			if i > 0 {
				s.spans = append(s.spans, SpanStat{Kind: SpanInbound, Service: svc, Pod: svc + "-pod", Operation: "call " + svc,
					Caller: chain[i-1], CallerPod: chain[i-1] + "-pod", T: t, Count: 100, P90: gap(svc, m) * jitter})
			}
		}
	}
}

func window() Window {
	return Window{Start: t0, End: t0.Add(5 * time.Minute), BaselineStart: t0.Add(-30 * time.Minute), Step: time.Minute}
}

func TestRankSpans(t *testing.T) {
	ms := float64(time.Millisecond)
	chain := []string{"edge", "mid", "leaf"}
	tests := []struct {
		name  string
		self  func(string, int) float64
		gap   func(string, int) float64
		first string
	}{
		{"leaf self time rises", func(s string, m int) float64 {
			if s == "leaf" && m >= 1 {
				return 50 * ms
			}
			return 10 * ms
		}, func(string, int) float64 { return 2 * ms }, "leaf"},
		{"mid self time rises", func(s string, m int) float64 {
			if s == "mid" && m >= 0 {
				return 40 * ms
			}
			return 10 * ms
		}, func(string, int) float64 { return 2 * ms }, "mid"},
		{"network into leaf slows", func(string, int) float64 { return 10 * ms }, func(s string, m int) float64 {
			if s == "leaf" && m >= 2 {
				return 100 * ms
			}
			return 2 * ms
		}, "leaf"},
		{"edge own time falls", func(s string, m int) float64 {
			if s == "edge" && m >= 0 {
				return 1 * ms
			}
			return 10 * ms
		}, func(string, int) float64 { return 2 * ms }, "edge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s synth
			s.chain(chain, tc.self, tc.gap)
			res := rank(signals{spans: s.spans}, window(), "", 10)
			if len(res.Candidates) == 0 || res.Candidates[0].Service != tc.first {
				t.Fatalf("ranking = %+v, want %s first", names(res.Candidates), tc.first)
			}
			if len(res.Candidates[0].Evidence) == 0 || res.Candidates[0].Evidence[0].Ref == "" {
				t.Errorf("top evidence = %+v", res.Candidates[0].Evidence)
			}
			if res.Candidates[0].Onset == nil {
				t.Errorf("no onset")
			}
		})
	}
}

// A caller whose calls to all its callees slow down (it is starved
// itself) is ranked above the callees.
func TestRankSlowCaller(t *testing.T) {
	ms := float64(time.Millisecond)
	var s synth
	self := func(string, int) float64 { return 10 * ms }
	for _, callee := range []string{"a", "b", "c"} {
		s.chain([]string{"hub", callee}, self, func(_ string, m int) float64 {
			if m >= 0 {
				return 60 * ms
			}
			return 2 * ms
		})
	}
	res := rank(signals{spans: s.spans}, window(), "", 10)
	if len(res.Candidates) == 0 || res.Candidates[0].Service != "hub" {
		t.Fatalf("ranking = %v, want hub first", names(res.Candidates))
	}
}

// Pod metrics: a change on one pod beats the same metric changing on
// every pod (a shared cause), a missing span signal is no error, and a
// callee explains its caller's inherited metric anomaly.
func TestRankMetrics(t *testing.T) {
	pods := []string{"p1", "p2", "p3", "p4"}
	var ms []MetricStat
	for m := -30; m < 5; m++ {
		t := t0.UnixNano() + int64(m)*stepNs
		for i, p := range pods {
			wob := 1 + 0.03*math.Sin(float64(m+i))
			cpu := 10.0 * wob
			if p == "p3" && m >= 1 {
				cpu = 90
			}
			shared := 5.0 * wob // rises everywhere at once
			if m >= 0 {
				shared = 50
			}
			ms = append(ms, MetricStat{Service: "s" + p, Pod: p, Name: "cpu", T: t, Value: cpu},
				MetricStat{Service: "s" + p, Pod: p, Name: "shared", T: t, Value: shared})
		}
	}
	res := rank(signals{metrics: ms}, window(), "", 10)
	if len(res.Candidates) == 0 || res.Candidates[0].Pod != "p3" {
		t.Fatalf("ranking = %v, want p3 first", names(res.Candidates))
	}
	if res.Signals["spans"] != 0 || res.Signals["metrics"] == 0 {
		t.Errorf("signals = %v", res.Signals)
	}
}

func TestRankEventsAndNoData(t *testing.T) {
	w := window()
	if res := rank(signals{}, w, "", 10); len(res.Candidates) != 0 {
		t.Fatalf("no data: %v", names(res.Candidates))
	}
	ev := Event{ID: "e1", Type: "oom_killed", Reason: "OOMKilled", Service: "api", Pod: "api-1", T: t0.Add(time.Minute).UnixNano(), Severity: 17}
	res := rank(signals{events: []Event{ev}}, w, "", 10)
	if len(res.Candidates) != 1 || res.Candidates[0].Pod != "api-1" || res.Candidates[0].Evidence[0].Kind != "event" {
		t.Fatalf("events only: %+v", res.Candidates)
	}
}

// The service filter keeps the service and its callees.
func TestRankServiceFilter(t *testing.T) {
	ms := float64(time.Millisecond)
	var s synth
	s.chain([]string{"edge", "mid", "leaf"}, func(svc string, m int) float64 {
		if m >= 0 {
			return 40 * ms
		}
		return 10 * ms
	}, func(string, int) float64 { return 2 * ms })
	res := rank(signals{spans: s.spans}, window(), "mid", 10)
	for _, c := range res.Candidates {
		if c.Service == "edge" {
			t.Errorf("edge is no callee of mid: %v", names(res.Candidates))
		}
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name    string
		hist    []float64
		win     []float64
		wantOK  bool
		wantDir float64
	}{
		{"too little history", []float64{1, 2}, []float64{5}, false, 0},
		{"no window", []float64{1, 2, 3}, nil, false, 0},
		{"rise", []float64{10, 11, 9, 10, 10}, []float64{10, 30, 28}, true, 1},
		{"fall", []float64{10, 11, 9, 10, 10}, []float64{1}, true, -1},
		{"flat history, small change stays finite", []float64{5, 5, 5, 5}, []float64{5.1}, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var win []point
			for i, v := range tc.win {
				win = append(win, point{T: int64(i + 1), V: v})
			}
			a, ok := judge(tc.hist, win)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if math.IsInf(a.Z, 0) || math.IsNaN(a.Z) || math.Abs(a.Z) > zCap || a.Z*tc.wantDir <= 0 {
				t.Errorf("z = %v", a.Z)
			}
		})
	}
}

func TestStep(t *testing.T) {
	for _, tc := range []struct{ w, want time.Duration }{
		{4 * time.Minute, time.Minute}, {10 * time.Minute, time.Minute}, {time.Hour, 6 * time.Minute},
	} {
		if got := Step(tc.w); got != tc.want {
			t.Errorf("Step(%v) = %v, want %v", tc.w, got, tc.want)
		}
	}
}

func names(cs []ranked) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Service+"/"+c.Pod)
	}
	return out
}
