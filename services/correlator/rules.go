package correlator

import (
	"context"
	"fmt"
	"slices"
	"time"
)

type cachedRule struct {
	r  IncidentRule
	at time.Time
}

// rule returns the incident rule of a tenant: the configured one with
// the tenant's own MinSeverity, Types and AnomalyMinScore when it has
// set them, read at most every RulesTTL.
func (s *Service) rule(ctx context.Context, tenant string) (IncidentRule, error) {
	base := s.cfg.Incidents
	if s.deps.Rules == nil {
		return base, nil
	}
	s.rulesMu.Lock()
	c, ok := s.rules[tenant]
	s.rulesMu.Unlock()
	if ok && s.now().Sub(c.at) < s.cfg.RulesTTL {
		return c.r, nil
	}
	tr, found, err := s.deps.Rules.IncidentRules(ctx, tenant)
	if err != nil {
		return IncidentRule{}, fmt.Errorf("incident rules of %s: %w", tenant, err)
	}
	r := base
	if found {
		r.MinSeverity, r.Types, r.AnomalyMinScore = tr.MinSeverity, slices.Clone(tr.EventTypes), tr.AnomalyMinScore
	}
	s.rulesMu.Lock()
	if len(s.rules) > 10_000 { // bounded: forget everything rather than grow
		clear(s.rules)
	}
	s.rules[tenant] = cachedRule{r: r, at: s.now()}
	s.rulesMu.Unlock()
	return r, nil
}
