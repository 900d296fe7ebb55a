// Package correlator links stored container events to the traces that ran
// on the same container or pod around the event, classifies those traces
// into business transactions, and groups events into incidents. It
// consumes bus.CorrelateStream (a work queue the writer feeds after
// storing events) and acknowledges a message only after its links and
// incidents are stored; a message whose window is not closed yet
// (event time + After + Settle) is handed back with a delay.
package correlator

import (
	"errors"
	"slices"
	"time"

	"github.com/aftertrace/aftertrace/internal/events"
)

// Config tunes the correlator.
type Config struct {
	OpsAddr string // /healthz /readyz /metrics; "" disables the listener
	Durable string // durable consumer name
	Workers int    // messages processed at once

	Before     time.Duration // link traces with spans from event time - Before ...
	After      time.Duration // ... to event time + After
	Settle     time.Duration // extra wait after event time + After, so late spans are stored before linking
	TraceSlack time.Duration // how far outside the window the other spans of a linked trace are read
	MaxDelay   time.Duration // longest single wait of a message whose window is not closed (it is re-checked then)

	MaxTracesPerEvent int           // links per event; more traces are cut (counted)
	AckWait           time.Duration // redelivery after this long without ack
	MaxAckPending     int           // messages in flight (including waiting ones)
	RetryMin          time.Duration // first retry delay after a storage failure
	RetryMax          time.Duration // longest retry delay
	// MaxDeliver bounds the deliveries of a message that fails for a reason
	// that may follow the message (bus.Delivery); then it is dead-lettered.
	// Waiting for an event's window to close counts deliveries too.
	MaxDeliver     int
	DefinitionsTTL time.Duration // business transaction definitions are re-read this often per tenant
	RulesTTL       time.Duration // per-tenant incident rules are re-read this often per tenant

	Incidents IncidentRule
	Anomalies AnomalyConfig
}

// AnomalyConfig tunes the periodic anomaly pass: every Interval the
// root-cause engine analyses the last Window of every tenant that had
// spans in it, and an incident of kind "anomaly" opens (or the anomaly
// joins a related incident) when the top candidate's score reaches the
// tenant's anomaly threshold (IncidentRule.AnomalyMinScore).
type AnomalyConfig struct {
	Interval   time.Duration // 0: no anomaly pass
	Window     time.Duration // analysed window, ending Settle before now; also the idempotency bucket
	MaxTenants int           // tenants analysed per pass (the rest are skipped and counted)
}

// IncidentRule says when an event opens an incident and which events join one.
type IncidentRule struct {
	MinSeverity      uint8         // events at or above open an incident
	Types            []string      // events of these types open one whatever their severity
	GroupMinSeverity uint8         // events at or above join a related open incident
	GroupWindow      time.Duration // events within this of an incident's events overlap it in time
	// AnomalyMinScore: an anomaly whose top root-cause candidate scores at
	// least this opens an incident; 0: anomalies never do.
	AnomalyMinScore float64
}

// Opens reports whether ev crosses the rule.
func (r IncidentRule) Opens(ev *events.Event) bool {
	return ev.Severity >= r.MinSeverity || slices.Contains(r.Types, ev.Type)
}

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{
		OpsAddr:           "127.0.0.1:8082",
		Durable:           "aftertrace-correlator",
		Workers:           4,
		Before:            5 * time.Minute,
		After:             time.Minute,
		Settle:            15 * time.Second,
		TraceSlack:        5 * time.Minute,
		MaxDelay:          30 * time.Second,
		MaxTracesPerEvent: 10_000,
		AckWait:           2 * time.Minute,
		MaxAckPending:     10_000,
		RetryMin:          200 * time.Millisecond,
		RetryMax:          10 * time.Second,
		MaxDeliver:        20,
		DefinitionsTTL:    30 * time.Second,
		RulesTTL:          30 * time.Second,
		Incidents: IncidentRule{
			MinSeverity:      events.SeverityError,
			Types:            []string{events.TypeOOMKilled, events.TypeCrashLoop, events.TypeEvicted},
			GroupMinSeverity: events.SeverityWarning,
			GroupWindow:      15 * time.Minute,
			AnomalyMinScore:  DefaultAnomalyMinScore,
		},
		Anomalies: AnomalyConfig{Interval: time.Minute, Window: 10 * time.Minute, MaxTenants: 1000},
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Durable == "" {
		errs = append(errs, errors.New("correlator durable: must not be empty"))
	}
	if c.Workers < 1 {
		errs = append(errs, errors.New("correlator workers: must be at least 1"))
	}
	if c.Before < 0 || c.After < 0 || c.Settle < 0 || c.TraceSlack < 0 {
		errs = append(errs, errors.New("correlator window: before, after, settle and trace slack must not be negative"))
	}
	if c.Before+c.After <= 0 {
		errs = append(errs, errors.New("correlator window: before + after must be positive"))
	}
	if c.MaxDelay < 10*time.Millisecond {
		errs = append(errs, errors.New("correlator max delay: must be at least 10ms"))
	}
	if c.MaxTracesPerEvent < 1 {
		errs = append(errs, errors.New("correlator max traces per event: must be at least 1"))
	}
	if c.AckWait < time.Second {
		errs = append(errs, errors.New("correlator ack wait: must be at least 1s"))
	}
	if c.MaxAckPending < 1 {
		errs = append(errs, errors.New("correlator max ack pending: must be at least 1"))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("correlator retry: need 0 < retry-min <= retry-max"))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, errors.New("correlator max deliver: must be at least 1"))
	}
	if c.DefinitionsTTL < 0 {
		errs = append(errs, errors.New("correlator definitions ttl: must not be negative"))
	}
	if c.Incidents.GroupWindow < 0 {
		errs = append(errs, errors.New("correlator incident group window: must not be negative"))
	}
	if c.RulesTTL < 0 {
		errs = append(errs, errors.New("correlator incident rules ttl: must not be negative"))
	}
	if !(c.Incidents.AnomalyMinScore >= 0) {
		errs = append(errs, errors.New("correlator anomaly min score: must not be negative (0: anomalies never open incidents)"))
	}
	if c.Anomalies.Interval < 0 {
		errs = append(errs, errors.New("correlator anomaly interval: must not be negative (0: off)"))
	}
	if c.Anomalies.Interval > 0 {
		if c.Anomalies.Window < 2*time.Minute || c.Anomalies.Window > 24*time.Hour {
			errs = append(errs, errors.New("correlator anomaly window: must be from 2m to 24h"))
		}
		if c.Anomalies.MaxTenants < 1 {
			errs = append(errs, errors.New("correlator anomaly max tenants: must be at least 1"))
		}
	}
	return errors.Join(errs...)
}
