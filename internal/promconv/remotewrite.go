// Package promconv converts between Prometheus and OpenTelemetry metrics:
// remote-write requests into pdata, so Prometheus samples take the OTLP
// metrics path (limits, JetStream, ClickHouse) unchanged.
package promconv

import (
	"encoding/hex"
	"fmt"
	"math"
	"strings"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Resource attributes of a series' job and instance labels, as the
// OpenTelemetry–Prometheus compatibility rules map them.
const (
	attrServiceName       = "service.name"
	attrServiceNamespace  = "service.namespace"
	attrServiceInstanceID = "service.instance.id"
)

// DecodeWriteRequest decodes a remote-write 1.0 body (protobuf, already
// snappy-decompressed).
func DecodeWriteRequest(body []byte) (*prompb.WriteRequest, error) {
	var req prompb.WriteRequest
	if err := req.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("remote-write protobuf: %w", err)
	}
	return &req, nil
}

// AppendWriteRequest appends req's samples to dst: one resource per job
// and instance (service.namespace/service.name from "ns/name" jobs,
// service.instance.id from instance), one metric per name and resource
// named exactly as in Prometheus (so PromQL finds it by that name), every
// other non-empty label as a data point attribute. Metadata, when sent,
// gives types, units and help: counters and the _bucket/_count/_sum
// series of histograms and summaries become monotonic cumulative sums,
// the rest gauges; without metadata a name ending in _total is a counter.
// A stale marker becomes a point flagged "no recorded value", as the
// Collector's Prometheus receiver does. Native histograms are refused:
// they have no OTLP counterpart stored here yet.
func AppendWriteRequest(req *prompb.WriteRequest, dst pmetric.Metrics) error {
	meta := make(map[string]prompb.MetricMetadata, len(req.Metadata))
	for _, m := range req.Metadata {
		meta[m.MetricFamilyName] = m
	}
	type resKey struct{ job, instance string }
	type metricKey struct {
		res  resKey
		name string
	}
	scopes := map[resKey]pmetric.MetricSlice{}
	metrics := map[metricKey]pmetric.Metric{}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		var name, job, instance string
		for _, l := range ts.Labels {
			switch l.Name {
			case "__name__":
				name = l.Value
			case "job":
				job = l.Value
			case "instance":
				instance = l.Value
			}
		}
		if name == "" {
			return fmt.Errorf("timeseries[%d]: no __name__ label", i)
		}
		if len(ts.Histograms) > 0 {
			return fmt.Errorf("timeseries[%d] (%s): native histograms are not supported; send classic histograms (_bucket series)", i, name)
		}
		if len(ts.Samples) == 0 {
			continue
		}
		rk := resKey{job, instance}
		ms, ok := scopes[rk]
		if !ok {
			rm := dst.ResourceMetrics().AppendEmpty()
			setResource(rm.Resource().Attributes(), job, instance)
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName("prometheus-remote-write")
			ms = sm.Metrics()
			scopes[rk] = ms
		}
		mk := metricKey{rk, name}
		m, ok := metrics[mk]
		if !ok {
			m = ms.AppendEmpty()
			newMetric(m, name, meta)
			metrics[mk] = m
		}
		var points pmetric.NumberDataPointSlice
		if m.Type() == pmetric.MetricTypeSum {
			points = m.Sum().DataPoints()
		} else {
			points = m.Gauge().DataPoints()
		}
		for _, s := range ts.Samples {
			p := points.AppendEmpty()
			p.SetTimestamp(pcommon.Timestamp(s.Timestamp * 1e6))
			if value.IsStaleNaN(s.Value) {
				p.SetDoubleValue(math.NaN())
				p.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			} else {
				p.SetDoubleValue(s.Value)
			}
			setLabels(p.Attributes(), ts.Labels)
		}
		if len(ts.Exemplars) > 0 && points.Len() > 0 {
			appendExemplars(points.At(points.Len()-1).Exemplars(), ts.Exemplars)
		}
	}
	return nil
}

// setResource maps job and instance: "ns/name" jobs give a namespace.
func setResource(attrs pcommon.Map, job, instance string) {
	if job != "" {
		if ns, svc, ok := strings.Cut(job, "/"); ok && ns != "" && svc != "" {
			attrs.PutStr(attrServiceNamespace, ns)
			attrs.PutStr(attrServiceName, svc)
		} else {
			attrs.PutStr(attrServiceName, job)
		}
	}
	if instance != "" {
		attrs.PutStr(attrServiceInstanceID, instance)
	}
}

// setLabels puts every label but __name__, job and instance (on the
// resource) as attributes; an empty value is an absent label.
func setLabels(attrs pcommon.Map, labels []prompb.Label) {
	attrs.EnsureCapacity(len(labels))
	for _, l := range labels {
		switch l.Name {
		case "__name__", "job", "instance":
			continue
		}
		if l.Value != "" {
			attrs.PutStr(l.Name, l.Value)
		}
	}
}

// newMetric sets m's name, type, unit and description from the metadata
// of its family.
func newMetric(m pmetric.Metric, name string, meta map[string]prompb.MetricMetadata) {
	m.SetName(name)
	md, suffix := familyOf(name, meta)
	m.SetUnit(md.Unit)
	m.SetDescription(md.Help)
	counter := false
	switch md.Type {
	case prompb.MetricMetadata_COUNTER:
		counter = true
	case prompb.MetricMetadata_HISTOGRAM, prompb.MetricMetadata_GAUGEHISTOGRAM, prompb.MetricMetadata_SUMMARY:
		counter = suffix != "" && md.Type != prompb.MetricMetadata_GAUGEHISTOGRAM
	case prompb.MetricMetadata_UNKNOWN:
		counter = strings.HasSuffix(name, "_total") && md.MetricFamilyName == ""
	}
	if counter {
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		return
	}
	m.SetEmptyGauge()
}

// familyOf finds the metadata of name's family: the name itself, or the
// name without a _total, _bucket, _count or _sum suffix (returned).
func familyOf(name string, meta map[string]prompb.MetricMetadata) (prompb.MetricMetadata, string) {
	if md, ok := meta[name]; ok {
		return md, ""
	}
	for _, suffix := range []string{"_total", "_bucket", "_count", "_sum"} {
		if fam, ok := strings.CutSuffix(name, suffix); ok {
			if md, ok := meta[fam]; ok {
				return md, suffix
			}
		}
	}
	return prompb.MetricMetadata{}, ""
}

// appendExemplars keeps a series' exemplars on its last point: value,
// time, trace and span ids (trace_id/span_id labels in hex) and the other
// labels as filtered attributes.
func appendExemplars(dst pmetric.ExemplarSlice, exs []prompb.Exemplar) {
	for _, ex := range exs {
		e := dst.AppendEmpty()
		e.SetDoubleValue(ex.Value)
		e.SetTimestamp(pcommon.Timestamp(ex.Timestamp * 1e6))
		for _, l := range ex.Labels {
			switch l.Name {
			case "trace_id", "traceID", "traceId":
				var id pcommon.TraceID
				if decodeHex(id[:], l.Value) {
					e.SetTraceID(id)
					continue
				}
			case "span_id", "spanID", "spanId":
				var id pcommon.SpanID
				if decodeHex(id[:], l.Value) {
					e.SetSpanID(id)
					continue
				}
			}
			e.FilteredAttributes().PutStr(l.Name, l.Value)
		}
	}
}

// decodeHex fills dst from s when s is exactly its hex form.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}
