// Package events holds the normalized container event: Falco alerts,
// Kubernetes events and pod status transitions all become an Event, stored
// in the ClickHouse table container_events and linked to traces by the
// correlator.
package events

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Sources of events.
const (
	SourceFalco     = "falco"      // Falco http_output / falcosidekick webhook
	SourceK8sEvent  = "k8s_event"  // Collector k8s_events receiver (OTLP logs)
	SourceK8sObject = "k8s_object" // Collector k8sobjects receiver, pods/events in watch or pull mode
)

// Normalized event types.
const (
	TypeSecurityAlert   = "security_alert"    // a Falco rule fired
	TypeOOMKilled       = "oom_killed"        // container terminated with reason OOMKilled
	TypeCrashLoop       = "crash_loop"        // container waiting in CrashLoopBackOff
	TypeContainerError  = "container_error"   // container terminated with reason Error / non-zero exit
	TypeEvicted         = "evicted"           // pod evicted
	TypeImagePullFailed = "image_pull_failed" // ErrImagePull / ImagePullBackOff / InvalidImageName
	TypeK8sEvent        = "k8s_event"         // any other Kubernetes event (reason kept in Reason)
)

// Severities on the OTLP severity-number scale, so events and logs share one
// order. Falco priorities and Kubernetes event types map onto these.
const (
	SeverityDebug     uint8 = 5
	SeverityInfo      uint8 = 9
	SeverityNotice    uint8 = 10
	SeverityWarning   uint8 = 13
	SeverityError     uint8 = 17
	SeverityCritical  uint8 = 18
	SeverityAlert     uint8 = 19
	SeverityEmergency uint8 = 21
)

// severityNames are the accepted names (Falco priorities and their
// common abbreviations), lower case.
var severityNames = map[string]uint8{
	"debug": SeverityDebug, "informational": SeverityInfo, "info": SeverityInfo,
	"normal": SeverityInfo, "notice": SeverityNotice, "warning": SeverityWarning,
	"warn": SeverityWarning, "error": SeverityError, "critical": SeverityCritical,
	"alert": SeverityAlert, "emergency": SeverityEmergency,
}

// ParseSeverity maps a severity name (case-insensitive) to its number.
func ParseSeverity(name string) (uint8, bool) {
	s, ok := severityNames[strings.ToLower(strings.TrimSpace(name))]
	return s, ok
}

// SeverityName is the canonical lower-case name of a severity number (the
// highest named level not above it).
func SeverityName(n uint8) string {
	switch {
	case n >= SeverityEmergency:
		return "emergency"
	case n >= SeverityAlert:
		return "alert"
	case n >= SeverityCritical:
		return "critical"
	case n >= SeverityError:
		return "error"
	case n >= SeverityWarning:
		return "warning"
	case n >= SeverityNotice:
		return "notice"
	case n >= SeverityInfo:
		return "info"
	default:
		return "debug"
	}
}

// ExitCodeUnknown marks an event without a container exit code.
const ExitCodeUnknown int32 = -1

// Event is one normalized container event. Times are unix nanoseconds.
// Container ids are normalized (otlpconv.NormalizeContainerID); ContainerIDShort
// is the first 12 characters, which matches Falco's ids and full runtime ids.
type Event struct {
	TenantID         string   `json:"tenantId"`
	ID               ID       `json:"id"`
	TimeUnixNano     uint64   `json:"timeUnixNano,string"`
	ObservedUnixNano uint64   `json:"observedTimeUnixNano,string"`
	Source           string   `json:"source"`
	Type             string   `json:"type"`
	Severity         uint8    `json:"severity"`
	SeverityText     string   `json:"severityText"`
	Reason           string   `json:"reason"` // Falco rule or Kubernetes reason
	Message          string   `json:"message"`
	ContainerID      string   `json:"containerId"`
	ContainerName    string   `json:"containerName"`
	PodUID           string   `json:"podUid"`
	PodName          string   `json:"podName"`
	Namespace        string   `json:"namespace"`
	NodeName         string   `json:"nodeName"`
	Workload         string   `json:"workload"` // deployment/statefulset/… derived from the pod name or owner
	Image            string   `json:"image"`
	ProcessName      string   `json:"processName"`
	ProcessCmdline   string   `json:"processCmdline"`
	UserName         string   `json:"userName"`
	ExitCode         int32    `json:"exitCode"` // ExitCodeUnknown when not known
	Tags             []string `json:"tags"`
	FieldKeys        []string `json:"fieldKeys"` // raw source fields, flattened, sorted by key
	FieldValues      []string `json:"fieldValues"`
}

// ContainerIDShort is the 12-character prefix of the container id.
func (e *Event) ContainerIDShort() string { return ShortContainerID(e.ContainerID) }

// ShortContainerID is the 12-character prefix of a normalized container id
// (the whole id if shorter).
func ShortContainerID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ID identifies an event; it travels as lower-case hex.
type ID [16]byte

// String is the id as lower-case hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the id as lower-case hex.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes 32 hex characters.
func (id *ID) UnmarshalText(b []byte) error {
	parsed, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// ParseID decodes an event id from 32 hex characters (any case).
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 32 {
		return id, fmt.Errorf("event id must be 32 hex characters, got %d", len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("event id is not hex: %w", err)
	}
	return id, nil
}

// NewID derives an event id from the tenant, the source and the event's raw
// content (the bytes the source sent for this one event, or a canonical
// encoding of them), so the same event delivered twice gets the same id.
func NewID(tenantID, source string, raw []byte) ID {
	h := sha256.New()
	h.Write([]byte(tenantID))
	h.Write([]byte{0})
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(raw)
	var id ID
	copy(id[:], h.Sum(nil))
	return id
}
