package gateway

import (
	"context"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// metricsSignal is OTLP metrics. pdata already checks exemplar id lengths
// (all-zero exemplar ids mean "no trace", which is valid); metrics without
// a name are removed (partial success): a point nobody can query by name
// is lost anyway.
var metricsSignal = signal[pmetricotlp.ExportRequest]{
	name:           "metrics",
	httpPath:       "/v1/metrics",
	grpcMethod:     "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
	newRequest:     pmetricotlp.NewExportRequest,
	unmarshalProto: pmetricotlp.ExportRequest.UnmarshalProto,
	unmarshalJSON:  pmetricotlp.ExportRequest.UnmarshalJSON,
	filter:         filterMetrics,
	unit:           "data point",
	records:        func(r pmetricotlp.ExportRequest) int { return r.Metrics().DataPointCount() },
	protoSize: func(r pmetricotlp.ExportRequest) int {
		return (&pmetric.ProtoMarshaler{}).MetricsSize(r.Metrics())
	},
	publish: func(ctx context.Context, p Publisher, tenantID string, r pmetricotlp.ExportRequest) error {
		return p.PublishMetrics(ctx, tenantID, r.Metrics())
	},
	response: func(enc encoding, rejected int, msg string) ([]byte, error) {
		resp := pmetricotlp.NewExportResponse()
		if rejected > 0 {
			resp.PartialSuccess().SetRejectedDataPoints(int64(rejected))
			resp.PartialSuccess().SetErrorMessage(msg)
		}
		if enc == encJSON {
			return resp.MarshalJSON()
		}
		return resp.MarshalProto()
	},
}

// filterMetrics removes metrics without a name (their data points count
// as rejected) and data points whose time is outside w.
func filterMetrics(req pmetricotlp.ExportRequest, w window, rj *rejects) {
	rms := req.Metrics().ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			k := -1
			sms.At(j).Metrics().RemoveIf(func(m pmetric.Metric) bool {
				k++
				path := func() string {
					return "resourceMetrics[" + strconv.Itoa(i) + "].scopeMetrics[" + strconv.Itoa(j) + "].metrics[" + strconv.Itoa(k) + "]"
				}
				if m.Name() == "" {
					rj.add(reasonMalformed, metricPoints(m), path()+".name", "must not be empty")
					return true
				}
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dropPoints(m.Gauge().DataPoints().RemoveIf, w, rj, path)
				case pmetric.MetricTypeSum:
					dropPoints(m.Sum().DataPoints().RemoveIf, w, rj, path)
				case pmetric.MetricTypeHistogram:
					dropPoints(m.Histogram().DataPoints().RemoveIf, w, rj, path)
				case pmetric.MetricTypeExponentialHistogram:
					dropPoints(m.ExponentialHistogram().DataPoints().RemoveIf, w, rj, path)
				case pmetric.MetricTypeSummary:
					dropPoints(m.Summary().DataPoints().RemoveIf, w, rj, path)
				}
				return false
			})
		}
	}
}

// dropPoints removes, through a data point slice's RemoveIf, the points
// whose time is outside w.
func dropPoints[P interface{ Timestamp() pcommon.Timestamp }](removeIf func(func(P) bool), w window, rj *rejects, path func() string) {
	k := -1
	removeIf(func(p P) bool {
		k++
		reason, problem := rj.check(w, uint64(p.Timestamp()))
		if reason == "" {
			return false
		}
		rj.add(reason, 1, path()+".dataPoints["+strconv.Itoa(k)+"].timeUnixNano", problem)
		return true
	})
}

// metricPoints counts the data points of one metric.
func metricPoints(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}
