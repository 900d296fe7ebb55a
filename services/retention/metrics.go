package retention

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	partitionsDropped *prometheus.CounterVec // by table, class, reason
	rowsDropped       *prometheus.CounterVec // by table, class
	partitionsKept    *prometheus.CounterVec // not dropped whole, by table, reason
	rowsDeleted       *prometheus.CounterVec // deleted by mutation, by table, reason
	rowsRescued       *prometheus.CounterVec // copied before a drop or delete, by table, reason
	rowsHeld          *prometheus.CounterVec // rows copied into the hold class, by table
	holdFailures      *prometheus.CounterVec // hold syncs that failed, by reason
	holdsPlaced       *prometheus.CounterVec // by capture trigger
	captureFailures   *prometheus.CounterVec // triggers whose holds could not be placed, by trigger, reason
	bundles           *prometheus.CounterVec // by outcome
	bundleFailures    *prometheus.CounterVec // by reason (the bundle's error code)
	failures          *prometheus.CounterVec // by task
}

// Reasons of the counters above (besides retention.Reason* and the bundle
// error codes).
const (
	reasonHoldNotSynced  = "hold_not_synced" // kept: a hold of a tenant in it could not copy
	reasonRescueFailed   = "rescue_failed"   // kept: the copy before the drop failed
	reasonPolicy         = "policy"          // deleted: the policy in force no longer keeps them
	reasonLateHold       = "late_hold"       // rescued: late rows into an open hold
	reasonLongerPolicy   = "longer_policy"   // rescued: a lengthened policy keeps them
	reasonIncidentGone   = "incident_not_found"
	reasonNoIncidents    = "incidents_unavailable"
	reasonResolveFailed  = "resolve_failed"
	reasonCopyFailed     = "copy_failed"
	reasonLateCopyFailed = "late_copy_failed"
	reasonStateFailed    = "state_failed"
	reasonSkipped        = "skipped" // capture: attempts used up, not retried
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &metrics{
		partitionsDropped: counter("aftertrace_retention_partitions_dropped_total", "ClickHouse partitions dropped by retention.", "table", "class", "reason"),
		rowsDropped:       counter("aftertrace_retention_rows_dropped_total", "Rows in the partitions retention dropped.", "table", "class"),
		partitionsKept: counter("aftertrace_retention_partitions_kept_total",
			"Expired partitions not dropped whole (a hold of a tenant in them could not copy; the copy before the drop failed).", "table", "reason"),
		rowsDeleted: counter("aftertrace_retention_rows_deleted_total",
			"Rows retention deleted by mutation (other tenants' rows of kept partitions; rows a shortened policy no longer keeps).", "table", "reason"),
		rowsRescued: counter("aftertrace_retention_rows_rescued_total",
			"Rows copied before a drop or delete (late rows into open holds; rows a lengthened policy keeps).", "table", "reason"),
		rowsHeld:        counter("aftertrace_retention_hold_rows_copied_total", "Rows copied into the hold class by forensic holds.", "table"),
		holdFailures:    counter("aftertrace_retention_hold_sync_failures_total", "Hold copies that failed, by reason.", "reason"),
		holdsPlaced:     counter("aftertrace_retention_capture_holds_total", "Holds placed by capture rules.", "trigger"),
		captureFailures: counter("aftertrace_retention_capture_failures_total", "Capture triggers whose holds could not be placed, by reason (skipped: not retried).", "trigger", "reason"),
		bundles:         counter("aftertrace_retention_bundles_total", "Evidence bundles built, by outcome.", "outcome"),
		bundleFailures:  counter("aftertrace_retention_bundle_failures_total", "Evidence bundles failed, by reason (the bundle's error code).", "reason"),
		failures:        counter("aftertrace_retention_failures_total", "Retention worker passes that failed, by task.", "task"),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.partitionsDropped, m.rowsDropped, m.partitionsKept, m.rowsDeleted, m.rowsRescued,
			m.rowsHeld, m.holdFailures, m.holdsPlaced, m.captureFailures, m.bundles, m.bundleFailures, m.failures} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
