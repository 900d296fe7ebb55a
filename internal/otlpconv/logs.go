package otlpconv

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// LogBatch holds log records column by column, in the order of LogColumns,
// so that a whole batch is appended to a ClickHouse insert column-wise.
type LogBatch struct {
	TenantID               []string
	Date                   []time.Time
	Timestamp              []time.Time
	RetentionClass         []string
	RecordID               []string // 16 raw bytes, see recordHasher
	TimeNs                 []uint64
	ObservedNs             []uint64
	SeverityNumber         []uint8
	SeverityText           []string
	Body                   []string
	BodyType               []uint8
	BodyPattern            []string // LogPattern(Body)
	TraceID                []string // 16 raw bytes, all zero when unset
	SpanID                 []string // 8 raw bytes, all zero when unset
	Flags                  []uint32
	EventName              []string
	ServiceName            []string
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
	DroppedAttributesCount []uint32

	// Now is the clock used for a record that has neither time nor observed
	// time (the gateway stamps the observed time, so only data that bypassed
	// it); nil means time.Now.
	Now func() time.Time
}

// LogColumns are the logs table columns, in the order Columns returns them.
var LogColumns = []string{
	"tenant_id", "date", "timestamp", "retention_class", "record_id",
	"time_unix_nano", "observed_time_unix_nano", "severity_number", "severity_text",
	"body", "body_type", "body_pattern", "trace_id", "span_id", "flags", "event_name",
	"service_name", "scope_name", "scope_version",
	"k8s_pod_uid", "k8s_pod_name", "k8s_namespace_name", "k8s_node_name", "container_id", "k8s_container_name",
	"attr_keys", "attr_values", "attr_types", "resource_keys", "resource_values", "resource_types",
	"dropped_attributes_count",
}

// Columns returns the column slices in LogColumns order.
func (b *LogBatch) Columns() []any {
	return []any{
		b.TenantID, b.Date, b.Timestamp, b.RetentionClass, b.RecordID,
		b.TimeNs, b.ObservedNs, b.SeverityNumber, b.SeverityText,
		b.Body, b.BodyType, b.BodyPattern, b.TraceID, b.SpanID, b.Flags, b.EventName,
		b.ServiceName, b.ScopeName, b.ScopeVersion,
		b.PodUID, b.PodName, b.Namespace, b.NodeName, b.ContainerID, b.ContainerName,
		b.AttrKeys, b.AttrValues, b.AttrTypes, b.ResourceKeys, b.ResourceValues, b.ResourceTypes,
		b.DroppedAttributesCount,
	}
}

// Len is the number of rows.
func (b *LogBatch) Len() int { return len(b.TenantID) }

// LogTimeNs is the time a log record is filed and sorted under: its time,
// else its observed time (0 when both are unset).
func LogTimeNs(lr plog.LogRecord) uint64 {
	if t := uint64(lr.Timestamp()); t != 0 {
		return t
	}
	return uint64(lr.ObservedTimestamp())
}

// AppendLogs flattens every log record of ld into the batch for tenantID.
// The record id of each row is a hash of the tenant, the resource, the
// scope, the record's position in ld and its content: the same message
// delivered twice yields the same ids, while two equal records of one
// message (a line logged twice in the same nanosecond) stay distinct.
func (b *LogBatch) AppendLogs(tenantID string, ld plog.Logs) {
	h := newRecordHasher()
	rls := ld.ResourceLogs()
	for r := 0; r < rls.Len(); r++ {
		rl := rls.At(r)
		ri := newResourceInfo(rl.Resource())
		h.reset()
		h.str(tenantID)
		h.uint(uint64(r))
		h.attrs(ri.keys, ri.values, ri.types)
		resSum := h.sum()
		sls := rl.ScopeLogs()
		for s := 0; s < sls.Len(); s++ {
			sl := sls.At(s)
			scope := sl.Scope()
			h.reset()
			h.bytes(resSum[:])
			h.uint(uint64(s))
			h.str(scope.Name())
			h.str(scope.Version())
			scopeSum := h.sum()
			recs := sl.LogRecords()
			for i := 0; i < recs.Len(); i++ {
				b.appendRecord(tenantID, &ri, scope, recs.At(i), h, scopeSum, i)
			}
		}
	}
}

func (b *LogBatch) appendRecord(tenantID string, ri *resourceInfo, scope pcommon.InstrumentationScope,
	lr plog.LogRecord, h *recordHasher, scopeSum [sha256.Size]byte, index int,
) {
	timeNs, observedNs := uint64(lr.Timestamp()), uint64(lr.ObservedTimestamp())
	if timeNs == 0 && observedNs == 0 {
		now := time.Now
		if b.Now != nil {
			now = b.Now
		}
		observedNs = uint64(now().UnixNano())
	}
	tsNs := timeNs
	if tsNs == 0 {
		tsNs = observedNs
	}
	ts := time.Unix(0, int64(tsNs)).UTC()
	tid, sid := lr.TraceID(), lr.SpanID()
	body, bodyType := EncodeValue(lr.Body())
	attrs := lr.Attributes()
	n := attrs.Len()
	k, v, t := AppendAttrs(make([]string, 0, n), make([]string, 0, n), make([]uint8, 0, n), attrs)

	h.reset()
	h.bytes(scopeSum[:])
	h.uint(uint64(index))
	h.uint(uint64(lr.Timestamp()))
	h.uint(uint64(lr.ObservedTimestamp()))
	h.uint(uint64(int64(lr.SeverityNumber())))
	h.str(lr.SeverityText())
	h.uint(uint64(bodyType))
	h.str(body)
	h.bytes(tid[:])
	h.bytes(sid[:])
	h.uint(uint64(lr.Flags()))
	h.str(lr.EventName())
	h.attrs(k, v, t)
	h.uint(uint64(lr.DroppedAttributesCount()))
	id := h.sum()

	b.TenantID = append(b.TenantID, tenantID)
	b.Date = append(b.Date, ts)
	b.Timestamp = append(b.Timestamp, ts)
	b.RetentionClass = append(b.RetentionClass, DefaultRetentionClass)
	b.RecordID = append(b.RecordID, string(id[:16]))
	b.TimeNs = append(b.TimeNs, timeNs)
	b.ObservedNs = append(b.ObservedNs, observedNs)
	b.SeverityNumber = append(b.SeverityNumber, clampSeverity(int32(lr.SeverityNumber())))
	b.SeverityText = append(b.SeverityText, lr.SeverityText())
	b.Body = append(b.Body, body)
	b.BodyType = append(b.BodyType, bodyType)
	b.BodyPattern = append(b.BodyPattern, LogPattern(body))
	b.TraceID = append(b.TraceID, string(tid[:]))
	b.SpanID = append(b.SpanID, string(sid[:]))
	b.Flags = append(b.Flags, uint32(lr.Flags()))
	b.EventName = append(b.EventName, lr.EventName())
	b.ServiceName = append(b.ServiceName, ri.service)
	b.ScopeName = append(b.ScopeName, scope.Name())
	b.ScopeVersion = append(b.ScopeVersion, scope.Version())
	b.PodUID = append(b.PodUID, ri.podUID)
	b.PodName = append(b.PodName, ri.podName)
	b.Namespace = append(b.Namespace, ri.namespace)
	b.NodeName = append(b.NodeName, ri.node)
	b.ContainerID = append(b.ContainerID, ri.containerID)
	b.ContainerName = append(b.ContainerName, ri.containerName)
	b.AttrKeys = append(b.AttrKeys, nonNilStrings(k))
	b.AttrValues = append(b.AttrValues, nonNilStrings(v))
	b.AttrTypes = append(b.AttrTypes, nonNilTypes(t))
	b.ResourceKeys = append(b.ResourceKeys, nonNilStrings(ri.keys))
	b.ResourceValues = append(b.ResourceValues, nonNilStrings(ri.values))
	b.ResourceTypes = append(b.ResourceTypes, nonNilTypes(ri.types))
	b.DroppedAttributesCount = append(b.DroppedAttributesCount, lr.DroppedAttributesCount())
}

// clampSeverity fits an OTLP SeverityNumber (an open enum: 0..24 defined,
// any int32 on the wire) into the UInt8 column.
func clampSeverity(n int32) uint8 {
	switch {
	case n < 0:
		return 0
	case n > 255:
		return 255
	}
	return uint8(n)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilTypes(s []uint8) []uint8 {
	if s == nil {
		return []uint8{}
	}
	return s
}

// recordHasher encodes fields length-prefixed into a reused buffer, so
// that field boundaries are unambiguous, and hashes it with SHA-256; record
// ids are the first 16 bytes of the sum.
type recordHasher struct{ buf []byte }

func newRecordHasher() *recordHasher { return &recordHasher{buf: make([]byte, 0, 1024)} }

func (r *recordHasher) reset() { r.buf = r.buf[:0] }

func (r *recordHasher) uint(v uint64) { r.buf = binary.AppendUvarint(r.buf, v) }

func (r *recordHasher) bytes(b []byte) {
	r.uint(uint64(len(b)))
	r.buf = append(r.buf, b...)
}

func (r *recordHasher) str(s string) {
	r.uint(uint64(len(s)))
	r.buf = append(r.buf, s...)
}

func (r *recordHasher) attrs(keys, values []string, types []uint8) {
	r.uint(uint64(len(keys)))
	for i := range keys {
		r.str(keys[i])
		r.str(values[i])
		r.uint(uint64(types[i]))
	}
}

func (r *recordHasher) sum() [sha256.Size]byte { return sha256.Sum256(r.buf) }
