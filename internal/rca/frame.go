package rca

import (
	"math"
	"slices"
	"sort"
)

// frame is the time layout of one analysis: buckets of step ns aligned to
// multiples of step; the window [start, end); every other bucket of the
// read range [from, to) is baseline.
type frame struct {
	start, end, step int64
	from, to         int64
}

// inWindow reports whether the bucket starting at t overlaps the window.
func (f frame) inWindow(t int64) bool { return t+f.step > f.start && t < f.end }

// winLen is the number of buckets the window overlaps.
func (f frame) winLen() int {
	first := floorDiv(f.start, f.step) * f.step
	return int((f.end - first + f.step - 1) / f.step)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// baseRuns returns the starts of the baseline stretches as long as the
// window (winLen buckets) that overlap neither the window nor the read
// range's ends: the "windows" the baseline itself had, for calibration.
func (f frame) baseRuns() []int64 {
	w := int64(f.winLen())
	if w <= 0 || f.step <= 0 {
		return nil
	}
	stride := max(1, w/4) * f.step
	first := floorDiv(f.from+f.step-1, f.step) * f.step
	var out []int64
	for b := first; b+w*f.step <= f.to; b += stride {
		if f.overlapsWindow(b, w) {
			continue
		}
		out = append(out, b)
	}
	return out
}

func (f frame) overlapsWindow(b, w int64) bool {
	for t := b; t < b+w*f.step; t += f.step {
		if f.inWindow(t) {
			return true
		}
	}
	return false
}

// point is one value of a signal in a bucket (unix ns, bucket start).
type point struct {
	T int64
	V float64
}

// verdict is the judgement of one signal.
type verdict struct {
	Z      float64 // sustained robust z in the judged direction (≥ 0)
	Onset  int64   // first window bucket with z ≥ zOnset (0: none)
	Value  float64 // the window value at the peak
	Center float64 // the baseline's median
	NBase  int
	Nulls  []float64 // the same statistic over the baseline's own stretches
}

// zOnset is the z from which a window bucket counts as anomalous when the
// onset is looked for: three robust standard deviations.
const zOnset = 3

// minBase is the fewest baseline values a level is learned from.
const minBase = 3

// sustained is the statistic of a stretch's z-scores: the second
// strongest when there are two or more. A fault lasts; one bucket off in
// an otherwise normal stretch is what a noisy signal does by chance.
func sustained(zs []float64) (stat float64, peak int) {
	if len(zs) == 0 {
		return 0, -1
	}
	peak = 0
	for i, z := range zs {
		if z > zs[peak] {
			peak = i
		}
	}
	if len(zs) == 1 {
		return zs[0], 0
	}
	second := math.Inf(-1)
	for i, z := range zs {
		if i != peak && z > second {
			second = z
		}
	}
	return second, peak
}

// sortedPoints lists a series by time.
func sortedPoints(m map[int64]float64) []point {
	ps := make([]point, 0, len(m))
	for t, v := range m {
		ps = append(ps, point{t, v})
	}
	slices.SortFunc(ps, func(a, b point) int { return cmpInt64(a.T, b.T) })
	return ps
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// judgeLevels judges a series (points by time) in both directions at once.
func (f frame) judgeLevels(ps []point, floor float64) (up, down verdict, ok bool) {
	var base []float64
	var win []point
	for _, p := range ps {
		if f.inWindow(p.T) {
			win = append(win, p)
		} else {
			base = append(base, p.V)
		}
	}
	if len(base) < minBase || len(win) == 0 {
		return up, down, false
	}
	sorted := slices.Clone(base)
	slices.Sort(sorted)
	l := learnLevel(base, floor)
	runs := f.baseRuns()
	w := int64(f.winLen())
	judge := func(dir float64) verdict {
		ld := l
		ld.Scale = max(l.Scale, tailScale(sorted, l.Center, dir))
		zs := make([]float64, len(win))
		for i, p := range win {
			zs[i] = seenBound(sorted, p.V, dir, dir*ld.z(p.V), 0)
		}
		stat, peak := sustained(zs)
		v := verdict{Z: max(stat, 0), Value: win[peak].V, Center: ld.Center, NBase: ld.N}
		for i, p := range win {
			if zs[i] >= zOnset {
				v.Onset = p.T
				break
			}
		}
		var buf []float64
		j := 0
		for _, b := range runs {
			for j < len(ps) && ps[j].T < b {
				j++
			}
			buf = buf[:0]
			for k := j; k < len(ps) && ps[k].T < b+w*f.step; k++ {
				buf = append(buf, seenBound(sorted, ps[k].V, dir, dir*ld.z(ps[k].V), 1))
			}
			if len(buf) > 0 {
				s, _ := sustained(buf)
				v.Nulls = append(v.Nulls, max(s, 0))
			}
		}
		return v
	}
	return judge(1), judge(-1), true
}

// tailLevelScale is the baseline quantile (in the judged direction) whose
// distance from the median sets a floor under the spread: a signal that
// jumps in more than a tenth of its baseline buckets (a spiky quantile, a
// bursty rate) is judged against the size of its jumps, while a tenth is
// more than an earlier incident or two in the baseline occupy.
const tailLevelScale = 0.9

// tailScale is the spread implied by the (sorted) baseline's tail: the
// distance of its tailLevelScale quantile from the median, in normal
// standard deviations.
func tailScale(sorted []float64, center, dir float64) float64 {
	i := int(math.Round(tailLevelScale * float64(len(sorted)-1)))
	q := sorted[i]
	if dir < 0 {
		q = sorted[len(sorted)-1-i]
	}
	return math.Abs(q-center) / 1.2816
}

// seenMin is how many baseline values must have reached a value for it
// to count as already seen: one may be a fluke, two is the least
// replication.
const seenMin = 2

// seenShare is the share of baseline buckets that must have reached a
// value for seenBound to apply: rarer exceedances are what an earlier
// incident in the baseline leaves, and must not hide the same change now
// (spiky signals are left to the calibration).
const seenShare = 0.25

// seenBound bounds z by how often the (sorted) baseline already reached x
// (not counting self values that are x itself): a value the baseline
// produced in a quarter of its buckets is not beyond what the signal does
// — sparse, quantized and bursty signals have a tiny MAD — so its z is at
// most the normal quantile of the share of baseline buckets that reached
// it.
func seenBound(sorted []float64, x, dir, z float64, self int) float64 {
	if z <= 0 {
		return z
	}
	var k int
	if dir > 0 {
		k = len(sorted) - sort.SearchFloat64s(sorted, x) // values ≥ x
	} else {
		k = sort.Search(len(sorted), func(i int) bool { return sorted[i] > x }) // values ≤ x
	}
	k -= self
	if k < seenMin || float64(k) < seenShare*float64(len(sorted)) {
		return z
	}
	ze := max(0, -math.Sqrt2*math.Erfinv(2*(float64(k)+0.5)/float64(len(sorted)+1)-1))
	return min(z, ze)
}

// counts is a count series with its exposure (the traffic it is a share
// of) by bucket.
type counts struct {
	c, e map[int64]float64
}

// trimShare is the share of baseline buckets with the highest rates that
// a pooled baseline rate leaves out: earlier incidents in the baseline
// raise a count in a few buckets, and must not hide the same rise now.
const trimShare = 0.2

// countVerdict is the judgement of a count against its baseline rate.
type countVerdict struct {
	Rise             float64 // surprise of the window's count being this high
	Fall             float64 // surprise of it being this low (against the untrimmed rate)
	Count, Expected  float64 // in the window
	BaseCount, BaseE float64 // in the (trimmed) baseline
	Onset            int64
}

// judgeCount compares the window's count with what the baseline's pooled
// rate (per unit of exposure, the top trimShare of buckets by rate left
// out) expects for the window's exposure, as a Poisson tail. A count never
// seen in the baseline is expected at half an event over the baseline's
// exposure.
func (f frame) judgeCount(s counts) (countVerdict, bool) {
	type b struct{ c, e, r float64 }
	var base []b
	var v countVerdict
	var winE float64
	first := int64(math.MaxInt64)
	for t, e := range s.e {
		c := s.c[t]
		if f.inWindow(t) {
			v.Count += c
			winE += e
			if c > 0 && t < first {
				first = t
			}
			continue
		}
		if e > 0 {
			base = append(base, b{c, e, c / e})
		}
	}
	if winE <= 0 || len(base) < minBase {
		return v, false
	}
	sort.Slice(base, func(i, j int) bool { return base[i].r < base[j].r })
	keep := len(base) - int(math.Floor(trimShare*float64(len(base))))
	for _, x := range base[:keep] {
		v.BaseCount += x.c
		v.BaseE += x.e
	}
	rate := max(v.BaseCount, 0.5) / v.BaseE
	v.Expected = rate * winE
	v.Rise = surprisePoisson(v.Count, v.Expected)
	var allC, allE float64
	for _, x := range base {
		allC, allE = allC+x.c, allE+x.e
	}
	if allC > 0 {
		v.Fall = surprisePoissonLow(v.Count, allC/allE*winE)
	}
	if first != math.MaxInt64 {
		v.Onset = first
	}
	return v, true
}

// calibrator keeps, per signal, the statistic the baseline's own
// window-long stretches produced, so a window's statistic is judged by
// how rare it is among them: a signal that often jumps (a spiky latency
// quantile, bursty error lines) makes a jump less surprising than one
// that never moves. It is kept per signal, not pooled over a kind of
// signal: other services' incidents in the baseline must not make this
// one look ordinary. Statistics are z-scores (counts enter as the z
// equivalent of their Poisson surprise).
type calibrator map[string][]float64

func (c calibrator) add(kind string, nulls []float64) { c[kind] = append(c[kind], nulls...) }

// minNulls is the fewest baseline statistics a calibration needs.
const minNulls = 20

func (c calibrator) sort() {
	for _, v := range c {
		sort.Float64s(v)
	}
}

// surprise is −log10 of how rare z is: the heavy-tailed parametric
// surprise, bounded by the empirical one among the kind's baseline
// statistics (at most log10(N+1), plus a t3-like tail beyond the largest
// of them).
func (c calibrator) surprise(kind string, z float64) float64 {
	param := surpriseZ(z)
	nulls := c[kind]
	n := len(nulls)
	if n < minNulls || z <= 0 {
		return param
	}
	k := n - sort.SearchFloat64s(nulls, z) // nulls ≥ z
	emp := -math.Log10(float64(k+1) / float64(n+1))
	if k == 0 {
		if top := nulls[n-1]; top > 0 {
			emp += 3 * math.Log10(z/top)
		} else {
			emp = param
		}
	}
	return min(param, emp)
}
