package gateway

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Transport label values.
const (
	transportGRPC = "grpc"
	transportHTTP = "http"
)

// Reasons a request is rejected: the values of the "reason" label of
// aftertrace_gateway_rejected_total.
const (
	reasonMethodNotAllowed = "method_not_allowed" // HTTP method other than POST
	reasonBadContentType   = "bad_content_type"   // unsupported Content-Type
	reasonBadEncoding      = "bad_encoding"       // unsupported Content-Encoding or corrupt gzip
	reasonUnauthenticated  = "unauthenticated"    // missing or unknown API key
	reasonAuthRateLimited  = "auth_rate_limited"  // the client's address failed to authenticate too often
	reasonAuthFailed       = "auth_failed"        // the authenticator itself failed
	reasonOverloaded       = "overloaded"         // over MaxConcurrentRequests, or shutting down
	reasonTooLarge         = "too_large"          // over MaxRequestBytes (raw or decompressed)
	reasonReadError        = "read_error"         // the body could not be read from the client
	reasonMalformed        = "malformed"          // not valid OTLP protobuf / JSON
	reasonInvalidID        = "invalid_id"         // trace or span id of the wrong length, bad hex, or all zeros
	reasonUnavailable      = "unavailable"        // the bus is down or did not acknowledge in time
	reasonPublishFailed    = "publish_failed"     // the bus failed for another reason
	reasonRateLimited      = "rate_limited"       // over the tenant's records/s or bytes/s limit
	reasonInflightBytes    = "overloaded"         // over MaxInflightBytes (same label as reasonOverloaded)
	reasonTooOld           = "too_old"            // record time before the tenant's window (its longest retention)
	reasonTooNew           = "too_far_future"     // record time after the tenant's window (--ingest-max-future)
)

// reasonTooManyConnections labels aftertrace_gateway_connections_rejected_total:
// a connection over GRPCMaxConnections.
const reasonTooManyConnections = "too_many_connections"

type metrics struct {
	requests *prometheus.CounterVec
	rejected *prometheus.CounterVec
	records  *prometheus.CounterVec
	bytes    *prometheus.HistogramVec

	rejectedRecords *prometheus.CounterVec // records dropped from accepted requests, or of rejected ones
	tenantRejected  *prometheus.CounterVec // requests refused by a tenant limit
	inflightBytes   prometheus.Gauge
	connRejected    *prometheus.CounterVec // connections closed unserved
	laneRecords     *prometheus.CounterVec // accepted records by bus lane
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_gateway_requests_total",
			Help: "OTLP export requests answered, by signal, transport and status code (HTTP status or gRPC code name).",
		}, []string{"signal", "transport", "code"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_gateway_rejected_total",
			Help: "OTLP export requests answered with an error, by signal, transport and reason.",
		}, []string{"signal", "transport", "reason"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_gateway_records_total",
			Help: "Records (spans, for traces) accepted: acknowledged by the bus.",
		}, []string{"signal"}),
		bytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aftertrace_gateway_request_bytes",
			Help:    "Size of OTLP export requests after decompression, in bytes.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 9), // 1 KiB .. 64 MiB
		}, []string{"signal", "transport"}),
		rejectedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_gateway_rejected_records_total",
			Help: "Invalid records (spans, log records, data points) rejected, by signal and reason; the rest of their request may have been accepted (OTLP partial success).",
		}, []string{"signal", "reason"}),
		tenantRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_gateway_tenant_rejected_total",
			Help: "OTLP export requests refused by a per-tenant limit, by tenant and reason (records_per_second, bytes_per_second).",
		}, []string{"tenant", "reason"}),
		inflightBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aftertrace_gateway_inflight_bytes",
			Help: "Bytes of export requests being decoded and published (bounded by MaxInflightBytes).",
		}),
		connRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_gateway_connections_rejected_total",
			Help: "Connections closed before being served, by transport and reason (too_many_connections).",
		}, []string{"transport", "reason"}),
		laneRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aftertrace_gateway_lane_records_total",
			Help: "Records accepted, by signal and bus lane: share (within the tenant's fair share) or bulk (beyond it, or late).",
		}, []string{"signal", "lane"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.rejected, m.records, m.bytes,
		m.rejectedRecords, m.tenantRejected, m.inflightBytes, m.connRejected, m.laneRecords}
}

// register adds the collectors to reg, all or none.
func (m *metrics) register(reg prometheus.Registerer) error {
	var done []prometheus.Collector
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return errors.Join(errors.New("gateway: registering metrics"), err)
		}
		done = append(done, c)
	}
	return nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors() {
		reg.Unregister(c)
	}
}
