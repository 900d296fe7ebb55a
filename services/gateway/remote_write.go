package gateway

import (
	"context"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/snappy"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/promconv"
)

// RemoteWritePath receives Prometheus remote-write 1.0 on the OTLP/HTTP
// listener.
const RemoteWritePath = "/api/v1/push"

// remoteWriteSignal labels remote-write in the gateway's metrics and logs;
// its samples are stored as OTLP metric points.
var remoteWriteSignal = signal[pmetricotlp.ExportRequest]{name: "prometheus", unit: "sample"}

// remoteWriteHandler serves POST /api/v1/push: a snappy-compressed
// prompb.WriteRequest, with the same authentication, load shedding, body
// limits (as sent and after decompression), time window, per-tenant rate
// limits and durability as OTLP/HTTP; the samples take the OTLP metrics
// path (promconv). 204 once the bus acknowledged every sample; 200 with a
// text message when some were refused (outside the window) and the rest
// stored; 400 for a body Prometheus must not retry, 429/503 with
// Retry-After for one it should.
func remoteWriteHandler(s *Service) http.Handler {
	sig := &remoteWriteSignal
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		x := &httpExchange{s: s, w: w, r: r, signal: sig.name, enc: encJSON}
		if r.Method != http.MethodPost {
			x.w.Header().Set("Allow", http.MethodPost)
			apperr.WriteHTTP(x.w, apperr.New(apperr.KindMethodNotAllowed,
				"method %s not allowed: remote-write requests are posted", r.Method))
			x.count(http.StatusMethodNotAllowed, reasonMethodNotAllowed)
			return
		}
		if err := remoteWriteContentType(r.Header.Get("Content-Type")); err != nil {
			x.reject(reasonBadContentType, err)
			return
		}
		if ce := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); ce != "snappy" {
			x.reject(reasonBadEncoding, apperr.New(apperr.KindUnsupportedMedia,
				"unsupported Content-Encoding header %.100q: remote-write bodies are snappy-compressed (Content-Encoding: snappy)", ce))
			return
		}
		tenant, compressed, done, ok := x.admit(false)
		if !ok {
			return
		}
		defer done()
		size := len(compressed)
		n, err := snappy.DecodedLen(compressed)
		if err != nil {
			x.reject(reasonBadEncoding, apperr.New(apperr.KindInvalid, "invalid snappy body (Content-Encoding: snappy): %v", err))
			return
		}
		if int64(n) > s.cfg.MaxRequestBytes { // checked before allocating: a snappy bomb costs nothing
			x.reject(reasonTooLarge, apperr.New(apperr.KindTooLarge,
				"request body exceeds the limit of %d bytes after snappy decompression", s.cfg.MaxRequestBytes))
			return
		}
		releaseBytes, err := s.bytes.reserve(int64(n)) // the decoded body, beside the compressed one
		if err != nil {
			x.reject(reasonInflightBytes, err)
			return
		}
		defer releaseBytes()
		body, err := snappy.Decode(nil, compressed)
		if err != nil {
			x.reject(reasonBadEncoding, apperr.New(apperr.KindInvalid, "invalid snappy body (Content-Encoding: snappy): %v", err))
			return
		}
		md, err := decodeRemoteWrite(body)
		if err != nil {
			x.reject(reasonMalformed, err)
			return
		}
		req := pmetricotlp.NewExportRequestFromMetrics(md)
		var rj rejects
		filterMetrics(req, s.recordWindow(tenant.ID, time.Now()), &rj)
		rj.count(s.metrics.rejectedRecords, sig.name)
		res := exported{accepted: md.DataPointCount(), rejected: rj.n, msg: rj.message(sig.unit), oldest: rj.oldest}
		if res.accepted == 0 && res.rejected > 0 {
			x.reject(rj.reason(), apperr.New(apperr.KindInvalid, "%s", res.msg))
			return
		}
		res, reason, err := publishAccepted(r.Context(), s, sig, tenant.ID, res, size, func(ctx context.Context) error {
			return s.pub.PublishMetrics(ctx, tenant.ID, md)
		})
		if err != nil {
			x.reject(reason, err)
			return
		}
		code := http.StatusNoContent
		if res.rejected > 0 {
			code = http.StatusOK
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(code)
			_, _ = w.Write([]byte(res.msg + "\n"))
		} else {
			w.WriteHeader(code)
		}
		s.metrics.requests.WithLabelValues(sig.name, transportHTTP, strconv.Itoa(code)).Inc()
		s.logAccepted(r.Context(), sig.name, transportHTTP, tenant.ID, res, size, start)
	})
}

// decodeRemoteWrite turns a decompressed remote-write body into metrics;
// errors are KindInvalid and say what is wrong.
func decodeRemoteWrite(body []byte) (pmetric.Metrics, error) {
	md := pmetric.NewMetrics()
	wr, err := promconv.DecodeWriteRequest(body)
	if err == nil {
		err = promconv.AppendWriteRequest(wr, md)
	}
	if err != nil {
		return md, apperr.New(apperr.KindInvalid, "invalid remote-write body: %s", clipDecodeError(err))
	}
	return md, nil
}

// remoteWriteContentType accepts application/x-protobuf (remote-write
// 1.0; a proto parameter, when given, must name its message).
func remoteWriteContentType(v string) error {
	mt, params, err := mime.ParseMediaType(v)
	if err == nil && mt == "application/x-protobuf" {
		if p := params["proto"]; p == "" || p == "prometheus.WriteRequest" {
			return nil
		}
		return apperr.New(apperr.KindUnsupportedMedia,
			"unsupported remote-write message %.100q: this endpoint takes remote-write 1.0 (prometheus.WriteRequest)", params["proto"])
	}
	return apperr.New(apperr.KindUnsupportedMedia,
		"unsupported Content-Type header %.100q: remote-write uses application/x-protobuf", v)
}
