package retention

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/events"
)

// Capture rule triggers.
const (
	TriggerFalco    = "falco"      // a Falco alert of at least MinSeverity
	TriggerOOM      = "oom_killed" // a container OOMKilled
	TriggerIncident = "incident"   // an incident opened (needs the correlator's incidents)
)

// Bounds of a rule set.
const (
	maxWindow = 30 * 24 * 3600 // seconds, bound of before/after
	maxRules  = 200
)

// CaptureRule places holds automatically: when its trigger fires, the
// involved containers and pods are held from Before seconds before the
// trigger to After seconds after it.
type CaptureRule struct {
	ID          string `json:"id"`
	Trigger     string `json:"trigger"`
	MinSeverity string `json:"minSeverity,omitempty"` // falco: e.g. "critical" (default)
	Namespace   string `json:"namespace,omitempty"`   // only events/incidents of this namespace
	Before      int    `json:"beforeSeconds"`
	After       int    `json:"afterSeconds"`
}

// Severity is the rule's minimum severity number (falco rules).
func (r *CaptureRule) Severity() uint8 {
	if s, ok := events.ParseSeverity(r.MinSeverity); ok {
		return s
	}
	return events.SeverityCritical
}

// Window is the held window around a trigger at t.
func (r *CaptureRule) Window(t time.Time) (start, end time.Time) {
	return t.Add(-time.Duration(r.Before) * time.Second), t.Add(time.Duration(r.After) * time.Second)
}

// ValidateCaptureRules checks a whole rule set; ids default to
// "rule-<n>". Errors name the field ("rules[1].trigger").
func ValidateCaptureRules(rules []CaptureRule) error {
	if len(rules) > maxRules {
		return apperr.Invalid("rules", "at most %d rules", maxRules)
	}
	seen := map[string]bool{}
	for i := range rules {
		r := &rules[i]
		field := func(name string) string { return fmt.Sprintf("rules[%d].%s", i, name) }
		if r.ID == "" {
			r.ID = fmt.Sprintf("rule-%d", i+1)
		}
		if !utf8.ValidString(r.ID) || len(r.ID) > 64 {
			return apperr.Invalid(field("id"), "must be valid UTF-8 of at most 64 bytes")
		}
		if seen[r.ID] {
			return apperr.Invalid(field("id"), "must be unique")
		}
		seen[r.ID] = true
		switch r.Trigger {
		case TriggerFalco:
			if r.MinSeverity == "" {
				r.MinSeverity = "critical"
			}
			if _, ok := events.ParseSeverity(r.MinSeverity); !ok {
				return apperr.Invalid(field("minSeverity"), "must be a Falco priority (e.g. warning, error, critical, alert, emergency)")
			}
		case TriggerOOM, TriggerIncident:
		default:
			return apperr.Invalid(field("trigger"), "must be one of falco, oom_killed, incident")
		}
		if !utf8.ValidString(r.Namespace) || len(r.Namespace) > maxSelectorSize {
			return apperr.Invalid(field("namespace"), "must be valid UTF-8 of at most %d bytes", maxSelectorSize)
		}
		if r.Before < 0 || r.Before > maxWindow {
			return apperr.Invalid(field("beforeSeconds"), "must be from 0 to %d", maxWindow)
		}
		if r.After < 0 || r.After > maxWindow {
			return apperr.Invalid(field("afterSeconds"), "must be from 0 to %d", maxWindow)
		}
	}
	return nil
}

// TriggerEvent is what capture rules are evaluated on: one stored
// container event.
type TriggerEvent struct {
	TenantID    string
	EventID     string // lower-case hex
	TimeNs      uint64
	SeenNs      uint64 // when it was seen (observed time, else event time): capture watermarks advance on it
	Source      string
	Type        string
	Severity    uint8
	Reason      string
	ContainerID string // 12-character short id, "" when none
	PodUID      string
	Namespace   string
}

// Matches reports whether e fires r.
func (r *CaptureRule) Matches(e *TriggerEvent) bool {
	if r.Namespace != "" && r.Namespace != e.Namespace {
		return false
	}
	switch r.Trigger {
	case TriggerFalco:
		return e.Source == events.SourceFalco && e.Severity >= r.Severity()
	case TriggerOOM:
		return e.Type == events.TypeOOMKilled
	}
	return false
}

// CaptureFailure is a trigger (one rule on one event or incident) whose
// holds could not be placed: retried by the next passes, skipped once
// Attempts reach the worker's bound. Its tenant's watermark stops before it
// while it is retried; other tenants and triggers advance.
type CaptureFailure struct {
	Key       string // <rule id>/<event id>, or <rule id>/incident/<incident id>
	Trigger   string
	RuleID    string
	SourceID  string // the event or incident id
	Attempts  int
	LastError string
	Skipped   bool
}
