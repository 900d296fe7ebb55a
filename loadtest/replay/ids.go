package replay

import (
	"crypto/sha256"
	"encoding/hex"
	"github.com/aftertrace/aftertrace/internal/events"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Attribute keys holding a source id that was not usable as an OTLP id.
const (
	AttrSourceTraceID = "nezha.trace_id"
	AttrSourceSpanID  = "nezha.span_id"
)

// TraceID maps a source trace id to an OTLP trace id. 32 hex digits (any
// case) decode as they are; any other non-empty id becomes the first 16
// bytes of its SHA-256 and mapped is true. "" gives the empty id.
func TraceID(src string) (id pcommon.TraceID, mapped bool) {
	if src == "" {
		return id, false
	}
	if len(src) == 2*len(id) {
		if _, err := hex.Decode(id[:], []byte(src)); err == nil {
			return id, false
		}
	}
	sum := sha256.Sum256([]byte(src))
	copy(id[:], sum[:])
	return id, true
}

// SpanID maps a source span id like TraceID: 16 hex digits as they are,
// anything else the first 8 bytes of its SHA-256.
func SpanID(src string) (id pcommon.SpanID, mapped bool) {
	if src == "" {
		return id, false
	}
	if len(src) == 2*len(id) {
		if _, err := hex.Decode(id[:], []byte(src)); err == nil {
			return id, false
		}
	}
	sum := sha256.Sum256([]byte(src))
	copy(id[:], sum[:])
	return id, true
}

// ServiceFromPod derives the workload (service) name from a pod name as
// the rest of Aftertrace does (events.WorkloadFromPodName): a Deployment
// pod "name-<replicaset hash>-<suffix>" loses both generated segments, a
// StatefulSet pod "name-<ordinal>" its ordinal. A name of three or more
// segments that is not shaped like a generated one loses its last two, as
// the datasets' labels define the service.
func ServiceFromPod(pod string) string {
	if w := events.WorkloadFromPodName(pod); w != pod {
		return w
	}
	if parts := strings.Split(pod, "-"); len(parts) >= 3 {
		return strings.Join(parts[:len(parts)-2], "-")
	}
	return pod
}

// MetricName turns a source column like "PodClientLatencyP90(s)" into a
// metric name suffix and unit: "pod_client_latency_p90", "s". CamelCase
// becomes snake_case, anything but letters and digits an underscore.
func MetricName(column string) (name, unit string) {
	base := column
	if i := strings.IndexByte(column, '('); i >= 0 && strings.HasSuffix(column, ")") {
		base, unit = column[:i], column[i+1:len(column)-1]
	}
	var b strings.Builder
	rs := []rune(base)
	for i, r := range rs {
		switch {
		case r >= 'A' && r <= 'Z':
			if i > 0 {
				p := rs[i-1]
				nextLower := i+1 < len(rs) && rs[i+1] >= 'a' && rs[i+1] <= 'z'
				if (p >= 'a' && p <= 'z') || (p >= '0' && p <= '9') || (p >= 'A' && p <= 'Z' && nextLower) {
					b.WriteByte('_')
				}
			}
			b.WriteRune(r + ('a' - 'A'))
		case (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name = b.String()
	for strings.Contains(name, "__") {
		name = strings.ReplaceAll(name, "__", "_")
	}
	return strings.Trim(name, "_"), unit
}
