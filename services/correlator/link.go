package correlator

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aftertrace/aftertrace/internal/biztx"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// correlate links one event to its traces and offers it to incident
// grouping. Every step is idempotent, so a redelivered event is harmless.
func (s *Service) correlate(ctx context.Context, tenant string, ev *events.Event) error {
	t := ev.TimeUnixNano
	from, to := subNs(t, s.cfg.Before), t+uint64(s.cfg.After)
	target, outcome, err := s.target(ctx, tenant, ev, from, to)
	if err != nil {
		return err
	}
	var services, neighbors []string
	if target.Value != "" {
		links, svcs, nbrs, err := s.links(ctx, tenant, ev, target, from, to)
		if err != nil {
			return err
		}
		services, neighbors = svcs, nbrs
		s.classifyLinks(tenant, ev, links, services)
		if len(links) > 0 {
			if err := s.deps.Traces.InsertEventLinks(ctx, links); err != nil {
				return fmt.Errorf("store links of event %s: %w", ev.ID, err)
			}
			s.m.links.Add(float64(len(links)))
			outcome = "linked"
		} else {
			outcome = "no_traces"
		}
	}
	s.m.events.WithLabelValues(outcome).Inc()
	return s.incident(ctx, tenant, ev, services, neighbors)
}

// target picks what the event's traces are found by: its container, else
// its pod uid, else the uid its pod name had at the event time.
func (s *Service) target(ctx context.Context, tenant string, ev *events.Event, from, to uint64) (chstore.LinkTarget, string, error) {
	switch {
	case ev.ContainerID != "":
		return chstore.LinkTarget{Kind: chstore.MatchContainer, Value: ev.ContainerIDShort()}, "", nil
	case ev.PodUID != "":
		return chstore.LinkTarget{Kind: chstore.MatchPodUID, Value: ev.PodUID}, "", nil
	case ev.PodName == "" || ev.Namespace == "":
		return chstore.LinkTarget{}, "no_target", nil
	}
	sightings, err := s.deps.Traces.PodSightings(ctx, tenant, ev.Namespace, ev.PodName, from, to)
	if err != nil {
		return chstore.LinkTarget{}, "", fmt.Errorf("resolve pod %s/%s: %w", ev.Namespace, ev.PodName, err)
	}
	uid, ok := resolvePod(sightings, ev.TimeUnixNano)
	if !ok {
		if len(sightings) == 0 {
			return chstore.LinkTarget{}, "no_target", nil
		}
		return chstore.LinkTarget{}, "ambiguous_pod", nil
	}
	return chstore.LinkTarget{Kind: chstore.MatchPodName, Value: uid}, "", nil
}

// resolvePod picks the one uid a pod name had at t: the uid whose
// sightings contain t, else the one seen last before t (the pod an event
// like OOMKilled reports on has just ended), else the only one seen. Two
// uids alive at t are ambiguous: a name never links across uids.
func resolvePod(sightings []chstore.PodSighting, t uint64) (string, bool) {
	var containing []string
	var before *chstore.PodSighting
	for i := range sightings {
		p := &sightings[i]
		if p.FirstSeenNs <= t && t <= p.LastSeenNs {
			containing = append(containing, p.UID)
		}
		if p.LastSeenNs < t && (before == nil || p.LastSeenNs > before.LastSeenNs) {
			before = p
		}
	}
	switch {
	case len(containing) == 1:
		return containing[0], true
	case len(containing) > 1:
		return "", false
	case before != nil:
		return before.UID, true
	case len(sightings) == 1:
		return sightings[0].UID, true
	}
	return "", false
}

// links builds the links of the event: one per trace with spans on the
// target in [from, to], classified. It also returns the services of the
// event's spans and their direct neighbors in those traces (callers and
// callees), the service-graph key of incident grouping.
func (s *Service) links(ctx context.Context, tenant string, ev *events.Event, target chstore.LinkTarget, from, to uint64) ([]chstore.EventLink, []string, []string, error) {
	cands, err := s.deps.Traces.FindLinkCandidates(ctx, tenant, target, from, to, s.cfg.MaxTracesPerEvent+1)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("find traces of event %s: %w", ev.ID, err)
	}
	if len(cands) > s.cfg.MaxTracesPerEvent {
		cands = cands[:s.cfg.MaxTracesPerEvent]
		s.m.truncated.Inc()
	}
	if len(cands) == 0 {
		return nil, nil, nil, nil
	}
	ids := make([][16]byte, len(cands))
	for i, c := range cands {
		ids[i] = c.TraceID
	}
	spans, err := s.deps.Traces.SpansOfTraces(ctx, tenant, ids, subNs(from, s.cfg.TraceSlack), to+uint64(s.cfg.TraceSlack))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read traces of event %s: %w", ev.ID, err)
	}
	classifier, err := s.classifier(ctx, tenant)
	if err != nil {
		return nil, nil, nil, err
	}
	byTrace := map[[16]byte][]*chstore.LinkSpan{}
	for i := range spans {
		byTrace[spans[i].TraceID] = append(byTrace[spans[i].TraceID], &spans[i])
	}
	onTarget := func(sp *chstore.LinkSpan) bool {
		if target.Kind == chstore.MatchContainer {
			return events.ShortContainerID(sp.ContainerID) == target.Value
		}
		return sp.PodUID == target.Value
	}
	svcSet, nbrSet := map[string]bool{}, map[string]bool{}
	now := uint64(s.now().UnixNano())
	links := make([]chstore.EventLink, 0, len(cands))
	for _, c := range cands {
		tspans := byTrace[c.TraceID]
		l := chstore.EventLink{
			TenantID: tenant, EventID: ev.ID, EventTimeNs: ev.TimeUnixNano, TraceID: c.TraceID,
			MatchKind: target.Kind, SpanCount: c.SpanCount, LinkedAtNs: now,
		}
		views := make([]biztx.Span, 0, len(tspans))
		bySpanID := make(map[string]*chstore.LinkSpan, len(tspans))
		var first, root *chstore.LinkSpan
		var end uint64
		for _, sp := range tspans {
			bySpanID[sp.SpanID] = sp
			if first == nil || sp.StartNs < first.StartNs {
				first = sp
			}
			if sp.Root && (root == nil || sp.StartNs < root.StartNs) {
				root = sp
			}
			end = max(end, sp.EndNs)
			l.Failed = l.Failed || sp.Error
			views = append(views, biztx.Span{Service: sp.Service, Name: sp.Name, Root: sp.Root, Attrs: sp.Attrs})
		}
		if root == nil {
			root = first
		}
		if first != nil {
			l.TraceStartNs, l.TraceDurationNs = first.StartNs, end-min(end, first.StartNs)
			l.RootService, l.RootName = root.Service, root.Name
		}
		res := classifier.Classify(views)
		l.BusinessTransaction = res.Transaction
		for _, k := range res.Keys {
			l.BusinessKeyNames = append(l.BusinessKeyNames, k.Name)
			l.BusinessKeyValues = append(l.BusinessKeyValues, k.Value)
		}
		for _, sp := range tspans {
			if !onTarget(sp) {
				continue
			}
			svcSet[sp.Service] = true
			if p := bySpanID[sp.ParentSpanID]; p != nil && p.Service != sp.Service {
				nbrSet[p.Service] = true
			}
		}
		for _, sp := range tspans {
			if p := bySpanID[sp.ParentSpanID]; p != nil && onTarget(p) && sp.Service != p.Service {
				nbrSet[sp.Service] = true
			}
		}
		links = append(links, l)
	}
	return links, sortedKeys(svcSet), sortedKeys(nbrSet), nil
}

// classifier returns the tenant's business transaction classifier, read
// at most every DefinitionsTTL.
func (s *Service) classifier(ctx context.Context, tenant string) (*biztx.Classifier, error) {
	if s.deps.Definitions == nil {
		return biztx.New(nil), nil
	}
	s.defsMu.Lock()
	c, ok := s.defs[tenant]
	s.defsMu.Unlock()
	if ok && s.now().Sub(c.at) < s.cfg.DefinitionsTTL {
		return c.c, nil
	}
	defs, err := s.deps.Definitions.BusinessTransactions(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("business transactions of %s: %w", tenant, err)
	}
	c = cachedDefs{c: biztx.New(defs), at: s.now()}
	s.defsMu.Lock()
	if len(s.defs) > 10_000 { // bounded: forget everything rather than grow
		clear(s.defs)
	}
	s.defs[tenant] = c
	s.defsMu.Unlock()
	return c.c, nil
}

// eventWorkload is the event's workload, else the one service of its
// spans on the event's container or pod.
func eventWorkload(ev *events.Event, services []string) string {
	if ev.Workload == "" && len(services) == 1 {
		return services[0]
	}
	return ev.Workload
}

// classifyLinks gives the links of an event their retention class: signal
// links, the event's namespace and workload (like the writer classifies
// the event itself, with the service of its spans when it names no
// workload).
func (s *Service) classifyLinks(tenant string, ev *events.Event, links []chstore.EventLink, services []string) {
	if s.deps.Classifier == nil || len(links) == 0 {
		return
	}
	class := s.deps.Classifier.Class(tenant, retention.SignalLinks, ev.Namespace, eventWorkload(ev, services))
	for i := range links {
		links[i].Class = class
	}
}

// incident offers the event to incident grouping under the tenant's rule.
func (s *Service) incident(ctx context.Context, tenant string, ev *events.Event, services, neighbors []string) error {
	if s.deps.Incidents == nil {
		return nil
	}
	rule, err := s.rule(ctx, tenant)
	if err != nil {
		return err
	}
	opens := rule.Opens(ev)
	if !opens && ev.Severity < rule.GroupMinSeverity {
		return nil
	}
	workload := eventWorkload(ev, services)
	if workload == "" {
		workload = ev.PodName
	}
	reason := ev.Reason
	if reason == "" {
		reason = ev.Type
	}
	where := ev.Namespace + "/" + workload
	if ev.Namespace == "" {
		where = workload
	}
	in := pgstore.IncidentInput{
		TenantID: tenant,
		Kind:     pgstore.IncidentKindEvent,
		Event: pgstore.IncidentEvent{
			EventID: ev.ID.String(), EventTime: time.Unix(0, int64(ev.TimeUnixNano)).UTC(), Type: ev.Type,
			Severity: ev.Severity, Reason: ev.Reason, Namespace: ev.Namespace, Workload: workload,
			PodName: ev.PodName, PodUID: ev.PodUID, ContainerID: ev.ContainerID,
		},
		Services: services, Neighbors: neighbors, Opens: opens,
		Title:  fmt.Sprintf("%s: %s on %s", events.SeverityName(ev.Severity), reason, where),
		Window: rule.GroupWindow,
	}
	_, outcome, err := s.deps.Incidents.RecordIncidentEvent(ctx, in)
	if err != nil {
		return fmt.Errorf("incident of event %s: %w", ev.ID, err)
	}
	s.m.incidents.WithLabelValues(outcome).Inc()
	return nil
}

func subNs(t uint64, d time.Duration) uint64 {
	if uint64(d) > t {
		return 0
	}
	return t - uint64(d)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
