package chstore

import "math"

// HistogramQuantile estimates the q-quantile (0 < q <= 1) of an explicit
// bucket histogram the way Prometheus' histogram_quantile does: find the
// bucket holding rank q·count and interpolate linearly within it. The
// first bucket starts at 0 (or is answered by its upper bound when that is
// not positive), and the overflow bucket is answered by the highest
// explicit bound. OTLP histograms may also carry min and max: when known
// they replace those outer edges and bound the answer. ok is false when the
// histogram holds no observations.
func HistogramQuantile(q float64, bounds []float64, counts []uint64, minV, maxV *float64) (v float64, ok bool) {
	n := min(len(counts), len(bounds)+1)
	var total uint64
	for _, c := range counts[:n] {
		total += c
	}
	if total == 0 || math.IsNaN(q) {
		return 0, false
	}
	rank := q * float64(total)
	var cum uint64
	for i := 0; i < n; i++ {
		prev := cum
		cum += counts[i]
		if float64(cum) < rank || counts[i] == 0 {
			continue
		}
		var lower, upper float64
		switch {
		case i == len(bounds): // overflow bucket (bound, +Inf)
			if i == 0 { // no explicit bounds at all
				if minV != nil && maxV != nil {
					return clampQuantile(*minV+(*maxV-*minV)*(rank/float64(total)), minV, maxV), true
				}
				return 0, false
			}
			if maxV == nil {
				return bounds[i-1], true
			}
			lower, upper = bounds[i-1], *maxV
		case i == 0:
			upper = bounds[0]
			switch {
			case minV != nil && *minV <= upper:
				lower = *minV
			case upper <= 0:
				return clampQuantile(upper, minV, maxV), true
			default:
				lower = 0
			}
		default:
			lower, upper = bounds[i-1], bounds[i]
		}
		v = lower + (upper-lower)*(rank-float64(prev))/float64(counts[i])
		return clampQuantile(v, minV, maxV), true
	}
	return 0, false
}

// ExpHistogramQuantile estimates the q-quantile of an exponential
// histogram: bucket index k covers (base^k, base^(k+1)] with
// base = 2^(2^-scale) (negative buckets mirror that), the zero bucket covers
// [-zeroThreshold, zeroThreshold]; the bucket holding rank q·count is found
// in ascending value order and interpolated linearly. min and max, when
// known, bound the answer.
func ExpHistogramQuantile(q float64, scale int32, zeroCount uint64, zeroThreshold float64,
	posOffset int32, pos []uint64, negOffset int32, neg []uint64, minV, maxV *float64,
) (v float64, ok bool) {
	total := zeroCount
	for _, c := range pos {
		total += c
	}
	for _, c := range neg {
		total += c
	}
	if total == 0 || math.IsNaN(q) {
		return 0, false
	}
	width := math.Exp2(-float64(scale)) // log2 of base
	bound := func(k int64) float64 { return math.Exp2(float64(k) * width) }
	rank := q * float64(total)
	var cum uint64
	at := func(c uint64, lower, upper float64) (float64, bool) {
		prev := cum
		cum += c
		if c == 0 || float64(cum) < rank {
			return 0, false
		}
		return clampQuantile(lower+(upper-lower)*(rank-float64(prev))/float64(c), minV, maxV), true
	}
	for j := len(neg) - 1; j >= 0; j-- {
		k := int64(negOffset) + int64(j)
		if v, ok := at(neg[j], -bound(k+1), -bound(k)); ok {
			return v, true
		}
	}
	if v, ok := at(zeroCount, -zeroThreshold, zeroThreshold); ok {
		return v, true
	}
	for j := range pos {
		k := int64(posOffset) + int64(j)
		if v, ok := at(pos[j], bound(k), bound(k+1)); ok {
			return v, true
		}
	}
	return 0, false
}

// SummaryQuantile returns the value a summary reported for quantile q, if
// it reported that quantile.
func SummaryQuantile(q float64, qvs []QuantileValue) (float64, bool) {
	for _, qv := range qvs {
		if math.Abs(qv.Quantile-q) < 1e-9 {
			return qv.Value, true
		}
	}
	return 0, false
}

func clampQuantile(v float64, minV, maxV *float64) float64 {
	if minV != nil && v < *minV {
		v = *minV
	}
	if maxV != nil && v > *maxV {
		v = *maxV
	}
	return v
}
