package otlpconv

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Resource attribute keys promoted to their own columns.
const (
	AttrServiceName   = "service.name"
	AttrPodUID        = "k8s.pod.uid"
	AttrPodName       = "k8s.pod.name"
	AttrNamespace     = "k8s.namespace.name"
	AttrNodeName      = "k8s.node.name"
	AttrContainerID   = "container.id"
	AttrContainerName = "k8s.container.name"
)

// DefaultRetentionClass is the class of rows no retention selector matched.
const DefaultRetentionClass = "default"

// SpanBatch holds spans column by column, in the order of SpanColumns, so
// that a whole batch is appended to a ClickHouse insert column-wise.
type SpanBatch struct {
	TenantID               []string
	Date                   []time.Time
	Timestamp              []time.Time
	RetentionClass         []string
	TraceID                []string // 16 raw bytes
	SpanID                 []string // 8 raw bytes
	ParentSpanID           []string // 8 raw bytes, empty for a root
	TraceState             []string
	Flags                  []uint32
	ServiceName            []string
	Name                   []string
	Kind                   []int8
	StartNs                []uint64
	EndNs                  []uint64
	StatusCode             []int8
	StatusMessage          []string
	ScopeName              []string
	ScopeVersion           []string
	PodUID                 []string
	PodName                []string
	Namespace              []string
	NodeName               []string
	ContainerID            []string
	ContainerName          []string
	AttrKeys               [][]string
	AttrValues             [][]string
	AttrTypes              [][]uint8
	ResourceKeys           [][]string
	ResourceValues         [][]string
	ResourceTypes          [][]uint8
	EventTimes             [][]uint64
	EventNames             [][]string
	EventAttrs             [][]string
	LinkTraceIDs           [][]string
	LinkSpanIDs            [][]string
	LinkTraceStates        [][]string
	LinkAttrs              [][]string
	DroppedAttributesCount []uint32
	DroppedEventsCount     []uint32
	DroppedLinksCount      []uint32

	// Slabs the per-row arrays are cut from, so that a span costs a few
	// allocations per batch rather than a dozen of its own.
	strSlab slab[string]
	u64Slab slab[uint64]
	u8Slab  slab[uint8]

	// Scratch of the protobuf walk, kept from message to message.
	walkAttrs  []attr
	walkFields []field
}

// slabRows is how many array elements one slab allocation holds.
const slabRows = 4096

// slab hands out pieces of large arrays. Reset takes back every array
// cut from since the last Reset (no row refers to them any more), so a
// reused batch stops allocating once it has reached its size.
type slab[T any] struct {
	cur  []T
	used [][]T // full arrays cut from since the last reset
	free [][]T // arrays to cut from again
}

// cut returns a zero-length slice of capacity n taken from s, moving to
// another array when the current one is full. Appending up to n elements
// to the result never touches its neighbours.
func cut[T any](s *slab[T], n int) []T {
	if cap(s.cur)-len(s.cur) < n {
		if cap(s.cur) > 0 {
			s.used = append(s.used, s.cur)
		}
		if k := len(s.free); k > 0 && cap(s.free[k-1]) >= n {
			s.cur, s.free = s.free[k-1][:0], s.free[:k-1]
		} else {
			s.cur = make([]T, 0, max(slabRows, n))
		}
	}
	i := len(s.cur)
	s.cur = s.cur[:i+n]
	return s.cur[i : i : i+n]
}

// reset makes every array cut from so far available again.
func (s *slab[T]) reset() {
	s.free = append(s.free, s.used...)
	clear(s.used)
	s.used = s.used[:0]
	if cap(s.cur) > 0 {
		s.free = append(s.free, s.cur[:0])
	}
	s.cur = nil
}

// SpanColumns are the spans table columns, in the order Columns returns them.
var SpanColumns = []string{
	"tenant_id", "date", "timestamp", "retention_class", "trace_id", "span_id", "parent_span_id",
	"trace_state", "flags", "service_name", "name", "kind", "start_time_unix_nano", "end_time_unix_nano",
	"status_code", "status_message", "scope_name", "scope_version",
	"k8s_pod_uid", "k8s_pod_name", "k8s_namespace_name", "k8s_node_name", "container_id", "k8s_container_name",
	"attr_keys", "attr_values", "attr_types", "resource_keys", "resource_values", "resource_types",
	"event_times", "event_names", "event_attrs",
	"link_trace_ids", "link_span_ids", "link_trace_states", "link_attrs",
	"dropped_attributes_count", "dropped_events_count", "dropped_links_count",
}

// Columns returns the column slices in SpanColumns order.
func (b *SpanBatch) Columns() []any {
	return []any{
		b.TenantID, b.Date, b.Timestamp, b.RetentionClass, b.TraceID, b.SpanID, b.ParentSpanID,
		b.TraceState, b.Flags, b.ServiceName, b.Name, b.Kind, b.StartNs, b.EndNs,
		b.StatusCode, b.StatusMessage, b.ScopeName, b.ScopeVersion,
		b.PodUID, b.PodName, b.Namespace, b.NodeName, b.ContainerID, b.ContainerName,
		b.AttrKeys, b.AttrValues, b.AttrTypes, b.ResourceKeys, b.ResourceValues, b.ResourceTypes,
		b.EventTimes, b.EventNames, b.EventAttrs,
		b.LinkTraceIDs, b.LinkSpanIDs, b.LinkTraceStates, b.LinkAttrs,
		b.DroppedAttributesCount, b.DroppedEventsCount, b.DroppedLinksCount,
	}
}

// Len is the number of rows.
func (b *SpanBatch) Len() int { return len(b.TenantID) }

// Reset empties the batch, keeping the capacity of its columns (the
// writer reuses one batch per worker: regrowing 41 columns for every insert
// cost more than decoding). Rows past the length keep their old references
// until overwritten: at most one batch's worth.
func (b *SpanBatch) Reset() {
	b.truncate(0)
	b.strSlab.reset()
	b.u64Slab.reset()
	b.u8Slab.reset()
}

// resourceInfo is what every span of one resource shares.
type resourceInfo struct {
	service, podUID, podName, namespace, node, containerID, containerName string
	keys, values                                                          []string
	types                                                                 []uint8
}

func newResourceInfo(res pcommon.Resource) resourceInfo {
	attrs := res.Attributes()
	get := func(k string) string {
		if v, ok := attrs.Get(k); ok {
			return v.AsString()
		}
		return ""
	}
	ri := resourceInfo{
		service:       get(AttrServiceName),
		podUID:        get(AttrPodUID),
		podName:       get(AttrPodName),
		namespace:     get(AttrNamespace),
		node:          get(AttrNodeName),
		containerID:   NormalizeContainerID(get(AttrContainerID)),
		containerName: get(AttrContainerName),
	}
	if ri.service == "" {
		ri.service = "unknown_service"
	}
	ri.keys, ri.values, ri.types = AppendAttrs(nil, nil, nil, attrs)
	return ri
}

// dropPromoted rebuilds the resource arrays without the attributes that
// their promoted column holds exactly (string value, unchanged by
// normalization): spans are the largest table and these values would be
// stored twice. Readers put them back from the columns (PromotedResource).
// Logs and metrics keep them, as their label filters read the arrays.
func (ri *resourceInfo) dropPromoted(attrs pcommon.Map) {
	promoted := map[string]string{
		AttrServiceName: ri.service, AttrPodUID: ri.podUID, AttrPodName: ri.podName,
		AttrNamespace: ri.namespace, AttrNodeName: ri.node, AttrContainerID: ri.containerID,
		AttrContainerName: ri.containerName,
	}
	ri.keys, ri.values, ri.types = nil, nil, nil
	attrs.Range(func(k string, v pcommon.Value) bool {
		if col, ok := promoted[k]; ok && v.Type() == pcommon.ValueTypeStr && v.Str() == col && col != "" && col != "unknown_service" {
			return true
		}
		s, t := EncodeValue(v)
		ri.keys = append(ri.keys, k)
		ri.values = append(ri.values, s)
		ri.types = append(ri.types, t)
		return true
	})
}

// PromotedResource adds back to a span's decoded resource the attributes
// that AppendTraces kept only in their promoted columns (non-empty column,
// key absent from the arrays).
func PromotedResource(res map[string]any, service, podUID, podName, namespace, node, containerID, containerName string) map[string]any {
	if res == nil {
		res = map[string]any{}
	}
	for _, kv := range [...][2]string{
		{AttrServiceName, service}, {AttrPodUID, podUID}, {AttrPodName, podName}, {AttrNamespace, namespace},
		{AttrNodeName, node}, {AttrContainerID, containerID}, {AttrContainerName, containerName},
	} {
		if _, ok := res[kv[0]]; !ok && kv[1] != "" && !(kv[0] == AttrServiceName && kv[1] == "unknown_service") {
			res[kv[0]] = kv[1]
		}
	}
	return res
}

// AppendTraces flattens every span of td into the batch for tenantID.
func (b *SpanBatch) AppendTraces(tenantID string, td ptrace.Traces) {
	rss := td.ResourceSpans()
	for r := 0; r < rss.Len(); r++ {
		rs := rss.At(r)
		ri := newResourceInfo(rs.Resource())
		ri.dropPromoted(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for s := 0; s < sss.Len(); s++ {
			ss := sss.At(s)
			scope := ss.Scope()
			spans := ss.Spans()
			for i := 0; i < spans.Len(); i++ {
				b.appendSpan(tenantID, &ri, scope, spans.At(i))
			}
		}
	}
}

// spanRow is one span's own values, as both decoders produce them.
type spanRow struct {
	traceID, spanID, parent, state, name string
	flags                                uint32
	kind, statusCode                     int8
	start, end                           uint64
	statusMsg, scopeName, scopeVersion   string
	attrKeys, attrValues                 []string
	attrTypes                            []uint8
	eventTimes                           []uint64
	eventNames, eventAttrs               []string
	linkTraceIDs, linkSpanIDs            []string
	linkStates, linkAttrs                []string
	droppedAttrs, droppedEvents          uint32
	droppedLinks                         uint32
}

// appendRow appends one span of the resource ri.
func (b *SpanBatch) appendRow(tenantID string, ri *resourceInfo, r *spanRow) {
	ts := time.Unix(0, int64(r.start)).UTC()
	b.TenantID = append(b.TenantID, tenantID)
	b.Date = append(b.Date, ts)
	b.Timestamp = append(b.Timestamp, ts)
	b.RetentionClass = append(b.RetentionClass, DefaultRetentionClass)
	b.TraceID = append(b.TraceID, r.traceID)
	b.SpanID = append(b.SpanID, r.spanID)
	b.ParentSpanID = append(b.ParentSpanID, r.parent)
	b.TraceState = append(b.TraceState, r.state)
	b.Flags = append(b.Flags, r.flags)
	b.ServiceName = append(b.ServiceName, ri.service)
	b.Name = append(b.Name, r.name)
	b.Kind = append(b.Kind, r.kind)
	b.StartNs = append(b.StartNs, r.start)
	b.EndNs = append(b.EndNs, r.end)
	b.StatusCode = append(b.StatusCode, r.statusCode)
	b.StatusMessage = append(b.StatusMessage, r.statusMsg)
	b.ScopeName = append(b.ScopeName, r.scopeName)
	b.ScopeVersion = append(b.ScopeVersion, r.scopeVersion)
	b.PodUID = append(b.PodUID, ri.podUID)
	b.PodName = append(b.PodName, ri.podName)
	b.Namespace = append(b.Namespace, ri.namespace)
	b.NodeName = append(b.NodeName, ri.node)
	b.ContainerID = append(b.ContainerID, ri.containerID)
	b.ContainerName = append(b.ContainerName, ri.containerName)
	b.AttrKeys = append(b.AttrKeys, r.attrKeys)
	b.AttrValues = append(b.AttrValues, r.attrValues)
	b.AttrTypes = append(b.AttrTypes, r.attrTypes)
	b.ResourceKeys = append(b.ResourceKeys, ri.keys)
	b.ResourceValues = append(b.ResourceValues, ri.values)
	b.ResourceTypes = append(b.ResourceTypes, ri.types)
	b.EventTimes = append(b.EventTimes, r.eventTimes)
	b.EventNames = append(b.EventNames, r.eventNames)
	b.EventAttrs = append(b.EventAttrs, r.eventAttrs)
	b.LinkTraceIDs = append(b.LinkTraceIDs, r.linkTraceIDs)
	b.LinkSpanIDs = append(b.LinkSpanIDs, r.linkSpanIDs)
	b.LinkTraceStates = append(b.LinkTraceStates, r.linkStates)
	b.LinkAttrs = append(b.LinkAttrs, r.linkAttrs)
	b.DroppedAttributesCount = append(b.DroppedAttributesCount, r.droppedAttrs)
	b.DroppedEventsCount = append(b.DroppedEventsCount, r.droppedEvents)
	b.DroppedLinksCount = append(b.DroppedLinksCount, r.droppedLinks)
}

func (b *SpanBatch) appendSpan(tenantID string, ri *resourceInfo, scope pcommon.InstrumentationScope, sp ptrace.Span) {
	tid, sid := sp.TraceID(), sp.SpanID()
	r := spanRow{
		traceID: string(tid[:]), spanID: string(sid[:]), state: sp.TraceState().AsRaw(), name: sp.Name(),
		flags: sp.Flags(), kind: int8(sp.Kind()), statusCode: int8(sp.Status().Code()),
		start: uint64(sp.StartTimestamp()), end: uint64(sp.EndTimestamp()),
		statusMsg: sp.Status().Message(), scopeName: scope.Name(), scopeVersion: scope.Version(),
		droppedAttrs: sp.DroppedAttributesCount(), droppedEvents: sp.DroppedEventsCount(), droppedLinks: sp.DroppedLinksCount(),
	}
	if p := sp.ParentSpanID(); !p.IsEmpty() {
		r.parent = string(p[:])
	}

	attrs := sp.Attributes()
	na := attrs.Len()
	r.attrKeys, r.attrValues, r.attrTypes = AppendAttrs(cut(&b.strSlab, na), cut(&b.strSlab, na), cut(&b.u8Slab, na), attrs)

	evs := sp.Events()
	ne := evs.Len()
	r.eventTimes, r.eventNames, r.eventAttrs = cut(&b.u64Slab, ne)[:ne], cut(&b.strSlab, ne)[:ne], cut(&b.strSlab, ne)[:ne]
	for i := 0; i < ne; i++ {
		e := evs.At(i)
		r.eventTimes[i], r.eventNames[i], r.eventAttrs[i] = uint64(e.Timestamp()), e.Name(), AttrsJSON(e.Attributes())
	}

	links := sp.Links()
	nl := links.Len()
	r.linkTraceIDs, r.linkSpanIDs = cut(&b.strSlab, nl)[:nl], cut(&b.strSlab, nl)[:nl]
	r.linkStates, r.linkAttrs = cut(&b.strSlab, nl)[:nl], cut(&b.strSlab, nl)[:nl]
	for i := 0; i < nl; i++ {
		l := links.At(i)
		ltid, lsid := l.TraceID(), l.SpanID()
		r.linkTraceIDs[i], r.linkSpanIDs[i] = ltid.String(), lsid.String()
		r.linkStates[i], r.linkAttrs[i] = l.TraceState().AsRaw(), AttrsJSON(l.Attributes())
	}
	b.appendRow(tenantID, ri, &r)
}
