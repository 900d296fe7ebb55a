package rca

import (
	"math"
	"testing"
	"time"
)

func TestSurprises(t *testing.T) {
	// t3 tail: z=0 nothing, grows slowly (about 3·log10 z far out)
	prev := -1.0
	for _, z := range []float64{0, 1, 3, 10, 100, 1000} {
		s := surpriseZ(z)
		if s < prev {
			t.Errorf("surpriseZ(%v) = %v < %v", z, s, prev)
		}
		prev = s
	}
	if s := surpriseZ(10); math.Abs(s-3.0) > 0.2 {
		t.Errorf("surpriseZ(10) = %v, want ≈ 3", s)
	}
	// Poisson: 10 where 1 expected is rare; 1 where 1 expected is not
	if s := surprisePoisson(10, 1); s < 6 {
		t.Errorf("surprisePoisson(10, 1) = %v", s)
	}
	if s := surprisePoisson(1, 1); s != 0 {
		t.Errorf("surprisePoisson(1, 1) = %v", s)
	}
	// the z of a surprise inverts the normal tail, finite far out
	for _, s := range []float64{1.3, 6, 50, 400, 5000} {
		z := zOfSurprise(s)
		if math.IsInf(z, 0) || math.IsNaN(z) || z <= 0 {
			t.Fatalf("zOfSurprise(%v) = %v", s, z)
		}
	}
	if z := zOfSurprise(-math.Log10(0.0013499)); math.Abs(z-3) > 0.01 {
		t.Errorf("zOfSurprise(p=0.00135) = %v, want 3", z)
	}
	// binomial: 9 of 11 where 10 % expected
	if s := surpriseBinom(9, 11, 0.1); s < 6 || s > 8 {
		t.Errorf("surpriseBinom(9, 11, .1) = %v", s)
	}
	if s := surpriseBinom(1, 10, 0.1); s != 0 {
		t.Errorf("surpriseBinom(1, 10, .1) = %v", s)
	}
}

func TestLevelJudgement(t *testing.T) {
	step := int64(time.Minute)
	fr := frame{start: 60 * step, end: 64 * step, step: step, from: 0, to: 124 * step}
	if fr.winLen() != 4 {
		t.Fatalf("winLen = %d", fr.winLen())
	}
	for _, b := range fr.baseRuns() {
		if fr.overlapsWindow(b, 4) {
			t.Fatalf("baseline run at %d overlaps the window", b/step)
		}
	}
	flat := func(v func(m int64) float64) map[int64]float64 {
		out := map[int64]float64{}
		for m := int64(0); m < 124; m++ {
			out[m*step] = v(m)
		}
		return out
	}
	jitter := func(m int64) float64 { return 10 + float64(m%3)*0.1 }
	for _, tc := range []struct {
		name   string
		series map[int64]float64
		rise   bool
	}{
		{"a sustained rise", flat(func(m int64) float64 {
			if m >= 60 && m < 64 {
				return 30
			}
			return jitter(m)
		}), true},
		{"one bucket's spike is not sustained", flat(func(m int64) float64 {
			if m == 61 {
				return 30
			}
			return jitter(m)
		}), false},
		{"a value the baseline often reached", flat(func(m int64) float64 {
			if m%3 == 0 || (m >= 60 && m < 64) {
				return 30
			}
			return 10
		}), false},
		{"an earlier incident in the baseline does not hide it", flat(func(m int64) float64 {
			if (m >= 20 && m < 24) || (m >= 60 && m < 64) {
				return 30
			}
			return jitter(m)
		}), true},
	} {
		up, _, ok := fr.judgeLevels(sortedPoints(tc.series), 0.5)
		if !ok {
			t.Fatalf("%s: not judged", tc.name)
		}
		if got := up.Z >= zOnset; got != tc.rise {
			t.Errorf("%s: z = %.1f", tc.name, up.Z)
		}
		if len(up.Nulls) == 0 {
			t.Errorf("%s: no baseline statistics", tc.name)
		}
	}
}

func TestCountJudgement(t *testing.T) {
	step := int64(time.Minute)
	fr := frame{start: 60 * step, end: 64 * step, step: step, from: 0, to: 124 * step}
	mk := func(c func(m int64) float64) counts {
		s := counts{c: map[int64]float64{}, e: map[int64]float64{}}
		for m := int64(0); m < 124; m++ {
			s.e[m*step] = 100
			s.c[m*step] = c(m)
		}
		return s
	}
	burst := mk(func(m int64) float64 {
		if m >= 60 && m < 64 {
			return 20
		}
		return float64(m % 2)
	})
	v, ok := fr.judgeCount(burst)
	if !ok || v.Rise < 10 || v.Count != 80 {
		t.Errorf("burst: %+v", v)
	}
	// an earlier incident of a fifth of the baseline is trimmed away
	repeat := mk(func(m int64) float64 {
		if (m >= 60 && m < 64) || m%5 == 0 {
			return 20
		}
		return 0
	})
	v, _ = fr.judgeCount(repeat)
	if v.Rise < 10 {
		t.Errorf("repeat: rise %.1f (expected %.1f)", v.Rise, v.Expected)
	}
	// no exposure in the window: nothing to judge
	idle := mk(func(int64) float64 { return 1 })
	for m := int64(60); m < 64; m++ {
		idle.e[m*step] = 0
	}
	if _, ok := fr.judgeCount(idle); ok {
		t.Error("judged a window without exposure")
	}
}
