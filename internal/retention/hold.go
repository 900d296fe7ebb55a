package retention

import (
	"encoding/hex"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// Scope is what a hold or an evidence bundle covers.
type Scope string

// Scopes.
const (
	ScopeContainer Scope = "container" // id: a container id (its first 12 characters match)
	ScopePod       Scope = "pod"       // id: a pod uid
	ScopeIncident  Scope = "incident"  // id: an incident id (its containers, pods and window)
	ScopeTrace     Scope = "trace"     // id: 32 hex characters
	ScopeNamespace Scope = "namespace" // id: a namespace name
)

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool {
	switch s {
	case ScopeContainer, ScopePod, ScopeIncident, ScopeTrace, ScopeNamespace:
		return true
	}
	return false
}

// Hold states.
const (
	HoldOpen     = "open"
	HoldReleased = "released" // DELETE /api/v1/holds/{id}
	HoldExpired  = "expired"  // its until passed
)

// maxTextBytes bounds free text (reasons, ids).
const maxTextBytes = 1024

// HoldRequest is what a client (or a capture rule) asks to hold.
type HoldRequest struct {
	Scope  Scope      `json:"scope"`
	ID     string     `json:"id"`
	Start  *time.Time `json:"start,omitempty"` // nil: from the beginning
	End    *time.Time `json:"end,omitempty"`   // nil: open-ended (keeps copying)
	Reason string     `json:"reason"`
	Until  *time.Time `json:"until,omitempty"` // nil: until released
}

// Hold is a forensic hold: while open, the rows it selects are copied into
// the "hold" class (never dropped), continuously.
type Hold struct {
	ID         string     `json:"id"`
	TenantID   string     `json:"-"`
	Scope      Scope      `json:"scope"`
	Target     string     `json:"target"`
	Start      *time.Time `json:"start,omitempty"`
	End        *time.Time `json:"end,omitempty"`
	Reason     string     `json:"reason"`
	Until      *time.Time `json:"until,omitempty"`
	Status     string     `json:"status"`
	RuleID     string     `json:"ruleId,omitempty"` // set when a capture rule placed it
	CreatedBy  string     `json:"createdBy"`        // API key id, or "capture-rule:<id>"
	CreatedAt  time.Time  `json:"createdAt"`
	ReleasedBy string     `json:"releasedBy,omitempty"`
	ReleasedAt *time.Time `json:"releasedAt,omitempty"`
	// CopiedUntil is the watermark: rows with a timestamp up to it are
	// copied. CopiedRows counts the rows copied so far.
	CopiedUntil *time.Time `json:"copiedUntil,omitempty"`
	CopiedRows  uint64     `json:"copiedRows"`
	// SyncError is why the last copy failed ("" after a good one), and
	// SyncFailures how many copies in a row failed. While a hold fails,
	// enforcement keeps its tenant's rows of its window rather than drop
	// them; other tenants and dates are dropped as usual.
	SyncError    string `json:"syncError,omitempty"`
	SyncFailures int    `json:"syncFailures,omitempty"`
}

// NormalizeTarget validates a scope's id and returns its canonical form
// (container ids: lower case, runtime prefix removed, 12 characters; trace
// ids: lower-case hex).
func NormalizeTarget(field string, scope Scope, id string) (string, error) {
	id = strings.TrimSpace(id)
	if id == "" || !utf8.ValidString(id) || len(id) > maxTextBytes || strings.ContainsRune(id, 0) {
		return "", apperr.Invalid(field, "must be a non-empty string of at most %d bytes", maxTextBytes)
	}
	switch scope {
	case ScopeContainer:
		if i := strings.Index(id, "://"); i >= 0 {
			id = id[i+3:]
		}
		id = strings.ToLower(id)
		if len(id) < 12 {
			return "", apperr.Invalid(field, "a container id must have at least 12 characters")
		}
		return id[:12], nil
	case ScopeTrace:
		if len(id) != 32 {
			return "", apperr.Invalid(field, "a trace id must be 32 hex characters")
		}
		if _, err := hex.DecodeString(id); err != nil {
			return "", apperr.Invalid(field, "a trace id must be 32 hex characters")
		}
		return strings.ToLower(id), nil
	}
	return id, nil
}

// Validate checks r and normalizes its id; errors name the field.
func (r *HoldRequest) Validate() error {
	if !r.Scope.Valid() {
		return apperr.Invalid("scope", "must be one of container, pod, incident, trace, namespace")
	}
	id, err := NormalizeTarget("id", r.Scope, r.ID)
	if err != nil {
		return err
	}
	r.ID = id
	if r.Start != nil && r.End != nil && r.End.Before(*r.Start) {
		return apperr.Invalid("end", "must not be before start")
	}
	if !utf8.ValidString(r.Reason) || len(r.Reason) > maxTextBytes {
		return apperr.Invalid("reason", "must be valid UTF-8 of at most %d bytes", maxTextBytes)
	}
	if strings.TrimSpace(r.Reason) == "" {
		return apperr.Invalid("reason", "must not be empty")
	}
	return nil
}

// Selection is what a hold or a bundle selects, resolved from its scope:
// rows of the tenant matching any of the containers (12-character short
// ids), pods, traces (lower-case hex) or namespaces, with a timestamp in
// (After, Upto] (zero: unbounded on that side).
type Selection struct {
	TenantID   string
	Containers []string
	Pods       []string
	TraceIDs   []string
	Namespaces []string
	After      time.Time // exclusive
	Upto       time.Time // inclusive
}

// Empty reports whether s selects nothing.
func (s *Selection) Empty() bool {
	return len(s.Containers)+len(s.Pods)+len(s.TraceIDs)+len(s.Namespaces) == 0
}

// SelectScope is the selection of a scope other than an incident (whose
// containers and pods are looked up elsewhere).
func SelectScope(tenantID string, scope Scope, target string) Selection {
	s := Selection{TenantID: tenantID}
	switch scope {
	case ScopeContainer:
		s.Containers = []string{target}
	case ScopePod:
		s.Pods = []string{target}
	case ScopeTrace:
		s.TraceIDs = []string{target}
	case ScopeNamespace:
		s.Namespaces = []string{target}
	}
	return s
}
