// Package rca ranks the likely root causes of a problem in a time window
// from a tenant's own spans, logs, metrics and container events, judged
// against a baseline learned from the tenant's data around the window.
// Signal families (own time, network gaps, failures attributed to the
// deepest failing service of each trace, log templates, metrics, per-edge
// metrics, callees that do less, events) each say how surprising a
// service's change is; the findings are grouped, fused with diminishing
// weights and discounted where a callee explains them. The method, its
// statistics and its references are in README.md; the ClickHouse reads
// are in internal/chstore.
package rca
