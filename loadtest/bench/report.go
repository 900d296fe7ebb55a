package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// E2ESpansPerSec is the highest sustained rate counted in ClickHouse, or
// 0 when no step held.
func (r *Report) E2ESpansPerSec() float64 {
	if r.Best == nil {
		return 0
	}
	return r.Best.SpansPerSec
}

// Ratio is end to end ÷ raw.
func (r *Report) Ratio() float64 {
	if r.Raw.RowsPerSec == 0 {
		return 0
	}
	return r.E2ESpansPerSec() / r.Raw.RowsPerSec
}

// LastLine is the machine-readable summary.
func (r *Report) LastLine() string {
	return fmt.Sprintf("spans_per_s=%.0f logs_per_s=%s ratio_vs_raw=%.2f p99_ingest_to_query_ms=%.0f trace_by_id_p99_ms=%.1f bytes_per_span=%.0f",
		r.E2ESpansPerSec(), r.LogsPerSec, r.Ratio(), r.IngestToQuery.P99, r.TraceByID.P99, r.BytesPerSpan)
}

// Table writes the human-readable results, the last line last.
func (r *Report) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tvalue\tnotes")
	fmt.Fprintf(tw, "topology\t%s\t%d ClickHouse server process(es) on this host; ClickHouse CPU below is summed over them\n", r.Topology, r.CHNodes)
	fmt.Fprintf(tw, "raw insert\t%.0f rows/s\t%d workers × %d-row batches, %d rows in %.1fs (clickhouse-go → ClickHouse %s)\n",
		r.Raw.RowsPerSec, r.Raw.Workers, r.Raw.BatchRows, r.Raw.Rows, r.Raw.Elapsed.Seconds(), r.ClickHouse)
	fmt.Fprintf(tw, "raw insert CPU\t%s\tCPU ms per 1000 rows: bench client (clickhouse-go) / ClickHouse\n", cpuPer1k(r.Raw.ClientCPU, r.Raw.CHCPU, r.Raw.Rows))
	for i, s := range r.Steps {
		probes := summarize(s.Probes, s.ProbeTimeouts)
		fmt.Fprintf(tw, "e2e step %d @ %.0f spans/s\t%.0f spans/s stored\tsustained=%v (%s); client acked %d, late %d/%d; lag %d→%d msgs; drain %.1fs; probe p50/p99 %.0f/%.0f ms (n=%d, timeouts/skipped %d)\n",
			i+1, s.Rate, s.SpansPerSec, s.Sustained, s.Reason, s.Client.AckedSpans, s.Client.Late, s.Client.Requests,
			s.LagMid, s.LagEnd, s.DrainSec, probes.P50, probes.P99, probes.N, probes.Errors)
		fmt.Fprintf(tw, "  step %d CPU\t%s\tCPU ms per 1000 spans: aftertrace (gateway+NATS+writer+api) / ClickHouse; load generator %s\n",
			i+1, cpuPer1k(s.AppCPU, s.CHCPU, s.Stored), perK(s.LoadCPU, s.Stored))
	}
	bound := "no higher step failed"
	if u := r.FailedAbove(); u > 0 {
		bound = fmt.Sprintf("the limit lies below %.0f spans/s, the lowest failed step above it", u)
	}
	fmt.Fprintf(tw, "e2e sustained\t%.0f spans/s\tloadgen → gateway → JetStream → writer → ClickHouse, counted in ClickHouse; a lower bound: %s\n", r.E2ESpansPerSec(), bound)
	fmt.Fprintf(tw, "ratio vs raw\t%.2f\t\n", r.Ratio())
	fmt.Fprintf(tw, "ingest → queryable\tp50 %.0f ms, p99 %.0f ms\tn=%d probes through GET /api/v1/traces/{id}, %d timed out or skipped\n",
		r.IngestToQuery.P50, r.IngestToQuery.P99, r.IngestToQuery.N, r.IngestToQuery.Errors)
	fmt.Fprintf(tw, "trace by id\tp50 %.1f ms, p99 %.1f ms\tn=%d random acked traces, sequential, %d errors\n",
		r.TraceByID.P50, r.TraceByID.P99, r.TraceByID.N, r.TraceByID.Errors)
	fmt.Fprintf(tw, "bytes per span\t%.0f\tsystem.parts active, %d rows (unmerged parts included)\n", r.BytesPerSpan, r.RowsOnDisk)
	for i, l := range r.LogSteps {
		fmt.Fprintf(tw, "logs step %d @ %.0f records/s\t%.0f records/s stored\tsustained=%v (%s); acked %d, late %d/%d; lag %d msgs; drain %.1fs; CPU %s\n",
			i+1, l.Rate, l.LogsPerSec, l.Sustained, l.Reason, l.Acked, l.Late, l.Requests, l.LagEnd, l.DrainSec, cpuPer1k(l.AppCPU, l.CHCPU, l.Stored))
	}
	fmt.Fprintf(tw, "logs sustained\t%s records/s\tgateway → JetStream → writer → ClickHouse, 1000-record OTLP requests, counted in ClickHouse; the best held step (a lower bound when the last step held; n/a when none held)\n", r.LogsPerSec)
	writeCompare(tw, r.Compare, r.Overload, r.CompareErr)
	fmt.Fprintf(tw, "elapsed\t%.0fs\t\n", r.Elapsed.Seconds())
	tw.Flush()
	fmt.Fprintln(w, strings.Repeat("-", 40))
	fmt.Fprintln(w, r.LastLine())
}

func perK(cpu float64, rows int64) string {
	if rows == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f ms", cpu*1e6/float64(rows))
}

func cpuPer1k(a, b float64, rows int64) string {
	if rows == 0 {
		return "n/a"
	}
	k := float64(rows) / 1000
	return fmt.Sprintf("%.1f / %.1f ms", a*1000/k, b*1000/k)
}

// FailedAbove is the lowest rate above the best one that did not hold, or 0.
func (r *Report) FailedAbove() float64 {
	if r.Best == nil {
		return 0
	}
	u := 0.0
	for _, s := range r.Steps {
		if !s.Sustained && s.Rate > r.Best.Rate && (u == 0 || s.Rate < u) {
			u = s.Rate
		}
	}
	return u
}

// writeCompare adds the gateway vs OpenTelemetry Collector rows.
func writeCompare(tw io.Writer, rows []CompareResult, ov *OverloadResult, err error) {
	if err != nil {
		fmt.Fprintf(tw, "gateway vs otelcol\tn/a\t%v\n", err)
		return
	}
	for _, c := range rows {
		note := "same telemetrygen load (gRPC), server CPU only"
		if !c.ClientOK {
			note = c.Note
		}
		fmt.Fprintf(tw, "CPU/1000 spans: %s\t%.1f ms\t%d spans in %.1fs; peak RSS %d MiB; %s\n",
			c.Name, c.CPUPer1k(), c.Spans, c.Elapsed.Seconds(), c.PeakRSS>>20, note)
	}
	if ov != nil {
		fmt.Fprintf(tw, "gateway overload %.1f×\tpeak RSS %d MiB\toffered %.0f spans/s to a %.0f spans/s tenant limit for %.0fs: %d requests shed (429/RESOURCE_EXHAUSTED), %d accepted (%.0f spans/s)\n",
			ov.Factor(), ov.PeakRSS>>20, ov.OfferedPerSec, ov.LimitSpansPerSec, ov.Elapsed.Seconds(), ov.ShedRequests, ov.OKRequests, ov.AcceptedPerSec)
	}
}

// WriteCompare prints the comparison rows as a table of their own.
func WriteCompare(w io.Writer, rows []CompareResult, ov *OverloadResult, err error) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tvalue\tnotes")
	writeCompare(tw, rows, ov, err)
	tw.Flush()
}
