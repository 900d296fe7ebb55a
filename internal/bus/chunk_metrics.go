package bus

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// chunkMetrics marshals md into protobuf payloads of at most maxBytes each,
// halving the set of metrics until every part fits. A metric (with all its
// data points) is the unit that is never split.
func chunkMetrics(md pmetric.Metrics, maxBytes int) ([][]byte, []int, error) {
	var m pmetric.ProtoMarshaler
	if m.MetricsSize(md) <= maxBytes {
		b, err := m.MarshalMetrics(md)
		if err != nil {
			return nil, nil, fmt.Errorf("marshal metrics: %w", err)
		}
		return [][]byte{b}, []int{md.DataPointCount()}, nil
	}
	n := md.MetricCount()
	if n <= 1 {
		return nil, nil, apperr.New(apperr.KindTooLarge,
			"a single metric is larger than the queue's message limit of %d bytes; send fewer data points per metric", maxBytes)
	}
	a, b := splitMetrics(md, n/2)
	pa, ca, err := chunkMetrics(a, maxBytes)
	if err != nil {
		return nil, nil, err
	}
	pb, cb, err := chunkMetrics(b, maxBytes)
	if err != nil {
		return nil, nil, err
	}
	return append(pa, pb...), append(ca, cb...), nil
}

// splitMetrics returns the first k metrics of md and the rest, each with
// its resource and scope.
func splitMetrics(md pmetric.Metrics, k int) (pmetric.Metrics, pmetric.Metrics) {
	out := [2]pmetric.Metrics{pmetric.NewMetrics(), pmetric.NewMetrics()}
	i := 0
	rms := md.ResourceMetrics()
	for r := 0; r < rms.Len(); r++ {
		rm := rms.At(r)
		var dst [2]pmetric.ResourceMetrics
		var have [2]bool
		sms := rm.ScopeMetrics()
		for s := 0; s < sms.Len(); s++ {
			sm := sms.At(s)
			var sdst [2]pmetric.ScopeMetrics
			var shave [2]bool
			ms := sm.Metrics()
			for j := 0; j < ms.Len(); j++ {
				side := 0
				if i >= k {
					side = 1
				}
				i++
				if !have[side] {
					dst[side] = out[side].ResourceMetrics().AppendEmpty()
					rm.Resource().CopyTo(dst[side].Resource())
					dst[side].SetSchemaUrl(rm.SchemaUrl())
					have[side] = true
				}
				if !shave[side] {
					sdst[side] = dst[side].ScopeMetrics().AppendEmpty()
					sm.Scope().CopyTo(sdst[side].Scope())
					sdst[side].SetSchemaUrl(sm.SchemaUrl())
					shave[side] = true
				}
				ms.At(j).CopyTo(sdst[side].Metrics().AppendEmpty())
			}
		}
	}
	return out[0], out[1]
}
