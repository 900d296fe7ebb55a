package main

import (
	"github.com/spf13/pflag"

	"github.com/aftertrace/aftertrace/services/allinone"
)

// bindCorrelator registers the correlator flags.
func bindCorrelator(fs *pflag.FlagSet, c *allinone.Config) {
	k := &c.Correlator
	fs.StringVar(&k.OpsAddr, "correlator-ops-addr", k.OpsAddr, "correlator /healthz /readyz /metrics address when run alone")
	fs.IntVar(&k.Workers, "correlator-workers", k.Workers, "events messages correlated at once")
	fs.DurationVar(&k.Before, "correlate-before", k.Before, "link traces with spans on the event's container/pod from this long before the event ...")
	fs.DurationVar(&k.After, "correlate-after", k.After, "... to this long after it")
	fs.DurationVar(&k.Settle, "correlate-settle", k.Settle, "extra wait after event time + after before linking, so late spans are stored")
	fs.IntVar(&k.MaxDeliver, "correlator-max-deliver", k.MaxDeliver, "deliveries of a message that fails for a reason that may follow it (waits for an event's window included) before it is dead-lettered")
	fs.IntVar(&k.MaxTracesPerEvent, "correlate-max-traces", k.MaxTracesPerEvent, "most traces linked to one event")
	fs.DurationVar(&k.DefinitionsTTL, "business-transactions-refresh", k.DefinitionsTTL, "how often business transaction definitions are re-read per tenant")
	fs.Uint8Var(&k.Incidents.MinSeverity, "incident-min-severity", k.Incidents.MinSeverity, "events at or above this severity (OTLP scale: 13 warning, 17 error, 18 critical) open an incident")
	fs.StringSliceVar(&k.Incidents.Types, "incident-types", k.Incidents.Types, "event types that open an incident whatever their severity")
	fs.Uint8Var(&k.Incidents.GroupMinSeverity, "incident-group-min-severity", k.Incidents.GroupMinSeverity, "events at or above this severity join a related open incident")
	fs.DurationVar(&k.Incidents.GroupWindow, "incident-group-window", k.Incidents.GroupWindow, "events within this of an incident's events overlap it in time")
	fs.Float64Var(&k.Incidents.AnomalyMinScore, "incident-anomaly-min-score", k.Incidents.AnomalyMinScore, "an anomaly whose top root-cause candidate scores at least this opens an incident (0: never; a tenant may override it, incident-min-severity and incident-types via /api/v1/incident-rules)")
	fs.DurationVar(&k.RulesTTL, "incident-rules-refresh", k.RulesTTL, "how often per-tenant incident rules are re-read")
	fs.DurationVar(&k.Anomalies.Interval, "anomaly-interval", k.Anomalies.Interval, "how often the root-cause analysis looks for anomalies of every tenant with recent spans (0: off)")
	fs.DurationVar(&k.Anomalies.Window, "anomaly-window", k.Anomalies.Window, "window the anomaly pass analyses (also its de-duplication bucket)")
	fs.IntVar(&k.Anomalies.MaxTenants, "anomaly-max-tenants", k.Anomalies.MaxTenants, "most tenants analysed per anomaly pass")
}
