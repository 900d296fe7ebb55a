package rca

import (
	"math"
	"strings"
	"testing"
	"time"
)

// A single spike in an otherwise normal window is what a noisy signal does
// by chance: the verdict is the sustained deviation, the peak is kept.
func TestJudgeSustained(t *testing.T) {
	hist := []float64{10, 11, 9, 10, 10, 10, 11, 9}
	win := []point{{T: 1, V: 10}, {T: 2, V: 40}, {T: 3, V: 10}}
	a, ok := judge(hist, win)
	if !ok || math.Abs(a.Z) >= zOnset || a.Peak < zOnset {
		t.Fatalf("single spike: z=%v peak=%v ok=%v, want |z| < %v and peak ≥ %v", a.Z, a.Peak, ok, zOnset, zOnset)
	}
	win = []point{{T: 1, V: 10}, {T: 2, V: 40}, {T: 3, V: 38}}
	a, _ = judge(hist, win)
	if a.Z < zOnset || a.Onset != 2 {
		t.Fatalf("lasting rise: z=%v onset=%v", a.Z, a.Onset)
	}
	// one window point: the point itself
	a, _ = judge(hist, win[1:2])
	if a.Z < zOnset {
		t.Fatalf("one point: z=%v", a.Z)
	}
}

// Beyond zKnee deviations are compressed, not cut: they still order by size.
func TestClampZOrders(t *testing.T) {
	prev := 0.0
	for _, z := range []float64{1, 5, 10, 20, 100, 400} {
		c := clampZ(z)
		if c <= prev || c > zCap || clampZ(-z) != -c {
			t.Fatalf("clampZ(%v) = %v after %v", z, c, prev)
		}
		prev = c
	}
	if clampZ(math.NaN()) != 0 || clampZ(3) != 3 || clampZ(1e9) != zCap {
		t.Fatal("clampZ: NaN or small values changed")
	}
}

// Removing what peers share never flips a normal signal into an anomaly of
// the opposite direction.
func TestRemoveShared(t *testing.T) {
	for _, tc := range []struct{ z, shared, want float64 }{
		{10, 4, 6}, {3, 10, 0}, {-0.1, 50, -0.1}, {-8, -3, -5}, {-2, -6, 0}, {5, -5, 5},
	} {
		if got := removeShared(tc.z, tc.shared); got != tc.want {
			t.Errorf("removeShared(%v, %v) = %v, want %v", tc.z, tc.shared, got, tc.want)
		}
	}
}

// metricSynth builds pod metrics for services over minutes -40..+4 (the
// window starts at minute 0); val(svc, metric, minute) gives the value.
func metricSynth(svcs, metrics []string, val func(svc, metric string, m int) float64) []MetricStat {
	var out []MetricStat
	for m := -40; m < 5; m++ {
		t := t0.UnixNano() + int64(m)*stepNs
		for _, s := range svcs {
			for _, n := range metrics {
				out = append(out, MetricStat{Service: s, Pod: s + "-pod", Name: n, T: t, Value: val(s, n, m)})
			}
		}
	}
	return out
}

func window40() Window {
	return Window{Start: t0, End: t0.Add(5 * time.Minute), BaselineStart: t0.Add(-40 * time.Minute), Step: time.Minute}
}

// Three copies of one quantity (p90/p95/p99 of one latency) are one piece
// of evidence: the candidate scores as with one copy.
func TestCorrelatedSignalsCountOnce(t *testing.T) {
	score := func(metrics []string) float64 {
		vals := metricSynth([]string{"a", "b", "c"}, metrics, func(s, n string, m int) float64 {
			v := 100 * (1 + 0.05*math.Sin(float64(m)*1.3+float64(s[0])))
			if s == "a" && m >= 0 {
				v *= 3
			}
			return v * (1 + 0.1*float64(len(n)))
		})
		res := rank(signals{metrics: vals}, window40(), "", 10)
		if len(res.Candidates) == 0 || res.Candidates[0].Service != "a" {
			t.Fatalf("ranking = %v, want a first", names(res.Candidates))
		}
		return res.Candidates[0].Score
	}
	one, three := score([]string{"lat_p90"}), score([]string{"lat_p90", "lat_p95x", "lat_p99xx"})
	if math.Abs(one-three) > 0.01 {
		t.Fatalf("score with three copies %v, with one %v: want equal", three, one)
	}
}

func TestCorrelation(t *testing.T) {
	a := map[int64]float64{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6}
	b := map[int64]float64{1: 2, 2: 4, 3: 6, 4: 8, 5: 10, 6: 12}
	if r, ok := correlation(a, b); !ok || math.Abs(r-1) > 1e-9 {
		t.Fatalf("r = %v ok = %v", r, ok)
	}
	if _, ok := correlation(a, map[int64]float64{1: 1, 2: 1}); ok {
		t.Fatal("too few shared buckets accepted")
	}
}

// A service that fails early stops calling its dependencies: their
// signals fall, and the evidence moves to their caller; the callees, doing
// less, do not explain (demote) the caller.
func TestUpstreamDrops(t *testing.T) {
	var s synth
	ms := float64(time.Millisecond)
	s.chain([]string{"edge", "mid", "leaf"}, func(string, int) float64 { return 10 * ms }, func(string, int) float64 { return 2 * ms })
	s.chain([]string{"mid", "leaf2"}, func(string, int) float64 { return 10 * ms }, func(string, int) float64 { return 2 * ms })
	svcs := []string{"edge", "mid", "leaf", "leaf2", "other"}
	metrics := metricSynth(svcs, []string{"cpu", "rx"}, func(svc, n string, m int) float64 {
		v := 100 * (1 + 0.05*math.Sin(float64(m)*1.9+float64(len(svc))))
		if (svc == "leaf" || svc == "leaf2") && m >= 0 {
			return v * 0.2 // the callees of mid do a fifth of their usual work
		}
		if svc == "mid" && n == "cpu" && m >= 0 {
			return v * 1.3 // mid itself changed only a little
		}
		return v
	})
	res := rank(signals{spans: s.spans, metrics: metrics}, window40(), "", 10)
	if len(res.Candidates) == 0 || res.Candidates[0].Service != "mid" {
		t.Fatalf("ranking = %v, want mid first", names(res.Candidates))
	}
	var credited bool
	for _, e := range res.Candidates[0].Evidence {
		if e.Kind == "propagation" && strings.Contains(e.Summary, "leaf") && strings.Contains(e.Summary, "doing less") {
			credited = true
		}
		if strings.Contains(e.Summary, "likely inherited") {
			t.Errorf("mid demoted by a callee that only does less: %s", e.Summary)
		}
	}
	if !credited {
		t.Errorf("mid has no evidence naming its callees' drop: %+v", res.Candidates[0].Evidence)
	}
}

// A quantized signal (a histogram quantile stuck at a bucket bound, with
// the odd jump to the next bounds) has a tiny MAD: a jump to a level its
// history reached in several buckets is not an anomaly, a level it never
// reached is.
func TestJudgeAlreadySeen(t *testing.T) {
	hist := make([]float64, 60)
	for i := range hist {
		hist[i] = 0.005
	}
	hist[10], hist[25], hist[41] = 0.025, 0.01, 0.025
	win := []point{{T: 1, V: 0.025}, {T: 2, V: 0.025}, {T: 3, V: 0.005}}
	a, ok := judge(hist, win)
	if !ok || a.Z >= zOnset {
		t.Fatalf("level seen in 2 history buckets: z = %v, want < %v", a.Z, zOnset)
	}
	win = []point{{T: 1, V: 0.1}, {T: 2, V: 0.1}, {T: 3, V: 0.005}}
	if a, _ = judge(hist, win); a.Z < zKnee {
		t.Fatalf("level never seen: z = %v, want ≥ %v", a.Z, zKnee)
	}
	// seen once only (one earlier bucket): still an anomaly
	hist[25] = 0.005
	hist[41] = 0.005
	win = []point{{T: 1, V: 0.025}, {T: 2, V: 0.025}}
	if a, _ = judge(hist, win); a.Z < zKnee {
		t.Fatalf("level seen once: z = %v, want ≥ %v", a.Z, zKnee)
	}
}
