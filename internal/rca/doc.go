// Package rca ranks the likely root causes of a problem in a time window:
// it compares the window's RED signals derived from spans (request rate,
// errors, self time and inbound call latency per service, operation and
// pod), the pods' resource metrics and their log error rates against a
// baseline learned from the tenant's own earlier data (median and MAD),
// builds the service and pod call graph from the spans, and scores each
// candidate (service, pod, container) by how anomalous it is, how early
// its anomaly began and whether a callee explains it. Container events
// (runtime security, Kubernetes) on a candidate raise it.
//
// The method holds no names of services, operations or metrics and no
// per-dataset thresholds: every signal is judged against its own history
// and against its peers (the same metric on the other pods).
//
// Judging one signal (stats.go): the verdict is the deviation sustained
// over two window buckets, not a single spike; a value the history already
// reached in two or more buckets is bounded by how often it was reached
// (quantized and bursty signals have a tiny MAD), and a value a little
// beyond the history's largest by how rare the history's own tail makes
// it (an exponential tail over the upper quartile); large z-scores are
// compressed logarithmically so they still order by size. Combining
// signals (score.go): signals whose series correlate strongly, and metrics
// whose names mark them as quantiles or derived forms of one quantity
// (…_p90/…_p99, …_usage/…_usage_rate), count as one piece of evidence;
// removing what peers share never flips a signal's
// direction; a callee that merely does less (its signals fell) passes half
// of that evidence to its callers and does not explain (demote) them.
//
// Cost: the span statistics need a self-join of the spans; settled buckets
// are stored in rca_span_stats and reused while their span count is
// unchanged (span_cache.go), so an analysis joins only its window and what
// is new.
package rca
