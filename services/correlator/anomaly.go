package correlator

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/rca"
)

// RootCauses ranks the root-cause candidates of a window (implemented by
// *rca.Engine).
type RootCauses interface {
	Analyze(ctx context.Context, q rca.Query) (rca.Result, error)
}

// SpanTenants lists the tenants with spans in a time range (implemented by
// *chstore.Store).
type SpanTenants interface {
	TenantsWithSpans(ctx context.Context, fromNs, toNs uint64, limit int) ([]string, error)
}

const (
	// SourceAnomaly is the source an anomaly record's id is derived from
	// (events.NewID(tenant, SourceAnomaly, service + window bucket)).
	SourceAnomaly = "anomaly"
	// TypeAnomaly is the type of an anomaly record among an incident's
	// events.
	TypeAnomaly = "anomaly"
	// DefaultAnomalyMinScore is the default threshold on the top
	// candidate's score. Measured on synthetic traffic (internal/rca
	// TestSyntheticLeafSlowdown: a three-service chain, own time ~N(10ms,
	// 1ms), 60-minute baseline): noise scores 0; the leaf's own time ×1.2
	// scores 1.1, ×1.5 1.9, ×3 3.1, ×16 4.2. So by default a sustained
	// tripling of a service's own time (or comparably surprising failures,
	// network gaps or resource changes) opens an incident.
	DefaultAnomalyMinScore = 3.0

	maxSummaryBytes = 1000 // evidence summary stored with an anomaly record
	maxTitleDetail  = 200  // evidence quoted in an anomaly incident's title
)

func (s *Service) anomaliesOn() bool {
	return s.cfg.Anomalies.Interval > 0 && s.deps.RCA != nil && s.deps.Tenants != nil && s.deps.Incidents != nil
}

// anomalyLoop runs an anomaly pass every Anomalies.Interval until ctx ends.
func (s *Service) anomalyLoop(ctx context.Context) error {
	if !s.anomaliesOn() {
		return nil
	}
	t := time.NewTicker(s.cfg.Anomalies.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.anomalyPass(ctx)
	}
}

// anomalyPass analyses the last Anomalies.Window (ending Settle before
// now, so late spans are in) of every tenant with spans in it. Failures
// are logged and counted; the next pass tries again.
func (s *Service) anomalyPass(ctx context.Context) {
	end := s.now().Add(-s.cfg.Settle).Truncate(time.Second)
	start := end.Add(-s.cfg.Anomalies.Window)
	maxT := s.cfg.Anomalies.MaxTenants
	tenants, err := s.deps.Tenants.TenantsWithSpans(ctx, uint64(start.UnixNano()), uint64(end.UnixNano()), maxT+1)
	if err != nil {
		if ctx.Err() == nil {
			s.m.anomalies.WithLabelValues("error").Inc()
			s.log.Warn("anomaly pass: listing tenants failed", "err", err)
		}
		return
	}
	if len(tenants) > maxT {
		s.m.anomalies.WithLabelValues("skipped").Add(float64(len(tenants) - maxT))
		tenants = tenants[:maxT]
	}
	for _, tenant := range tenants {
		outcome, err := s.anomalyOf(ctx, tenant, start, end)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			outcome = "error"
			s.log.Warn("anomaly check failed", "tenant", tenant, "err", err)
		}
		s.m.anomalies.WithLabelValues(outcome).Inc()
	}
	s.m.passes.Inc()
}

// anomalyOf analyses one tenant's window and, when the top candidate
// reaches the tenant's threshold, records the anomaly for incident
// grouping. It returns the outcome.
func (s *Service) anomalyOf(ctx context.Context, tenant string, start, end time.Time) (string, error) {
	rule, err := s.rule(ctx, tenant)
	if err != nil {
		return "", err
	}
	if rule.AnomalyMinScore <= 0 {
		return "disabled", nil
	}
	res, err := s.deps.RCA.Analyze(ctx, rca.Query{TenantID: tenant, Start: start, End: end})
	if err != nil {
		return "", fmt.Errorf("root causes of %s: %w", tenant, err)
	}
	if len(res.Candidates) == 0 {
		return "none", nil
	}
	top := res.Candidates[0]
	if top.Score < rule.AnomalyMinScore {
		return "below", nil
	}
	in := anomalyInput(tenant, &top, start, end, s.cfg.Anomalies.Window, rule)
	_, outcome, err := s.deps.Incidents.RecordIncidentEvent(ctx, in)
	if err != nil {
		return "", fmt.Errorf("incident of the anomaly on %s: %w", in.Event.Workload, err)
	}
	return outcome, nil
}

// anomalyInput is the anomaly of candidate c in [start, end] as an
// incident record. Its id is derived from the tenant, the candidate's
// service and the window bucket (end / bucket), so passes over the same
// bucket record it once; a later bucket adds a record that joins the same
// incident while it overlaps in time (same workload and service).
func anomalyInput(tenant string, c *rca.Candidate, start, end time.Time, bucket time.Duration, rule IncidentRule) pgstore.IncidentInput {
	who := c.Service
	if who == "" {
		who = c.Pod
	}
	id := events.NewID(tenant, SourceAnomaly, fmt.Appendf(nil, "%s\x00%d", who, end.UnixNano()/int64(bucket)))
	at := start
	if c.Onset != nil && !c.Onset.Before(start) && !c.Onset.After(end) {
		at = *c.Onset
	}
	var services []string
	if c.Service != "" {
		services = []string{c.Service}
	}
	summary, first := evidenceSummary(c)
	where := who
	if c.Pod != "" && c.Pod != who {
		where += " (pod " + c.Pod + ")"
	}
	title := fmt.Sprintf("anomaly on %s, score %.2f", where, c.Score)
	if first != "" {
		title += ": " + truncateUTF8(first, maxTitleDetail)
	}
	return pgstore.IncidentInput{
		TenantID: tenant,
		Kind:     pgstore.IncidentKindAnomaly,
		Event: pgstore.IncidentEvent{
			EventID: id.String(), EventTime: at.UTC(), Type: TypeAnomaly, Severity: events.SeverityWarning,
			Reason: fmt.Sprintf("root-cause score %.2f", c.Score), Workload: who, PodName: c.Pod,
			Score: c.Score, Summary: summary,
		},
		Services: services, Opens: true, Title: title, Window: rule.GroupWindow,
	}
}

// evidenceSummary joins the candidate's evidence (example traces last)
// into one bounded line; first is the first piece.
func evidenceSummary(c *rca.Candidate) (summary, first string) {
	var parts, traces []string
	for _, e := range c.Evidence {
		if e.Summary == "" {
			continue
		}
		if e.Kind == "trace" {
			if e.Ref != "" {
				traces = append(traces, e.Ref)
			}
			continue
		}
		parts = append(parts, e.Summary)
	}
	if len(parts) > 0 {
		first = parts[0]
	}
	if len(traces) > 0 {
		parts = append(parts, "example traces: "+strings.Join(traces, ", "))
	}
	if c.Container != "" {
		parts = append(parts, "container "+c.Container)
	}
	return truncateUTF8(strings.Join(parts, "; "), maxSummaryBytes), first
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
