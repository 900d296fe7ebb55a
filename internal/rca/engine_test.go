package rca

import (
	"testing"
)

// The score scale the anomaly loop's threshold is set on: on a
// three-service chain with a 60-minute baseline, noise scores stay low
// and a sustained rise of the leaf's own time scores more the larger it
// is; the leaf ranks first.
func TestSyntheticLeafSlowdown(t *testing.T) {
	noise := 0.0
	for seed := uint64(1); seed <= 5; seed++ {
		res := analyzeSynthetic(signals{spans: chain(seed, -60, 10, 20, "", 1)})
		if len(res.Candidates) > 0 {
			noise = max(noise, res.Candidates[0].Score)
		}
	}
	prev := noise
	for _, f := range []float64{1.2, 1.5, 3, 16} {
		res := analyzeSynthetic(signals{spans: chain(9, -60, 10, 20, "store", f)})
		if len(res.Candidates) == 0 || res.Candidates[0].Service != "store" {
			t.Fatalf("×%v: candidates %+v, want store first", f, res.Candidates)
		}
		s := res.Candidates[0].Score
		t.Logf("own time ×%v: score %.2f", f, s)
		if s < prev {
			t.Errorf("×%v scores %.2f, less than a smaller rise (%.2f)", f, s, prev)
		}
		prev = s
	}
	t.Logf("noise: at most %.2f", noise)
}
