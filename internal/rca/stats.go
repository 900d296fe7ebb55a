package rca

import (
	"math"
	"slices"
)

// madScale turns a median absolute deviation into a standard deviation
// estimate for normally distributed data.
const madScale = 1.4826

// median returns the median of xs (NaN for none); xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// baseline is the robust summary of a signal's history.
type baseline struct {
	Median, Scale float64
	N             int
}

// relFloor bounds the scale from below by a fraction of the median: a
// signal that never moved in its history (MAD 0) still needs a change of
// that fraction to count, and a few points cannot claim a tiny spread.
const relFloor = 0.05

// learn summarizes history: median and MAD-based scale, floored so that
// z-scores stay finite.
func learn(history []float64) baseline {
	if len(history) == 0 {
		return baseline{Median: math.NaN()}
	}
	m := median(history)
	dev := make([]float64, len(history))
	for i, x := range history {
		dev[i] = math.Abs(x - m)
	}
	scale := madScale * median(dev)
	// With few points the MAD underestimates the spread: widen it.
	if n := len(history); n < 10 {
		scale *= 1 + 2/float64(n)
	}
	floor := relFloor * math.Abs(m)
	if floor == 0 {
		floor = 1e-9
	}
	return baseline{Median: m, Scale: max(scale, floor), N: len(history)}
}

// z is the robust z-score of x against b (0 without a baseline).
func (b baseline) z(x float64) float64 {
	if b.N == 0 || math.IsNaN(x) {
		return 0
	}
	return (x - b.Median) / b.Scale
}

// zCap bounds one signal's z-score so one huge deviation cannot drown the
// rest of the evidence.
const zCap = 50

// zKnee is where z-scores start to be compressed logarithmically: beyond
// it, a ten times larger deviation adds zKnee·ln 10, so large deviations
// still order by size (no ties at the cap) without one drowning the rest.
var zKnee = 10.0

func clampZ(z float64) float64 {
	a := math.Abs(z)
	if math.IsNaN(a) {
		return 0
	}
	if a > zKnee {
		a = zKnee * (1 + math.Log(a/zKnee))
	}
	return math.Copysign(min(a, zCap), z)
}

// point is one value of a signal at a time (unix ns, bucket start).
type point struct {
	T int64
	V float64
}

// anomaly is the verdict on one signal of one candidate.
type anomaly struct {
	Z        float64 // signed robust z sustained in the window (capped): see judgeFloor
	Peak     float64 // z of the most deviating window point
	Onset    int64   // first window time at which |z| passed zOnset (0: never)
	Value    float64 // the window value at the peak
	Baseline baseline
}

// zOnset is the |z| from which a window point counts as anomalous when the
// onset is looked for: three robust standard deviations.
const zOnset = 3

// judge compares the window points with the history. It needs at least
// minHistory history points; otherwise ok is false.
func judge(history []float64, window []point) (a anomaly, ok bool) {
	return judgeFloor(history, window, 0)
}

// judgeFloor is judge with an absolute lower bound on the spread.
//
// The verdict is the sustained deviation, not the single most deviating
// point: with two or more window points, Z is the second strongest z of
// the peak's direction. A fault lasts; one bucket off in an otherwise
// normal window is what a noisy (low-traffic, quantized) signal does by
// chance, and the more points a window has, the more such single spikes
// it shows.
func judgeFloor(history []float64, window []point, floor float64) (a anomaly, ok bool) {
	if len(history) < minHistory || len(window) == 0 {
		return a, false
	}
	b := learn(history)
	b.Scale = max(b.Scale, floor)
	a.Baseline = b
	zs := make([]float64, len(window))
	peak := 0
	for i, p := range window {
		zs[i] = clampZ(tailBound(history, p.V, seen(history, p.V, b.z(p.V))))
		if math.Abs(zs[i]) > math.Abs(zs[peak]) {
			peak = i
		}
	}
	a.Z, a.Value = zs[peak], window[peak].V
	if len(window) >= 2 {
		second := 0.0
		for i, z := range zs {
			if i != peak && z*a.Z > 0 && math.Abs(z) > math.Abs(second) {
				second = z
			}
		}
		a.Peak = a.Z
		a.Z = second
	}
	for i, p := range window {
		if math.Abs(zs[i]) >= zOnset && zs[i]*a.Z > 0 {
			a.Onset = p.T
			break
		}
	}
	return a, true
}

// minHistory is the fewest history points a baseline is learned from.
const minHistory = 3

// seenMin is how many history buckets must have reached a value for it
// to count as already seen (see seen): one bucket may be a fluke, two is
// the least replication.
const seenMin = 2

// seen bounds z by how often the history already reached x: a value the
// baseline produced in at least seenMin buckets is not beyond what the
// signal does — noisy, quantized (histogram quantiles jump between bucket
// bounds) and bursty signals spike now and then although their MAD is
// tiny — so its z is at most the normal quantile of the share of history
// buckets that reached it (≈ 1.7 for 2 of 60).
func seen(history []float64, x, z float64) float64 {
	var k int
	for _, v := range history {
		if (z > 0 && v >= x) || (z < 0 && v <= x) {
			k++
		}
	}
	if z == 0 || k < seenMin {
		return z
	}
	ze := max(0, -normQuantile((float64(k)+0.5)/float64(len(history)+1)))
	if math.Abs(z) > ze {
		return math.Copysign(ze, z)
	}
	return z
}

// normQuantile is the standard normal quantile function.
func normQuantile(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

// tailMin is the fewest history points from which the tail of a signal is
// modelled (see tailBound).
const tailMin = 20

// tailBound bounds z by how rare the history's own tail makes x: the
// history values beyond its upper (lower) quartile are modelled as an
// exponential tail (the usual peaks-over-threshold model), so a value a
// little beyond the largest the history shows — a skewed signal with a
// tight floor and frequent excursions has a tiny MAD — is as rare as the
// tail says, not as the MAD says. The tail ends at the largest value two
// buckets reached (like seen, one bucket may be a fluke); a value beyond
// that end by more than the tail's width (end − quartile) is far beyond
// the tail and keeps its z.
func tailBound(history []float64, x, z float64) float64 {
	n := len(history)
	if n < tailMin || z == 0 {
		return z
	}
	s := slices.Clone(history)
	slices.Sort(s)
	sign := 1.0
	if z < 0 {
		// mirror: the lower tail is the upper tail of -x
		for i := range s {
			s[i] = -s[i]
		}
		slices.Sort(s)
		x, sign = -x, -1
	}
	// The tail ends at the largest value reached by seenMin buckets: one
	// bucket may be a fluke (or the start of this very anomaly, in a
	// bucket the window's start cuts), and must not stretch the tail.
	u, top := s[(3*n)/4], s[n-seenMin]
	var sum float64
	var k int
	for _, v := range s {
		if v > u && v <= top {
			sum += v - u
			k++
		}
	}
	// The model is trusted up to one tail width beyond that end; further
	// out there is no tail to speak of.
	if k < seenMin+1 || x <= u || sum <= 0 || x > top+(top-u) {
		return z
	}
	beta := sum / float64(k)
	p := float64(k) / float64(n+1) * math.Exp(-(x-u)/beta)
	zt := -normQuantile(p)
	if zt < math.Abs(z) {
		return sign * zt
	}
	return z
}
