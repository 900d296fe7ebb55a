package retention

import (
	"cmp"
	"slices"
)

// Forever stands for the days of rows kept forever (a default of 0 days):
// more than any policy keeps, so "older than its days" is never true.
const Forever = 1 << 30

// Keep is the retention in force, which enforcement applies to stored rows
// (not only to rows written afterwards): every tenant's policies, tenants
// that cleared theirs with none, and the days of the rows no policy
// matches, per signal (0: forever).
type Keep struct {
	Policies    map[string][]Policy
	DefaultDays map[Signal]int
}

// Default is the days (Forever for 0) of the rows of signal that no policy
// matches; their class is ClassDefault.
func (k Keep) Default(signal Signal) int {
	if d := k.DefaultDays[signal]; d > 0 {
		return d
	}
	return Forever
}

// Rules returns the tenant's policies of signal in the order Match tries
// them (the most specific first, the longest first among equals), and
// whether the last one has no selector, so that every row matches one and
// the default never applies.
func (k Keep) Rules(tenant string, signal Signal) (rules []Policy, complete bool) {
	for _, p := range k.Policies[tenant] {
		if p.Signal == signal {
			rules = append(rules, p)
		}
	}
	slices.SortStableFunc(rules, func(a, b Policy) int {
		return cmp.Or(cmp.Compare(specificity(&b), specificity(&a)), cmp.Compare(b.Days, a.Days))
	})
	complete = len(rules) > 0 && specificity(&rules[len(rules)-1]) == 0
	return rules, complete
}

// Bounds returns the fewest and the most days the policy in force keeps a
// row of the tenant's signals, and the class of the most (Forever: kept
// forever, class ClassDefault).
func (k Keep) Bounds(tenant string, signals ...Signal) (lo, hi int, hiClass string) {
	lo, hi, hiClass = Forever, 0, ClassDefault
	consider := func(days int, class string) {
		lo = min(lo, days)
		if days > hi {
			hi, hiClass = days, class
		}
	}
	for _, sig := range signals {
		rules, complete := k.Rules(tenant, sig)
		for _, p := range rules {
			consider(p.Days, DaysClass(p.Days))
		}
		if !complete {
			consider(k.Default(sig), ClassDefault)
		}
	}
	return lo, hi, hiClass
}
