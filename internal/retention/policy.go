// Package retention decides how long telemetry is kept. Every ClickHouse
// table is partitioned by (date, retention_class); a row's class is
// chosen when it is written from its tenant's retention policies:
//
//   - "d<days>" (e.g. "d7", "d90"): the days of the most specific policy
//     matching the row's signal, namespace and service;
//   - "default": no policy matched; the days are the configured default of
//     the table's signal;
//   - "hold": a copy of a row under a forensic hold, never dropped.
//
// Partitions are shared by every tenant with the same days, so dropping
// (date, "d7") once date is more than 7 days old is right for all of
// them. A policy change applies to rows written after it: rows already
// written keep the class they were written with.
package retention

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// Signal is what a policy applies to.
type Signal string

// Signals with retention policies.
const (
	SignalSpans   Signal = "spans"
	SignalLogs    Signal = "logs"
	SignalMetrics Signal = "metrics"
	SignalEvents  Signal = "events"
	SignalLinks   Signal = "links"
)

// Signals lists every signal, in a fixed order.
var Signals = []Signal{SignalSpans, SignalLogs, SignalMetrics, SignalEvents, SignalLinks}

// Valid reports whether s is a known signal.
func (s Signal) Valid() bool {
	for _, k := range Signals {
		if s == k {
			return true
		}
	}
	return false
}

// Retention classes other than "d<days>".
const (
	ClassDefault = "default"
	ClassHold    = "hold"
)

// Limits of a policy.
const (
	MaxDays         = 100 * 365
	MaxPolicies     = 1000
	maxSelectorSize = 256
)

// Policy keeps a signal's rows of a tenant for Days days, optionally only
// rows of one namespace and/or one service (for events: the workload).
type Policy struct {
	Signal    Signal `json:"signal"`
	Days      int    `json:"days"`
	Namespace string `json:"namespace,omitempty"`
	Service   string `json:"service,omitempty"`
}

// DaysClass is the class of rows kept for days days.
func DaysClass(days int) string { return "d" + strconv.Itoa(days) }

// ParseClass reports the days of a "d<days>" class; ok is false for
// "default", "hold" and anything else.
func ParseClass(class string) (days int, ok bool) {
	if len(class) < 2 || class[0] != 'd' || class == ClassDefault {
		return 0, false
	}
	for _, c := range class[1:] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(class[1:])
	if err != nil || n < 1 || class[1] == '0' {
		return 0, false
	}
	return n, true
}

// ValidClass reports whether class is one this package writes.
func ValidClass(class string) bool {
	if class == ClassDefault || class == ClassHold {
		return true
	}
	_, ok := ParseClass(class)
	return ok
}

// ValidatePolicies checks a whole policy set; the error names the first bad
// field (apperr KindInvalid, e.g. "policies[2].days").
func ValidatePolicies(ps []Policy) error {
	if len(ps) > MaxPolicies {
		return apperr.Invalid("policies", "at most %d policies", MaxPolicies)
	}
	seen := make(map[[3]string]bool, len(ps))
	for i, p := range ps {
		field := func(name string) string { return fmt.Sprintf("policies[%d].%s", i, name) }
		if !p.Signal.Valid() {
			return apperr.Invalid(field("signal"), "must be one of spans, logs, metrics, events, links")
		}
		if p.Days < 1 || p.Days > MaxDays {
			return apperr.Invalid(field("days"), "must be an integer from 1 to %d", MaxDays)
		}
		for name, v := range map[string]string{"namespace": p.Namespace, "service": p.Service} {
			if !utf8.ValidString(v) || len(v) > maxSelectorSize || strings.ContainsRune(v, 0) {
				return apperr.Invalid(field(name), "must be valid UTF-8 of at most %d bytes", maxSelectorSize)
			}
		}
		key := [3]string{string(p.Signal), p.Namespace, p.Service}
		if seen[key] {
			return apperr.Invalid(field("signal"), "another policy has the same signal, namespace and service")
		}
		seen[key] = true
	}
	return nil
}

// specificity ranks a policy's selectors: namespace and service over
// service over namespace over none.
func specificity(p *Policy) int {
	n := 0
	if p.Namespace != "" {
		n++
	}
	if p.Service != "" {
		n += 2
	}
	return n
}

// Match returns the class of a row of signal in namespace and service
// under the tenant's policies ps: the days of the most specific matching
// policy (the longest among equally specific ones), or ClassDefault.
func Match(ps []Policy, signal Signal, namespace, service string) string {
	best, bestRank := -1, -1
	for i := range ps {
		p := &ps[i]
		if p.Signal != signal || (p.Namespace != "" && p.Namespace != namespace) || (p.Service != "" && p.Service != service) {
			continue
		}
		r := specificity(p)
		if r > bestRank || (r == bestRank && p.Days > ps[best].Days) {
			best, bestRank = i, r
		}
	}
	if best < 0 {
		return ClassDefault
	}
	return DaysClass(ps[best].Days)
}
