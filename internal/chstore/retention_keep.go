package chstore

import (
	"slices"
	"strings"
	"time"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// keepTable says how the retention in force applies to the rows of one
// retention-managed table: its signals and the columns a policy's
// namespace and service select on. Closed: only these names reach the SQL.
type keepTable struct {
	signals   []retention.Signal
	namespace string // "" when the table has none
	service   string
	// source: rows are copied into the class the policy in force gives
	// them before their partition drops; the index tables follow through
	// their materialized views.
	source bool
}

var keepTables = map[string]keepTable{
	"spans":            {signals: []retention.Signal{retention.SignalSpans}, namespace: "k8s_namespace_name", service: "service_name", source: true},
	"logs":             {signals: []retention.Signal{retention.SignalLogs}, namespace: "k8s_namespace_name", service: "service_name", source: true},
	"metric_points":    {signals: []retention.Signal{retention.SignalMetrics}, namespace: "k8s_namespace_name", service: "service_name", source: true},
	"container_events": {signals: []retention.Signal{retention.SignalEvents}, namespace: "k8s_namespace_name", service: "workload", source: true},
	// Links carry neither namespace nor workload: the longest of the
	// tenant's link policies applies (kept longer, never shorter).
	"event_links":         {signals: []retention.Signal{retention.SignalLinks}, source: true},
	"trace_index":         {signals: []retention.Signal{retention.SignalSpans}},
	"log_trace_index":     {signals: []retention.Signal{retention.SignalLogs}},
	"trace_event_index":   {signals: []retention.Signal{retention.SignalLinks}},
	"container_sightings": {signals: []retention.Signal{retention.SignalSpans, retention.SignalLogs, retention.SignalMetrics, retention.SignalEvents}},
	"rca_buckets":         {signals: []retention.Signal{retention.SignalSpans, retention.SignalLogs, retention.SignalMetrics}},
}

// KeepTable returns the signals of a retention-managed table's rows,
// whether they follow the retention in force exactly (a table with
// namespace and service columns) or by the tenant's longest days of those
// signals, and whether they are copied into their class before a drop.
func KeepTable(table string) (signals []retention.Signal, exact, source, ok bool) {
	t, ok := keepTables[table]
	return slices.Clone(t.signals), t.exact(), t.source, ok
}

func (t keepTable) exact() bool { return len(t.signals) == 1 && t.namespace != "" && t.service != "" }

// keepExpr is the days (retention.Forever: forever) and the class the
// retention in force gives each row, as SQL with bound values.
type keepExpr struct {
	days      string
	daysArgs  []any
	class     string
	classArgs []any
}

// keepExprs builds the expressions for the rows of tenants; rows of other
// tenants get the default of the table's signals. Exact tables follow
// retention.Match per row; the others take the tenant's longest days.
func (t keepTable) keepExprs(k retention.Keep, tenants []string) keepExpr {
	var e keepExpr
	var days, class []string
	branch := func(cond string, condArgs []any, d int, c string) {
		days = append(days, cond, "?")
		class = append(class, cond, "?")
		e.daysArgs = append(append(e.daysArgs, condArgs...), d)
		e.classArgs = append(append(e.classArgs, condArgs...), c)
	}
	for _, tenant := range tenants {
		if !t.exact() {
			_, hi, hiClass := k.Bounds(tenant, t.signals...)
			branch("tenant_id = ?", []any{tenant}, hi, hiClass)
			continue
		}
		rules, _ := k.Rules(tenant, t.signals[0])
		for _, p := range rules {
			cond, args := "tenant_id = ?", []any{tenant}
			if p.Namespace != "" {
				cond, args = cond+" AND "+t.namespace+" = ?", append(args, p.Namespace)
			}
			if p.Service != "" {
				cond, args = cond+" AND "+t.service+" = ?", append(args, p.Service)
			}
			branch(cond, args, p.Days, retention.DaysClass(p.Days))
		}
	}
	def := 0
	for _, sig := range t.signals {
		def = max(def, k.Default(sig))
	}
	days, class = append(days, "?"), append(class, "?")
	e.daysArgs, e.classArgs = append(e.daysArgs, def), append(e.classArgs, retention.ClassDefault)
	if len(days) == 1 {
		e.days, e.class = "toUInt32(?)", "?"
		return e
	}
	e.days = "toUInt32(multiIf(" + strings.Join(days, ", ") + "))"
	e.class = "multiIf(" + strings.Join(class, ", ") + ")"
	return e
}

// maxKeepBranches bounds the policy branches of one statement (the SQL
// stays well under ClickHouse's max_query_size); more tenants take more
// statements.
const maxKeepBranches = 300

// tenantChunks splits tenants into groups of at most maxKeepBranches
// policy branches.
func (t keepTable) tenantChunks(k retention.Keep, tenants []string) [][]string {
	tenants = slices.Clone(tenants)
	slices.Sort(tenants)
	var out [][]string
	var cur []string
	n := 0
	for _, tenant := range tenants {
		b := 1
		if t.exact() {
			rules, _ := k.Rules(tenant, t.signals[0])
			b = max(len(rules), 1)
		}
		if n+b > maxKeepBranches && len(cur) > 0 {
			out, cur, n = append(out, cur), nil, 0
		}
		cur, n = append(cur, tenant), n+b
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// ageExpr is a row's age in days as of the bound date: day 0 is that
// date, as retention.Plan counts.
const ageExpr = "(toRelativeDayNum(toDate(?)) - toRelativeDayNum(date))"

// dateArg formats a date for toDate(?).
func dateArg(t time.Time) string { return t.UTC().Format(time.DateOnly) }
