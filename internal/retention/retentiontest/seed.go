// Package retentiontest seeds past-dated telemetry for retention tests:
// spans, logs, metric points and container events of several containers,
// one of each per container and day, classified like the writer does.
package retentiontest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// Inserter writes rows (implemented by *chstore.Store).
type Inserter interface {
	InsertSpans(ctx context.Context, b *otlpconv.SpanBatch) error
	InsertLogs(ctx context.Context, b *otlpconv.LogBatch) error
	InsertMetrics(ctx context.Context, b *otlpconv.MetricBatch) error
	InsertEventsClassified(ctx context.Context, evs []events.Event, classes []string) error
}

// Container is one seeded container.
type Container struct {
	ID        string // 64 hex characters
	PodUID    string
	PodName   string
	Namespace string
	Service   string
}

// NewContainer derives a container from a name.
func NewContainer(name, namespace, service string) Container {
	sum := sha256.Sum256([]byte(name))
	return Container{
		ID: hex.EncodeToString(sum[:]), PodUID: "pod-uid-" + name, PodName: service + "-" + name,
		Namespace: namespace, Service: service,
	}
}

// Short is the container's 12-character id.
func (c Container) Short() string { return c.ID[:12] }

// TraceID is the id of the container's trace of day d (0: the as-of day,
// 1: the day before, ...).
func (c Container) TraceID(d int) [16]byte {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", c.ID, d))
	var id [16]byte
	copy(id[:], sum[:16])
	return id
}

// At is the time of day d's rows: noon UTC, d days before asOf's date.
func At(asOf time.Time, d int) time.Time {
	return retention.Day(asOf).AddDate(0, 0, -d).Add(12 * time.Hour)
}

// Seed writes Days days (day 0 = asOf's date) of one trace of two spans,
// one log record, one gauge point and one container event per container and
// day for tenant, classified by cls like the writer classifies (nil: every
// row "default").
func Seed(ctx context.Context, ins Inserter, cls *retention.Classifier, tenant string, asOf time.Time, days int, cs []Container) error {
	td := ptrace.NewTraces()
	ld := plog.NewLogs()
	md := pmetric.NewMetrics()
	var evs []events.Event
	for _, c := range cs {
		rs := td.ResourceSpans().AppendEmpty()
		setResource(rs.Resource(), c)
		ss := rs.ScopeSpans().AppendEmpty()
		rl := ld.ResourceLogs().AppendEmpty()
		setResource(rl.Resource(), c)
		sl := rl.ScopeLogs().AppendEmpty()
		rm := md.ResourceMetrics().AppendEmpty()
		setResource(rm.Resource(), c)
		g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		g.SetName("container.cpu.usage")
		gauge := g.SetEmptyGauge()
		for d := range days {
			at := At(asOf, d)
			tid := c.TraceID(d)
			root := ss.Spans().AppendEmpty()
			root.SetTraceID(tid)
			root.SetSpanID(pcommon.SpanID{1, byte(d)})
			root.SetName("GET /checkout")
			root.SetKind(ptrace.SpanKindServer)
			root.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
			root.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(20 * time.Millisecond)))
			child := ss.Spans().AppendEmpty()
			child.SetTraceID(tid)
			child.SetSpanID(pcommon.SpanID{2, byte(d)})
			child.SetParentSpanID(root.SpanID())
			child.SetName("SELECT orders")
			child.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Millisecond)))
			child.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(10 * time.Millisecond)))

			lr := sl.LogRecords().AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(5 * time.Millisecond)))
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.Body().SetStr(fmt.Sprintf("checkout day %d in %s", d, c.Short()))
			lr.SetTraceID(tid)

			p := gauge.DataPoints().AppendEmpty()
			p.SetTimestamp(pcommon.NewTimestampFromTime(at))
			p.SetDoubleValue(float64(d))

			e := events.Event{
				TenantID: tenant, TimeUnixNano: uint64(at.Add(time.Second).UnixNano()), ObservedUnixNano: uint64(at.Add(2 * time.Second).UnixNano()),
				Source: events.SourceK8sEvent, Type: events.TypeK8sEvent, Severity: events.SeverityInfo, SeverityText: "info",
				Reason: "Pulled", Message: fmt.Sprintf("day %d", d), ContainerID: c.ID, ContainerName: "app",
				PodUID: c.PodUID, PodName: c.PodName, Namespace: c.Namespace, Workload: c.Service, ExitCode: events.ExitCodeUnknown,
			}
			e.ID = events.NewID(tenant, e.Source, fmt.Appendf(nil, "%s/%d", c.ID, d))
			evs = append(evs, e)
		}
	}
	var sb otlpconv.SpanBatch
	sb.AppendTraces(tenant, td)
	var lb otlpconv.LogBatch
	lb.AppendLogs(tenant, ld)
	var mb otlpconv.MetricBatch
	mb.AppendMetrics(tenant, md)
	if cls != nil {
		cls.ClassifySpans(&sb)
		cls.ClassifyLogs(&lb)
		cls.ClassifyMetrics(&mb)
	}
	if err := ins.InsertSpans(ctx, &sb); err != nil {
		return err
	}
	if err := ins.InsertLogs(ctx, &lb); err != nil {
		return err
	}
	if err := ins.InsertMetrics(ctx, &mb); err != nil {
		return err
	}
	var classes []string
	if cls != nil {
		n := len(evs)
		classes = make([]string, n)
		tenants, namespaces, workloads := make([]string, n), make([]string, n), make([]string, n)
		for i := range evs {
			tenants[i], namespaces[i], workloads[i] = evs[i].TenantID, evs[i].Namespace, evs[i].Workload
		}
		cls.ClassifyRows(retention.SignalEvents, classes, tenants, namespaces, workloads)
	}
	return ins.InsertEventsClassified(ctx, evs, classes)
}

func setResource(r pcommon.Resource, c Container) {
	a := r.Attributes()
	a.PutStr(otlpconv.AttrServiceName, c.Service)
	a.PutStr(otlpconv.AttrPodUID, c.PodUID)
	a.PutStr(otlpconv.AttrPodName, c.PodName)
	a.PutStr(otlpconv.AttrNamespace, c.Namespace)
	a.PutStr(otlpconv.AttrContainerID, c.ID)
	a.PutStr(otlpconv.AttrContainerName, "app")
}
