package writer

import "github.com/aftertrace/aftertrace/internal/otlpconv"

// Classifier sets the retention class of every row of a batch before it is
// inserted (implemented by *retention.Classifier). Without one every row
// keeps otlpconv.DefaultRetentionClass.
type Classifier interface {
	ClassifySpans(b *otlpconv.SpanBatch)
	ClassifyLogs(b *otlpconv.LogBatch)
	ClassifyMetrics(b *otlpconv.MetricBatch)
}
