package replay

import (
	"sort"
	"time"
)

// Window is a half-open time range [Start, End) in unix ns.
type Window struct{ Start, End int64 }

// Contains says whether t lies in w.
func (w Window) Contains(t int64) bool { return t >= w.Start && t < w.End }

// FaultWindows returns, per fault, the minutes from before the inject
// minute to after it: inject minute −before … inject minute +after, both
// ends included (so 5m/5m spans 11 minutes). Overlapping windows merge.
func FaultWindows(faults []Fault, before, after time.Duration) []Window {
	var ws []Window
	for _, f := range faults {
		m := f.Time.Truncate(time.Minute)
		ws = append(ws, Window{Start: m.Add(-before).UnixNano(), End: m.Add(after + time.Minute).UnixNano()})
	}
	return merge(ws)
}

// BaselineWindow is the earliest span of n minutes starting at or after
// from (rounded down to the minute) that overlaps no fault window.
func BaselineWindow(from int64, n int, faults []Window) Window {
	start := time.Unix(0, from).Truncate(time.Minute).UnixNano()
	length := int64(n) * int64(time.Minute)
	for moved := true; moved; {
		moved = false
		for _, w := range faults {
			if start < w.End && start+length > w.Start {
				start, moved = w.End, true
			}
		}
	}
	return Window{Start: start, End: start + length}
}

func merge(ws []Window) []Window {
	sort.Slice(ws, func(i, j int) bool { return ws[i].Start < ws[j].Start })
	var out []Window
	for _, w := range ws {
		if n := len(out); n > 0 && w.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, w.End)
			continue
		}
		out = append(out, w)
	}
	return out
}

// windowFilter keeps times inside any of its windows; nil keeps everything.
type windowFilter []Window

func (f windowFilter) keep(t int64) bool {
	if f == nil {
		return true
	}
	for _, w := range f {
		if w.Contains(t) {
			return true
		}
	}
	return false
}
