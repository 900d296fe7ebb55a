package rca

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"
)

// fakeSource serves fixed signals.
type fakeSource struct {
	sig signals
}

func (f fakeSource) SpanStats(context.Context, Range) ([]SpanStat, error)     { return f.sig.spans, nil }
func (f fakeSource) LogPatterns(context.Context, Range) ([]LogPattern, error) { return f.sig.logs, nil }
func (f fakeSource) ErrorTraces(context.Context, Range) ([]ErrorTrace, error) { return f.sig.errs, nil }
func (f fakeSource) MetricStats(context.Context, Range) ([]MetricStat, error) {
	return f.sig.metrics, nil
}
func (f fakeSource) Events(context.Context, Range) ([]Event, error) { return f.sig.events, nil }
func (f fakeSource) ExampleTraces(context.Context, Range, []string, int) (map[string][]string, error) {
	return nil, nil
}

// synthStart is when the synthetic window starts.
var synthStart = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// sketchOf is the quantile sketch of samples.
func sketchOf(xs []float64) []float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	q := make([]float64, len(levels))
	for i, p := range levels {
		q[i] = s[min(len(s)-1, int(p*float64(len(s))))]
	}
	return q
}

// chain builds span statistics of web → cart → store, n calls a minute
// from minute from to minute to (relative to synthStart); each service's
// own time is ~N(10ms, 1ms) and each call's gap ~N(2ms, 0.2ms); from
// minute 0 on, the own time of service slow is multiplied by factor.
func chain(seed uint64, from, to, n int, slow string, factor float64) []SpanStat {
	rnd := rand.New(rand.NewPCG(seed, 7))
	svcs := []string{"web", "cart", "store"}
	var out []SpanStat
	for m := from; m < to; m++ {
		t := synthStart.Add(time.Duration(m) * time.Minute).UnixNano()
		for i, s := range svcs {
			self := make([]float64, n)
			for k := range self {
				self[k] = float64(10*time.Millisecond) + rnd.NormFloat64()*float64(time.Millisecond)
				if m >= 0 && s == slow {
					self[k] *= factor
				}
			}
			out = append(out, SpanStat{Kind: SpanSelf, Service: s, Pod: s + "-5d9c-a1", Operation: "handle " + s, T: t, Count: uint64(n), Q: sketchOf(self)})
			if i == 0 {
				continue
			}
			gap := make([]float64, n)
			for k := range gap {
				gap[k] = float64(2*time.Millisecond) + rnd.NormFloat64()*float64(200*time.Microsecond)
			}
			out = append(out, SpanStat{Kind: SpanInbound, Service: s, Pod: s + "-5d9c-a1", Operation: "call " + s, Callee: "handle " + s,
				Caller: svcs[i-1], CallerPod: svcs[i-1] + "-5d9c-a1", T: t, Count: uint64(n), Q: sketchOf(gap)})
		}
	}
	return out
}

// analyzeSynthetic ranks a window of 10 minutes from synthStart.
func analyzeSynthetic(sig signals) Result {
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return synthStart.Add(10 * time.Minute) } // no data after the window
	res, err := New(fakeSource{sig}, cfg).Analyze(context.Background(), Query{TenantID: "t", Start: synthStart, End: synthStart.Add(10 * time.Minute)})
	if err != nil {
		panic(err)
	}
	return res
}

// topology is a synthetic application: who calls whom.
type topology map[string][]string

// fault changes the window (minute ≥ 0) of a synthetic application.
type fault struct {
	self map[string]float64    // service → factor on its own time
	gap  map[[2]string]float64 // caller, callee → factor on the call's gap
}

// traffic builds span statistics of calls along topo, n a minute from
// minute from to minute to, own times ~N(10ms, 1ms), gaps ~N(2ms, 0.2ms).
func traffic(seed uint64, topo topology, from, to, n int, f fault) []SpanStat {
	rnd := rand.New(rand.NewPCG(seed, 11))
	var out []SpanStat
	sample := func(mean, sd, factor float64) []float64 {
		xs := make([]float64, n)
		for k := range xs {
			xs[k] = (mean + rnd.NormFloat64()*sd) * factor
		}
		return xs
	}
	svcs := map[string]bool{}
	for a, bs := range topo {
		svcs[a] = true
		for _, b := range bs {
			svcs[b] = true
		}
	}
	names := make([]string, 0, len(svcs))
	for s := range svcs {
		names = append(names, s)
	}
	slices.Sort(names)
	for m := from; m < to; m++ {
		t := synthStart.Add(time.Duration(m) * time.Minute).UnixNano()
		for _, s := range names {
			factor := 1.0
			if m >= 0 && f.self[s] > 0 {
				factor = f.self[s]
			}
			out = append(out, SpanStat{Kind: SpanSelf, Service: s, Pod: s + "-5d9c-x7k2q", Operation: "handle", T: t, Count: uint64(n),
				Q: sketchOf(sample(float64(10*time.Millisecond), float64(time.Millisecond), factor))})
			for _, c := range topo[s] {
				gf := 1.0
				if m >= 0 && f.gap[[2]string{s, c}] > 0 {
					gf = f.gap[[2]string{s, c}]
				}
				out = append(out, SpanStat{Kind: SpanInbound, Service: c, Pod: c + "-5d9c-x7k2q", Operation: "call " + c, Callee: "handle",
					Caller: s, CallerPod: s + "-5d9c-x7k2q", T: t, Count: uint64(n),
					Q: sketchOf(sample(float64(2*time.Millisecond), float64(200*time.Microsecond), gf))})
			}
		}
	}
	return out
}

// shop is a small application: web calls cart and catalog, cart calls
// store and pricing.
var shop = topology{"web": {"cart", "catalog"}, "cart": {"store", "pricing"}}
