package retention

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	partitionsDropped *prometheus.CounterVec // by table, class, reason
	rowsDropped       *prometheus.CounterVec // by table, class
	rowsHeld          *prometheus.CounterVec // rows copied into the hold class, by table
	holdsPlaced       *prometheus.CounterVec // by capture trigger
	bundles           *prometheus.CounterVec // by outcome
	failures          *prometheus.CounterVec // by task
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		partitionsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_retention_partitions_dropped_total", Help: "ClickHouse partitions dropped by retention.",
		}, []string{"table", "class", "reason"}),
		rowsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_retention_rows_dropped_total", Help: "Rows in the partitions retention dropped.",
		}, []string{"table", "class"}),
		rowsHeld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_retention_hold_rows_copied_total", Help: "Rows copied into the hold class by forensic holds.",
		}, []string{"table"}),
		holdsPlaced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_retention_capture_holds_total", Help: "Holds placed by capture rules.",
		}, []string{"trigger"}),
		bundles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_retention_bundles_total", Help: "Evidence bundles built, by outcome.",
		}, []string{"outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_retention_failures_total", Help: "Retention worker passes that failed, by task.",
		}, []string{"task"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.partitionsDropped, m.rowsDropped, m.rowsHeld, m.holdsPlaced, m.bundles, m.failures} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
