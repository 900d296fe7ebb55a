package writer

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	rows        *prometheus.CounterVec   // rows inserted, by signal
	messages    *prometheus.CounterVec   // messages acknowledged, by signal
	dropped     *prometheus.CounterVec   // messages dead-lettered, by signal and reason
	retries     *prometheus.CounterVec   // insert retries, by signal
	insertSecs  *prometheus.HistogramVec // insert latency, by signal
	batchRows   *prometheus.HistogramVec // rows per insert, by signal
	redelivered *prometheus.CounterVec   // messages seen more than once, by signal
	isolations  *prometheus.CounterVec   // batches split to isolate a failing message, by signal
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_writer_rows_total", Help: "Rows inserted into ClickHouse.",
		}, []string{"signal"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_writer_messages_acked_total", Help: "JetStream messages acknowledged after insert.",
		}, []string{"signal"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_writer_dead_lettered_total", Help: "Messages moved to the dead-letter subject.",
		}, []string{"signal", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_writer_insert_retries_total", Help: "Insert attempts that failed and were retried.",
		}, []string{"signal"}),
		insertSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aftertrace_writer_insert_seconds", Help: "ClickHouse insert latency.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"signal"}),
		batchRows: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aftertrace_writer_batch_rows", Help: "Rows per ClickHouse insert.",
			Buckets: prometheus.ExponentialBuckets(10, 4, 8),
		}, []string{"signal"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_writer_redelivered_total", Help: "Messages delivered more than once.",
		}, []string{"signal"}),
		isolations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_writer_isolations_total", Help: "Batches whose insert failed for a reason that may follow the data, split to isolate the failing messages.",
		}, []string{"signal"}),
	}
	if reg != nil {
		reg.MustRegister(m.rows, m.messages, m.dropped, m.retries, m.insertSecs, m.batchRows, m.redelivered, m.isolations)
	}
	return m
}
