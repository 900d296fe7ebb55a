package rca

import (
	"math"

	"gonum.org/v1/gonum/mathext"

	"github.com/aftertrace/aftertrace/internal/chstore"
)

// levels are the probabilities of a span statistic's quantile sketch.
var levels = chstore.RCAQuantiles

// sketchCDF is the share of a sketched distribution at or below x: linear
// between its quantiles, from 0 at 0 to the lowest, and one more step of
// the top spacing beyond the highest.
func sketchCDF(q []float64, x float64) float64 {
	n := len(q)
	if n == 0 || n != len(levels) {
		return 0
	}
	if x < q[0] {
		if q[0] <= 0 {
			return 0
		}
		return levels[0] * max(0, x) / q[0]
	}
	for i := 1; i < n; i++ {
		if x < q[i] {
			return levels[i-1] + (levels[i]-levels[i-1])*(x-q[i-1])/(q[i]-q[i-1])
		}
	}
	top := q[n-1] - q[n-2]
	if top <= 0 {
		return 1
	}
	return min(1, levels[n-1]+(1-levels[n-1])*(x-q[n-1])/top)
}

// mixture is a set of bucket sketches, each standing for its samples.
type mixture struct {
	qs [][]float64
	ns []float64
	n  float64
}

func (m *mixture) add(q []float64, n float64) {
	if len(q) != len(levels) || n <= 0 {
		return
	}
	m.qs = append(m.qs, q)
	m.ns = append(m.ns, n)
	m.n += n
}

// cdf is the share of the mixture's samples at or below x.
func (m mixture) cdf(x float64) float64 {
	if m.n == 0 {
		return 0
	}
	var s float64
	for i, q := range m.qs {
		s += m.ns[i] * sketchCDF(q, x)
	}
	return s / m.n
}

// quantile inverts cdf by bisection on a log scale.
func (m mixture) quantile(p float64) float64 {
	lo, hi := math.Inf(1), 0.0
	for _, q := range m.qs {
		lo, hi = min(lo, q[0]), max(hi, q[len(q)-1]+(q[len(q)-1]-q[len(q)-2]))
	}
	if m.n == 0 || hi <= 0 {
		return 0
	}
	lo = max(lo/2, 1)
	for i := 0; i < 60; i++ {
		mid := math.Sqrt(lo * hi)
		if m.cdf(mid) < p {
			lo = mid
		} else {
			hi = mid
		}
		if hi/lo < 1.001 {
			break
		}
	}
	return hi
}

// above is the (fractional) number of samples above x.
func (m mixture) above(x float64) float64 {
	var k float64
	for i, q := range m.qs {
		k += m.ns[i] * (1 - sketchCDF(q, x))
	}
	return k
}

// surpriseBinom is −log10 of the probability of k or more of n draws
// landing where each lands with probability p.
func surpriseBinom(k, n, p float64) float64 {
	if n <= 0 || k <= n*p || p <= 0 {
		return 0
	}
	if p >= 1 {
		return 0
	}
	k = min(k, n)
	v := mathext.RegIncBeta(k, n-k+1, p)
	if v <= 0 || math.IsNaN(v) {
		// log of the leading term, beyond double precision
		lb := lgamma(n+1) - lgamma(k+1) - lgamma(n-k+1) + k*math.Log(p) + (n-k)*math.Log1p(-p)
		return -lb / math.Ln10
	}
	return -math.Log10(v)
}
