package correlator

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	messages  *prometheus.CounterVec // messages by outcome: acked, deferred, retried, rejected
	events    *prometheus.CounterVec // events by outcome: linked, no_traces, no_target, ambiguous_pod
	links     prometheus.Counter     // links written
	truncated prometheus.Counter     // events whose traces were cut at MaxTracesPerEvent
	incidents *prometheus.CounterVec // events by incident outcome: opened, grouped, known, none
	anomalies *prometheus.CounterVec // tenant analyses of the anomaly pass by outcome
	passes    prometheus.Counter     // anomaly passes completed
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_correlator_messages_total", Help: "Correlate messages by outcome (acked, deferred, retried, rejected) and reason.",
		}, []string{"outcome", "reason"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_correlator_events_total", Help: "Events correlated, by outcome.",
		}, []string{"outcome"}),
		links: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aftertrace_correlator_links_total", Help: "Event to trace links written.",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aftertrace_correlator_traces_truncated_total", Help: "Events with more linked traces than max-traces-per-event (the rest are not linked).",
		}),
		incidents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_correlator_incident_events_total", Help: "Events offered to incident grouping, by outcome.",
		}, []string{"outcome"}),
		anomalies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_correlator_anomaly_checks_total",
			Help: "Tenant analyses of the anomaly pass, by outcome (opened, grouped, known: an incident was opened, joined or already had this anomaly; below: top score under the threshold; none: no candidate; disabled: threshold 0; skipped: over max tenants; error).",
		}, []string{"outcome"}),
		passes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aftertrace_correlator_anomaly_passes_total", Help: "Anomaly passes completed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.events, m.links, m.truncated, m.incidents, m.anomalies, m.passes)
	}
	return m
}
