package gateway

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// window is the range of record times (unix nanoseconds, inclusive) a
// tenant may send now. Older records would land in partitions no
// retention keeps, and a spread of them (a request over 120 past days)
// makes one insert span more partitions than ClickHouse accepts; records
// from the future would outlive every retention pass.
type window struct {
	lo, hi         uint64
	age, future    time.Duration // the bounds as configured, for messages
	ageIsPolicy    bool          // age is the tenant's longest retention
	loTime, hiTime time.Time
}

// recordWindow is tenantID's window at now (per-tenant overrides from
// tenant_limits, else the defaults; see limits.Limit).
func (s *Service) recordWindow(tenantID string, now time.Time) window {
	l := s.limits.Limit(tenantID)
	w := window{hi: ^uint64(0), age: l.OldestAge(), future: l.MaxFuture, ageIsPolicy: l.MaxAge == 0}
	if w.age > 0 {
		w.loTime = now.Add(-w.age)
		w.lo = uint64(max(w.loTime.UnixNano(), 0))
	}
	if w.future > 0 {
		w.hiTime = now.Add(w.future)
		w.hi = uint64(w.hiTime.UnixNano())
	}
	return w
}

// covers reports whether every time in [lo, hi] is inside w.
func (w window) covers(lo, hi uint64) bool { return lo >= w.lo && hi <= w.hi }

// check returns the reason t is outside w and the problem in words, or "".
func (w window) check(t uint64) (reason, problem string) {
	switch {
	case t < w.lo:
		why := "the --ingest-max-age or tenant limit"
		if w.ageIsPolicy {
			why = "the tenant's longest retention"
		}
		return reasonTooOld, formatNanos(t) + " is older than " + w.age.String() + " (" + why +
			"; records before " + w.loTime.UTC().Format(time.RFC3339) + " are not accepted)"
	case t > w.hi:
		return reasonTooNew, formatNanos(t) + " is more than " + w.future.String() +
			" in the future (records after " + w.hiTime.UTC().Format(time.RFC3339) + " are not accepted)"
	}
	return "", ""
}

func formatNanos(t uint64) string {
	if t > 1<<63-1 {
		return strconv.FormatUint(t, 10) + "ns"
	}
	return time.Unix(0, int64(t)).UTC().Format(time.RFC3339Nano)
}

// rejects tallies the records a filter removed from a request, by reason,
// and the first offence (field path and problem) for the OTLP
// partial_success message; and the oldest time it kept, which picks the
// lane (late records travel in the bulk lane).
type rejects struct {
	n        int
	byReason map[string]int
	first    string
	oldest   uint64 // 0: none seen
}

// check is w.check that also notes the oldest time kept.
func (r *rejects) check(w window, t uint64) (reason, problem string) {
	reason, problem = w.check(t)
	if reason == "" && (r.oldest == 0 || t < r.oldest) {
		r.oldest = t
	}
	return reason, problem
}

// add counts n records rejected for reason; field and problem describe the
// first of them if nothing was rejected before.
func (r *rejects) add(reason string, n int, field, problem string) {
	if n <= 0 {
		return
	}
	if r.byReason == nil {
		r.byReason = map[string]int{}
	}
	r.n += n
	r.byReason[reason] += n
	if r.first == "" {
		r.first = field + ": " + problem
	}
}

// reason is the label of a request rejected as a whole: its most common
// record reason.
func (r *rejects) reason() string {
	best, bn := "", -1
	for _, k := range r.reasons() {
		if r.byReason[k] > bn {
			best, bn = k, r.byReason[k]
		}
	}
	return best
}

func (r *rejects) reasons() []string {
	ks := make([]string, 0, len(r.byReason))
	for k := range r.byReason {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// message words the tally: "rejected 3 span(s) (too_old 2, invalid_id 1);
// first: <field>: <problem>".
func (r *rejects) message(unit string) string {
	if r.n == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("rejected " + strconv.Itoa(r.n) + " " + unit + "(s) (")
	for i, k := range r.reasons() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + " " + strconv.Itoa(r.byReason[k]))
	}
	b.WriteString("); first: " + r.first)
	return b.String()
}

// count adds the tally to the rejected-records counter.
func (r *rejects) count(c *prometheus.CounterVec, signal string) {
	for k, n := range r.byReason {
		c.WithLabelValues(signal, k).Add(float64(n))
	}
}
