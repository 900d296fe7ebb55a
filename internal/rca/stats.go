package rca

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/mathext"
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

// level is the robust summary of a signal's baseline values.
type level struct {
	Center, Scale float64
	N             int
}

// learnLevel summarizes baseline values: median and MAD-based scale, at
// least floor (the signal's resolution: a signal that never moved still
// needs a change of that size to count). With few values the MAD
// underestimates the spread, so it is widened.
func learnLevel(xs []float64, floor float64) level {
	if len(xs) == 0 {
		return level{Center: math.NaN()}
	}
	m := median(xs)
	dev := make([]float64, len(xs))
	for i, x := range xs {
		dev[i] = math.Abs(x - m)
	}
	scale := madScale * median(dev)
	if n := len(xs); n < 10 {
		scale *= 1 + 2/float64(n)
	}
	return level{Center: m, Scale: max(scale, floor, 1e-12), N: len(xs)}
}

func (l level) z(x float64) float64 {
	if l.N == 0 || math.IsNaN(x) {
		return 0
	}
	return (x - l.Center) / l.Scale
}

// surpriseZ is −log10 of the probability that a Student t variable with 3
// degrees of freedom exceeds z: robust z-scores of real signals are
// heavy-tailed, so z = 5 is about 1 in 130 and z = 50 about 1 in 10⁵,
// not the normal distribution's 1 in 3.5 million and never.
func surpriseZ(z float64) float64 {
	if !(z > 0) {
		return 0
	}
	// P(T3 > z) = (φ − sin(2φ)/2)/π with φ = atan(√3/z).
	phi := math.Atan(math.Sqrt(3) / z)
	var p float64
	if phi < 1e-3 {
		p = (2.0/3*math.Pow(phi, 3) - 2.0/15*math.Pow(phi, 5)) / math.Pi
	} else {
		p = (phi - math.Sin(2*phi)/2) / math.Pi
	}
	return -math.Log10(max(p, 1e-300))
}

// surprisePoisson is −log10 of the mid-p probability of k or more events
// where lambda were expected.
func surprisePoisson(k, lambda float64) float64 {
	if k <= 0 || lambda <= 0 && k <= 0 {
		return 0
	}
	if lambda <= 0 {
		lambda = 1e-9
	}
	if k <= lambda {
		return 0
	}
	// P(X ≥ k) = P(k, λ) (regularized lower incomplete gamma); mid-p takes
	// half of P(X = k).
	kk := math.Floor(k)
	upper := mathext.GammaIncReg(kk, lambda)
	pk := math.Exp(kk*math.Log(lambda) - lambda - lgamma(kk+1))
	p := upper - pk/2
	if p <= 0 || math.IsNaN(p) {
		// beyond double precision: the log of the first term bounds it
		return -(kk*math.Log(lambda) - lambda - lgamma(kk+1)) / math.Ln10
	}
	return -math.Log10(p)
}

// surprisePoissonLow is −log10 of the mid-p probability of k or fewer
// events where lambda were expected.
func surprisePoissonLow(k, lambda float64) float64 {
	if lambda <= 0 || k >= lambda {
		return 0
	}
	kk := math.Floor(k)
	// P(X ≤ k) = Q(k+1, λ) (regularized upper incomplete gamma)
	p := mathext.GammaIncRegComp(kk+1, lambda) - math.Exp(kk*math.Log(lambda)-lambda-lgamma(kk+1))/2
	if kk == 0 {
		p = math.Exp(-lambda) / 2
	}
	if p <= 0 || math.IsNaN(p) {
		return lambda / math.Ln10
	}
	return -math.Log10(p)
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}

// zOfSurprise is the normal z-score as improbable as a surprise s
// (−log10 p): count tests (Poisson) are put on the same scale as level
// tests this way, then judged with the same heavy tail (surpriseZ), since
// real counts are overdispersed (bursts, retries, one failure logging
// several lines) and their Poisson p-values overstate the surprise.
func zOfSurprise(s float64) float64 {
	if s <= 0 {
		return 0
	}
	if s < 250 {
		if z := math.Sqrt2 * math.Erfcinv(2*math.Pow(10, -s)); !math.IsInf(z, 0) && !math.IsNaN(z) {
			return z
		}
	}
	// ln p = −s ln 10; Mills' ratio: z ≈ √(2 ln(1/p) − ln(2π · 2 ln(1/p)))
	l := s * math.Ln10
	return math.Sqrt(2*l - math.Log(4*math.Pi*l))
}
