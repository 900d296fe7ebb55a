package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/aftertrace/aftertrace/loadtest/loadgen"
)

// OverloadResult is the gateway under ~10× more load than its tenant limit
// admits: it must shed with 429 / RESOURCE_EXHAUSTED and keep its memory
// bounded.
type OverloadResult struct {
	LimitSpansPerSec float64
	OfferedPerSec    float64 // spans/s offered (accepted + shed, estimated from requests)
	AcceptedPerSec   float64
	ShedRequests     int64
	OKRequests       int64
	PeakRSS          int64
	Elapsed          time.Duration
}

// Factor is offered ÷ limit.
func (r OverloadResult) Factor() float64 {
	if r.LimitSpansPerSec == 0 {
		return 0
	}
	return r.OfferedPerSec / r.LimitSpansPerSec
}

// Overload starts a gateway-only aftertrace whose tenant may ingest
// limit spans/s, then offers factor × limit spans/s for d.
func Overload(ctx context.Context, o CompareOptions, limit, factor float64, connections int, d time.Duration) (OverloadResult, error) {
	r := OverloadResult{LimitSpansPerSec: limit}
	lim := strconv.FormatFloat(limit, 'f', 0, 64)
	// the default burst (200k records) would absorb the whole test
	s, err := startGateway(ctx, o, "aftertrace gateway (overload)", "overload",
		"--tenant-records-per-second", lim, "--tenant-records-burst", lim)
	if err != nil {
		return r, err
	}
	defer s.stop()
	// Our open-loop load generator, not telemetrygen: telemetrygen's SDK
	// batch processor drops spans client-side when exports are slow, so
	// it cannot offer a fixed overload.
	rc := loadgen.DefaultRunConfig()
	rc.Model = modelConfig(1)
	rc.Transport, rc.Endpoint, rc.Key = "grpc", s.grpcAddr, benchKey
	rc.Rate, rc.Duration, rc.Connections = limit*factor, d, connections
	rc.Progress = nil
	st, err := loadgen.Run(ctx, rc)
	r.Elapsed = st.Elapsed
	r.PeakRSS = peakRSS(s.cmd.Process.Pid)
	if err != nil {
		return r, fmt.Errorf("overload load: %w", err)
	}
	fams, err := scrape(ctx, "http://"+s.opsAddr+"/metrics")
	if err != nil {
		return r, err
	}
	for _, m := range fams["aftertrace_gateway_requests_total"].GetMetric() {
		switch label(m, "code") {
		case "OK", "200":
			r.OKRequests += int64(m.GetCounter().GetValue())
		case "ResourceExhausted", "RESOURCE_EXHAUSTED", "429":
			r.ShedRequests += int64(m.GetCounter().GetValue())
		}
	}
	secs := r.Elapsed.Seconds()
	r.OfferedPerSec = float64(st.SentSpans) / secs
	r.AcceptedPerSec = sumMetric(fams["aftertrace_gateway_records_total"], map[string]string{"signal": "traces"}) / secs
	return r, nil
}

func scrape(ctx context.Context, u string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", u, err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func sumMetric(f *dto.MetricFamily, match map[string]string) float64 {
	var v float64
	for _, m := range f.GetMetric() {
		ok := true
		for k, want := range match {
			if label(m, k) != want {
				ok = false
			}
		}
		if ok {
			v += m.GetCounter().GetValue()
		}
	}
	return v
}
