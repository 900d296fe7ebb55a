// Package biztx classifies traces into business transactions: a tenant
// defines transactions (a name, match rules on the root span or on any span,
// and the attribute names of its business keys) and every trace the
// correlator links to an event is classified with them. A span attribute
// business.transaction, when present, names the transaction explicitly and
// wins over the rules.
package biztx

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// AttrTransaction is the span attribute that names a trace's business
// transaction explicitly.
const AttrTransaction = "business.transaction"

// Rule scopes.
const (
	ScopeRoot = "root" // the rule matches the root span only
	ScopeAny  = "any"  // the rule matches any span of the trace
)

// Limits of a definition.
const (
	MaxNameBytes  = 200
	MaxRules      = 32
	MaxKeys       = 16
	MaxFieldBytes = 1024
)

// Rule matches one span: every field that is set must match (an empty rule
// is invalid). Attribute with Equals, Prefix or Regex tests that span
// attribute's value as text.
type Rule struct {
	Scope     string `json:"scope"` // "root" (default) or "any"
	Service   string `json:"service,omitempty"`
	SpanName  string `json:"spanName,omitempty"`
	HTTPRoute string `json:"httpRoute,omitempty"`
	Attribute string `json:"attribute,omitempty"`
	Equals    string `json:"equals,omitempty"`
	Prefix    string `json:"prefix,omitempty"`
	Regex     string `json:"regex,omitempty"`
}

// Definition is one business transaction of a tenant.
type Definition struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"-"`
	Name      string    `json:"name"`
	Rules     []Rule    `json:"rules"`
	Keys      []string  `json:"keys"` // business key attribute names, e.g. order.id
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Validate normalizes d (default scope) and reports the first problem as
// an apperr.Invalid naming the field (e.g. "rules[1].regex").
func (d *Definition) Validate() error {
	switch {
	case strings.TrimSpace(d.Name) == "":
		return apperr.Invalid("name", "must not be empty")
	case len(d.Name) > MaxNameBytes || !utf8.ValidString(d.Name):
		return apperr.Invalid("name", "must be valid UTF-8 of at most %d bytes", MaxNameBytes)
	case len(d.Rules) == 0:
		return apperr.Invalid("rules", "at least one rule is needed")
	case len(d.Rules) > MaxRules:
		return apperr.Invalid("rules", "at most %d rules", MaxRules)
	case len(d.Keys) > MaxKeys:
		return apperr.Invalid("keys", "at most %d business keys", MaxKeys)
	}
	for i := range d.Rules {
		r := &d.Rules[i]
		field := func(f string) string { return fmt.Sprintf("rules[%d].%s", i, f) }
		if r.Scope == "" {
			r.Scope = ScopeRoot
		}
		if r.Scope != ScopeRoot && r.Scope != ScopeAny {
			return apperr.Invalid(field("scope"), "must be %q or %q", ScopeRoot, ScopeAny)
		}
		for name, v := range map[string]string{"service": r.Service, "spanName": r.SpanName, "httpRoute": r.HTTPRoute,
			"attribute": r.Attribute, "equals": r.Equals, "prefix": r.Prefix, "regex": r.Regex} {
			if len(v) > MaxFieldBytes || !utf8.ValidString(v) {
				return apperr.Invalid(field(name), "must be valid UTF-8 of at most %d bytes", MaxFieldBytes)
			}
		}
		tests := 0
		for _, v := range []string{r.Equals, r.Prefix, r.Regex} {
			if v != "" {
				tests++
			}
		}
		switch {
		case r.Attribute == "" && tests > 0:
			return apperr.Invalid(field("attribute"), "is required with equals, prefix or regex")
		case r.Attribute != "" && tests != 1:
			return apperr.Invalid(field("attribute"), "needs exactly one of equals, prefix or regex")
		case r.Service == "" && r.SpanName == "" && r.HTTPRoute == "" && r.Attribute == "":
			return apperr.Invalid(field("service"), "a rule needs at least one of service, spanName, httpRoute or attribute")
		}
		if r.Regex != "" {
			if _, err := regexp.Compile(r.Regex); err != nil {
				return apperr.Invalid(field("regex"), "is not a valid regular expression: %v", err)
			}
		}
	}
	seen := map[string]bool{}
	for i, k := range d.Keys {
		if k == "" || len(k) > MaxFieldBytes || !utf8.ValidString(k) {
			return apperr.Invalid(fmt.Sprintf("keys[%d]", i), "must be a non-empty attribute name of at most %d bytes", MaxFieldBytes)
		}
		if seen[k] {
			return apperr.Invalid(fmt.Sprintf("keys[%d]", i), "%q is listed twice", k)
		}
		seen[k] = true
	}
	if d.Keys == nil {
		d.Keys = []string{}
	}
	return nil
}

// Span is what classification sees of one span.
type Span struct {
	Service string
	Name    string
	Root    bool
	Attrs   map[string]string // attribute values as text
}

// Key is one business key value of a trace.
type Key struct {
	Name  string
	Value string
}

// Result is the classification of one trace.
type Result struct {
	Transaction string // "" when nothing matched
	Keys        []Key  // distinct, sorted by name then value
}

// Classifier classifies traces with a tenant's definitions. Build it with
// New; it is read-only afterwards and safe for concurrent use.
type Classifier struct {
	defs   []compiled
	byName map[string]*compiled
}

type compiled struct {
	name  string
	keys  []string
	rules []compiledRule
}

type compiledRule struct {
	Rule
	re *regexp.Regexp
}

// New compiles defs (in order: the first definition that matches wins).
// Invalid definitions (never stored: the API validates) are skipped.
func New(defs []Definition) *Classifier {
	c := &Classifier{byName: map[string]*compiled{}}
	for _, d := range defs {
		if err := d.Validate(); err != nil {
			continue
		}
		cd := compiled{name: d.Name, keys: d.Keys}
		for _, r := range d.Rules {
			cr := compiledRule{Rule: r}
			if r.Regex != "" {
				cr.re = regexp.MustCompile(r.Regex)
			}
			cd.rules = append(cd.rules, cr)
		}
		c.defs = append(c.defs, cd)
	}
	for i := range c.defs {
		if _, dup := c.byName[c.defs[i].name]; !dup {
			c.byName[c.defs[i].name] = &c.defs[i]
		}
	}
	return c
}

// DefaultKeys are extracted for a trace named by business.transaction
// whose name has no definition.
var DefaultKeys = []string{"order.id", "user.id"}

// Classify names the business transaction of a trace and extracts its
// business keys from every span. The explicit business.transaction
// attribute (the root span's first, else the earliest span's that has it)
// wins over the rules.
func (c *Classifier) Classify(spans []Span) Result {
	var res Result
	var keys []string
	if name := explicitName(spans); name != "" {
		res.Transaction = name
		keys = DefaultKeys
		if d := c.byName[name]; d != nil {
			keys = d.keys
		}
	} else {
		for i := range c.defs {
			if c.defs[i].matches(spans) {
				res.Transaction, keys = c.defs[i].name, c.defs[i].keys
				break
			}
		}
	}
	if res.Transaction == "" || len(keys) == 0 {
		return res
	}
	seen := map[Key]bool{}
	for _, sp := range spans {
		for _, k := range keys {
			if v, ok := sp.Attrs[k]; ok && v != "" {
				key := Key{Name: k, Value: v}
				if !seen[key] {
					seen[key] = true
					res.Keys = append(res.Keys, key)
				}
			}
		}
	}
	slices.SortFunc(res.Keys, func(a, b Key) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return res
}

func explicitName(spans []Span) string {
	for _, sp := range spans {
		if sp.Root {
			if v := sp.Attrs[AttrTransaction]; v != "" {
				return v
			}
		}
	}
	for _, sp := range spans {
		if v := sp.Attrs[AttrTransaction]; v != "" {
			return v
		}
	}
	return ""
}

func (d *compiled) matches(spans []Span) bool {
	for i := range d.rules {
		r := &d.rules[i]
		for j := range spans {
			if r.Scope == ScopeRoot && !spans[j].Root {
				continue
			}
			if r.matches(&spans[j]) {
				return true
			}
		}
	}
	return false
}

func (r *compiledRule) matches(sp *Span) bool {
	if r.Service != "" && sp.Service != r.Service {
		return false
	}
	if r.SpanName != "" && sp.Name != r.SpanName {
		return false
	}
	if r.HTTPRoute != "" && sp.Attrs["http.route"] != r.HTTPRoute {
		return false
	}
	if r.Attribute == "" {
		return true
	}
	v, ok := sp.Attrs[r.Attribute]
	switch {
	case !ok:
		return false
	case r.Equals != "":
		return v == r.Equals
	case r.Prefix != "":
		return strings.HasPrefix(v, r.Prefix)
	case r.re != nil:
		return r.re.MatchString(v)
	}
	return false
}
