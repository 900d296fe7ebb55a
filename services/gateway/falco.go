package gateway

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/events"
)

// FalcoPath is where Falco's http_output and falcosidekick's webhook post
// alerts.
const FalcoPath = "/ingest/falco"

// falcoSignal is the metrics label of the Falco endpoint.
const falcoSignal = "falco"

// EventPublisher stores normalized container events (implemented by
// bus.Publisher): nil only after JetStream acknowledged them, an apperr of
// KindUnavailable when the bus is down.
type EventPublisher interface {
	PublishEvents(ctx context.Context, tenantID string, evs []events.Event) error
}

// falcoHandler serves POST /ingest/falco: the same authentication, load
// shedding, body limits (raw and after gzip), per-tenant rate limits and
// durability as OTLP/HTTP. Each alert counts as one record. The answer is
// 200 {"accepted": n} only after the bus acknowledged the events; bad
// input is a 400 naming the reason and the record.
func falcoHandler(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		x := &httpExchange{s: s, w: w, r: r, signal: falcoSignal, enc: encJSON}
		if r.Method != http.MethodPost {
			x.w.Header().Set("Allow", http.MethodPost)
			apperr.WriteHTTP(x.w, apperr.New(apperr.KindMethodNotAllowed,
				"method %s not allowed: Falco alerts are posted", r.Method))
			x.count(http.StatusMethodNotAllowed, reasonMethodNotAllowed)
			return
		}
		if err := falcoContentType(r.Header.Get("Content-Type")); err != nil {
			x.reject(reasonBadContentType, err)
			return
		}
		gz, err := parseContentEncoding(r.Header.Get("Content-Encoding"))
		if err != nil {
			x.reject(reasonBadEncoding, err)
			return
		}
		tenant, body, done, ok := x.admit(gz)
		if !ok {
			return
		}
		defer done()
		size := len(body)
		pub, ok := s.pub.(EventPublisher)
		if !ok {
			x.reject(reasonUnavailable, apperr.New(apperr.KindUnavailable, "event ingest is not available on this gateway"))
			return
		}

		evs, err := events.ParseFalco(tenant.ID, body, time.Now())
		if err != nil {
			msg := clipDecodeError(err)
			x.reject(falcoReason(msg), apperr.New(apperr.KindInvalid, "invalid Falco alert body: %s", msg))
			return
		}
		var rj rejects
		evs = filterEvents(evs, s.recordWindow(tenant.ID, time.Now()), &rj)
		rj.count(s.metrics.rejectedRecords, falcoSignal)
		if len(evs) == 0 {
			x.reject(rj.reason(), apperr.New(apperr.KindInvalid, "%s", rj.message("alert")))
			return
		}
		if err := s.allowTenant(tenant.ID, len(evs), size); err != nil {
			x.reject(reasonRateLimited, err)
			return
		}
		pctx, cancel := context.WithTimeout(s.lane(r.Context(), falcoSignal, tenant.ID, len(evs), rj.oldest), s.cfg.PublishTimeout)
		defer cancel()
		if err := pub.PublishEvents(pctx, tenant.ID, evs); err != nil {
			reason, err := publishReason(r.Context(), pctx, err)
			x.reject(reason, err)
			return
		}
		s.metrics.records.WithLabelValues(falcoSignal).Add(float64(len(evs)))
		answer := map[string]any{"accepted": len(evs)}
		if rj.n > 0 {
			answer["rejected"], answer["message"] = rj.n, rj.message("alert")
		}
		resp, _ := json.Marshal(answer)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(resp)
		s.metrics.requests.WithLabelValues(falcoSignal, transportHTTP, "200").Inc()
		s.logAccepted(r.Context(), falcoSignal, transportHTTP, tenant.ID, exported{accepted: len(evs), rejected: rj.n, msg: rj.message("alert")}, size, start)
	})
}

// filterEvents keeps the events whose time is inside w, in place.
func filterEvents(evs []events.Event, w window, rj *rejects) []events.Event {
	kept := evs[:0]
	for i, ev := range evs {
		if reason, problem := rj.check(w, ev.TimeUnixNano); reason != "" {
			rj.add(reason, 1, "alerts["+strconv.Itoa(i)+"].time", problem)
			continue
		}
		kept = append(kept, ev)
	}
	return kept
}

// Reasons a Falco body is rejected (values of the reason label).
const (
	reasonFalcoMissingField = "missing_field" // time, rule or priority absent
	reasonFalcoBadField     = "bad_field"     // a field of the wrong type or value
	reasonFalcoTooMany      = "too_many_records"
)

// falcoReason classifies a ParseFalco error for the reason label.
func falcoReason(msg string) string {
	switch {
	case strings.Contains(msg, ": missing"):
		return reasonFalcoMissingField
	case strings.Contains(msg, "too many alerts"):
		return reasonFalcoTooMany
	case strings.Contains(msg, "field "):
		return reasonFalcoBadField
	}
	return reasonMalformed
}

// falcoContentType accepts JSON and NDJSON media types (and none: Falco's
// http_output sets application/json, curl users often forget it).
func falcoContentType(v string) error {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(v)
	if err == nil {
		switch mt {
		case "application/json", "application/x-ndjson", "application/ndjson", "application/jsonl",
			"application/x-json-stream", "text/plain":
			return nil
		}
	}
	return apperr.New(apperr.KindUnsupportedMedia,
		"unsupported Content-Type header %s: use application/json (one alert or an array) or application/x-ndjson",
		strconv.Quote(falcoTruncate(v, 100)))
}

func falcoTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
