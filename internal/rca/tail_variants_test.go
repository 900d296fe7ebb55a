package rca

import (
	"math"
	"testing"
)

// A skewed signal (a tight floor with frequent excursions, e.g. a latency
// quantile of a lightly used service) has a tiny MAD: a value a little
// beyond its largest excursions is as rare as its tail says, not as its
// MAD says; a value far beyond the tail stays an anomaly; both tails.
func TestTailBound(t *testing.T) {
	hist := make([]float64, 60)
	for i := range hist {
		hist[i] = 0.0049 + 0.00005*math.Sin(float64(i)*1.3)
		if i%5 == 0 { // every fifth bucket an excursion up to 0.0095
			hist[i] = 0.006 + 0.0035*float64(i%20)/15
		}
	}
	a, ok := judge(hist, []point{{T: 1, V: 0.011}, {T: 2, V: 0.0098}, {T: 3, V: 0.0099}})
	if !ok || a.Z >= zOnset {
		t.Fatalf("just beyond the excursions: z = %v, want < %v", a.Z, zOnset)
	}
	if a, _ = judge(hist, []point{{T: 1, V: 0.05}, {T: 2, V: 0.06}}); a.Z < zKnee {
		t.Fatalf("far beyond the tail: z = %v, want ≥ %v", a.Z, zKnee)
	}
	// the lower tail, mirrored
	neg := make([]float64, len(hist))
	for i, v := range hist {
		neg[i] = 1 - v
	}
	if a, _ = judge(neg, []point{{T: 1, V: 1 - 0.011}, {T: 2, V: 1 - 0.0098}}); a.Z <= -zOnset || a.Z > 0 {
		t.Fatalf("lower tail: z = %v, want in (-%v, 0]", a.Z, zOnset)
	}
	// One history bucket at the window's level (a fluke, or the first
	// minute of this very anomaly cut by the window's start) does not
	// stretch the tail: the rise is still news.
	flat := make([]float64, 40)
	for i := range flat {
		flat[i] = 11 + 0.3*math.Sin(float64(i)*1.7)
	}
	flat[39] = 61
	if a, _ = judge(flat, []point{{T: 1, V: 61}, {T: 2, V: 62}}); a.Z < zKnee {
		t.Fatalf("one history bucket at the level: z = %v, want ≥ %v", a.Z, zKnee)
	}
	// too short a history to model a tail: the robust z stands
	if z := tailBound(hist[:tailMin-1], 0.0098, 20); z != 20 {
		t.Fatalf("short history: z = %v, want 20", z)
	}
}

func TestMetricVariants(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"app.server_latency_p90", "app.server_latency_p99", true},
		{"http.duration.q50", "http.duration.q999", true},
		{"app.cpu_usage", "app.cpu_usage_rate", true},
		{"memory_usage_rate", "memory_usage", true},
		{"app.syscall_read", "app.syscall_write", false},
		{"net.receive_bytes", "net.transmit_bytes", false},
		{"app.cpu_usage", "app.memory_usage", false},
		{"cpu", "cpu_rate", false}, // one token: too little to tell
		{"app.latency_p90", "app.errors_p90", false},
	} {
		if got := variants(tc.a, tc.b); got != tc.want {
			t.Errorf("variants(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// Quantiles of one distribution are one piece of evidence even when their
// series do not correlate: a pod whose p90 and p99 latency rose does not
// outrank one whose CPU and memory both rose as much.
func TestVariantsCountOnce(t *testing.T) {
	svcs := []string{"a", "b", "c", "d"}
	metrics := []string{"app.latency_p90", "app.latency_p99", "app.cpu_usage", "app.memory_usage"}
	res := rank(signals{metrics: metricSynth(svcs, metrics, func(svc, n string, m int) float64 {
		v := 100 * (1 + 0.05*math.Sin(float64(m)*1.9+float64(len(n))))
		switch {
		case m < 0:
		case svc == "a" && n == "app.latency_p90":
			v *= 2.4
		case svc == "a" && n == "app.latency_p99" && m >= 2:
			v *= 2.4
		case svc == "b" && n == "app.cpu_usage":
			v *= 2.2
		case svc == "b" && n == "app.memory_usage" && m >= 2:
			v *= 2.2
		}
		return v
	})}, window40(), "", 10)
	if len(res.Candidates) < 2 || res.Candidates[0].Service != "b" {
		t.Fatalf("ranking = %v (scores %v, %v), want b (two quantities) before a (two quantiles of one)", names(res.Candidates), res.Candidates[0].Score, res.Candidates[1].Score)
	}
}
