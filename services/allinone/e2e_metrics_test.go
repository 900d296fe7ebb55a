package allinone

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// ---- the API's metric answers, as the tests read them ----

type apiMetricName struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Unit        string `json:"unit"`
	Description string `json:"description"`
}

type apiExpBuckets struct {
	Offset       int32    `json:"offset"`
	BucketCounts []uint64 `json:"bucketCounts"`
}

type apiExemplar struct {
	TimeUnixNano       string         `json:"timeUnixNano"`
	Value              any            `json:"value"`
	TraceID            string         `json:"traceId"`
	SpanID             string         `json:"spanId"`
	FilteredAttributes map[string]any `json:"filteredAttributes"`
	SeriesID           string         `json:"seriesId"`
	Labels             map[string]any `json:"labels"`
	Resource           map[string]any `json:"resource"`
}

type apiMetricPoint struct {
	StartTimeUnixNano string         `json:"startTimeUnixNano"`
	TimeUnixNano      string         `json:"timeUnixNano"`
	Flags             uint32         `json:"flags"`
	Value             any            `json:"value"`
	Count             uint64         `json:"count"`
	Sum               *float64       `json:"sum"`
	Min               *float64       `json:"min"`
	Max               *float64       `json:"max"`
	BucketCounts      []uint64       `json:"bucketCounts"`
	ExplicitBounds    []float64      `json:"explicitBounds"`
	Scale             int32          `json:"scale"`
	ZeroCount         uint64         `json:"zeroCount"`
	ZeroThreshold     float64        `json:"zeroThreshold"`
	Positive          *apiExpBuckets `json:"positive"`
	Negative          *apiExpBuckets `json:"negative"`
	QuantileValues    []struct {
		Quantile float64 `json:"quantile"`
		Value    float64 `json:"value"`
	} `json:"quantileValues"`
	Quantile *struct {
		Q     float64  `json:"q"`
		Value *float64 `json:"value"`
	} `json:"quantile"`
	Exemplars []apiExemplar `json:"exemplars"`
}

type apiMetricSeries struct {
	SeriesID    string `json:"seriesId"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	Unit        string `json:"unit"`
	Description string `json:"description"`
	Scope       struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"scope"`
	AggregationTemporality string           `json:"aggregationTemporality"`
	IsMonotonic            bool             `json:"isMonotonic"`
	Labels                 map[string]any   `json:"labels"`
	Resource               map[string]any   `json:"resource"`
	Points                 []apiMetricPoint `json:"points"`
}

type apiList[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor"`
}

// metricWindow is start and end around now, as API parameters.
func metricWindow(from time.Time) url.Values {
	return url.Values{
		"start": {strconv.FormatInt(from.Add(-time.Minute).UnixNano(), 10)},
		"end":   {strconv.FormatInt(time.Now().Add(time.Minute).UnixNano(), 10)},
	}
}

func withParams(base url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// waitSeries polls /api/v1/metrics/series until it answers at least want
// series, each with at least minPoints points.
func (a *testApp) waitSeries(t *testing.T, params url.Values, want, minPoints int) []apiMetricSeries {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var page apiList[apiMetricSeries]
		code := a.getJSON(t, "/api/v1/metrics/series?"+params.Encode(), &page)
		if code != http.StatusOK {
			t.Fatalf("series %s: status %d", params.Encode(), code)
		}
		ok := len(page.Items) >= want
		for _, s := range page.Items {
			ok = ok && len(s.Points) >= minPoints
		}
		if ok {
			return page.Items
		}
		if time.Now().After(deadline) {
			t.Fatalf("series %s: %+v, want %d series of %d+ points", params.Encode(), page.Items, want, minPoints)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// oneSeries waits for exactly one series with one point and returns both.
func (a *testApp) oneSeries(t *testing.T, params url.Values) (apiMetricSeries, apiMetricPoint) {
	t.Helper()
	got := a.waitSeries(t, params, 1, 1)
	if len(got) != 1 || len(got[0].Points) != 1 {
		t.Fatalf("series %s: %+v, want one series with one point", params.Encode(), got)
	}
	return got[0], got[0].Points[0]
}

func (a *testApp) metricNames(t *testing.T, params url.Values) map[string]apiMetricName {
	t.Helper()
	var page apiList[apiMetricName]
	if code := a.getJSON(t, "/api/v1/metrics/names?"+params.Encode(), &page); code != http.StatusOK {
		t.Fatalf("names: status %d", code)
	}
	out := map[string]apiMetricName{}
	for _, n := range page.Items {
		out[n.Name] = n
	}
	return out
}

// waitMetricNames polls /api/v1/metrics/names until every name in want is
// listed (each signal has its own consumer, so names may land later than
// the data a test waited for).
func (a *testApp) waitMetricNames(t *testing.T, params url.Values, want ...string) map[string]apiMetricName {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		names := a.metricNames(t, params)
		missing := ""
		for _, w := range want {
			if _, ok := names[w]; !ok {
				missing = w
			}
		}
		if missing == "" {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s not listed after 20s; got %v", missing, names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postMetrics sends an OTLP/HTTP metrics body to the gateway.
func (a *testApp) postMetrics(t *testing.T, body []byte, contentType string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.Gateway.HTTPAddr()+"/v1/metrics", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/metrics: %d %s", resp.StatusCode, rb)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func sumCounts(c []uint64) uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// TestSDKMetricExporters sends every kind of metric the OTel Go SDK makes
// (gauge, monotonic and up-down sums, explicit and exponential
// histograms) through its gRPC exporter (cumulative temporality) and its
// HTTP exporter (delta temporality), with exemplars from a sampled span
// whose trace is exported too, plus a hand-built summary over OTLP/HTTP
// protobuf, and reads every field back through the API.
func TestSDKMetricExporters(t *testing.T) {
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{})
	headers := map[string]string{"Authorization": "Bearer " + testKey}
	began := time.Now()
	deltaAll := func(sdkmetric.InstrumentKind) metricdata.Temporality { return metricdata.DeltaTemporality }

	cases := []struct {
		name        string
		temporality string
		exp         func(ctx context.Context) (sdkmetric.Exporter, error)
	}{
		{"grpc", "cumulative", func(ctx context.Context) (sdkmetric.Exporter, error) {
			return otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(app.Gateway.GRPCAddr()),
				otlpmetricgrpc.WithInsecure(), otlpmetricgrpc.WithHeaders(headers))
		}},
		{"http", "delta", func(ctx context.Context) (sdkmetric.Exporter, error) {
			return otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(app.Gateway.HTTPAddr()),
				otlpmetrichttp.WithInsecure(), otlpmetrichttp.WithHeaders(headers),
				otlpmetrichttp.WithTemporalitySelector(deltaAll))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			service := "sdk-metrics-" + tc.name
			res := resource.NewSchemaless(attribute.String("service.name", service), attribute.String("k8s.namespace.name", "shop"))

			// A sampled span, exported, for the exemplars to point at.
			texp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(app.Gateway.GRPCAddr()),
				otlptracegrpc.WithInsecure(), otlptracegrpc.WithHeaders(headers))
			if err != nil {
				t.Fatal(err)
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(texp), sdktrace.WithResource(res),
				sdktrace.WithSampler(sdktrace.AlwaysSample()))
			spanCtx, span := tp.Tracer("e2e").Start(ctx, "checkout")
			traceID, spanID := span.SpanContext().TraceID().String(), span.SpanContext().SpanID().String()

			mexp, err := tc.exp(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mp := sdkmetric.NewMeterProvider(
				sdkmetric.WithResource(res),
				sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Hour))),
				sdkmetric.WithExemplarFilter(exemplar.TraceBasedFilter),
				sdkmetric.WithView(sdkmetric.NewView(
					sdkmetric.Instrument{Name: "e2e.size"},
					sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}},
				)),
			)
			meter := mp.Meter("e2e.meter", metric.WithInstrumentationVersion("1.2.3"))
			route := metric.WithAttributes(attribute.String("http.route", "/cart"), attribute.Int("code", 200))

			gauge, _ := meter.Float64Gauge("e2e.temperature", metric.WithUnit("Cel"), metric.WithDescription("room temperature"))
			counter, _ := meter.Int64Counter("e2e.requests", metric.WithUnit("{request}"))
			updown, _ := meter.Float64UpDownCounter("e2e.queue")
			hist, _ := meter.Float64Histogram("e2e.latency", metric.WithUnit("ms"), metric.WithExplicitBucketBoundaries(10, 50, 100))
			exph, _ := meter.Float64Histogram("e2e.size", metric.WithUnit("By"))

			gauge.Record(ctx, 21.5, metric.WithAttributes(attribute.String("room", "a")))
			counter.Add(spanCtx, 2, route) // in the span: an exemplar
			counter.Add(ctx, 1, route)
			updown.Add(ctx, 5)
			updown.Add(ctx, -2.5)
			for _, v := range []float64{5, 20, 30, 70, 200} {
				hist.Record(spanCtx, v, route)
			}
			for _, v := range []float64{1, 2, 4, 8} {
				exph.Record(ctx, v)
			}
			span.End()
			if err := mp.Shutdown(ctx); err != nil {
				t.Fatalf("metric export: %v", err)
			}
			if err := tp.Shutdown(ctx); err != nil {
				t.Fatalf("trace export: %v", err)
			}

			win := withParams(metricWindow(began), "label.service.name", service)

			// Gauge.
			ser, p := app.oneSeries(t, withParams(win, "name", "e2e.temperature"))
			mustEqual(t, "gauge type", ser.Type, "gauge")
			mustEqual(t, "gauge unit", ser.Unit, "Cel")
			mustEqual(t, "gauge description", ser.Description, "room temperature")
			mustEqual(t, "gauge temporality", ser.AggregationTemporality, "unspecified")
			mustEqual(t, "gauge value", p.Value, any(21.5))
			mustEqual(t, "gauge label", ser.Labels["room"], any("a"))
			mustEqual(t, "scope", ser.Scope.Name, "e2e.meter")
			mustEqual(t, "scope version", ser.Scope.Version, "1.2.3")
			mustEqual(t, "resource namespace", ser.Resource["k8s.namespace.name"], any("shop"))
			if len(ser.SeriesID) != 16 || !lowerHex(ser.SeriesID) {
				t.Errorf("seriesId %q", ser.SeriesID)
			}

			// Monotonic counter, with the exemplar of the span.
			ser, p = app.oneSeries(t, withParams(win, "name", "e2e.requests", "label.http.route", "/cart", "label.code", "200"))
			mustEqual(t, "counter type", ser.Type, "sum")
			mustEqual(t, "counter monotonic", ser.IsMonotonic, true)
			mustEqual(t, "counter temporality", ser.AggregationTemporality, tc.temporality)
			mustEqual(t, "counter value", p.Value, any(float64(3)))
			mustEqual(t, "counter unit", ser.Unit, "{request}")
			if p.StartTimeUnixNano == "" || p.StartTimeUnixNano == "0" || p.StartTimeUnixNano > p.TimeUnixNano {
				t.Errorf("counter start %s time %s", p.StartTimeUnixNano, p.TimeUnixNano)
			}
			if len(p.Exemplars) != 1 || p.Exemplars[0].TraceID != traceID || p.Exemplars[0].SpanID != spanID || p.Exemplars[0].Value != any(float64(2)) {
				t.Errorf("counter exemplars %+v, want one of value 2 in trace %s span %s", p.Exemplars, traceID, spanID)
			}

			// Up-down counter.
			ser, p = app.oneSeries(t, withParams(win, "name", "e2e.queue"))
			mustEqual(t, "updown type", ser.Type, "sum")
			mustEqual(t, "updown monotonic", ser.IsMonotonic, false)
			mustEqual(t, "updown temporality", ser.AggregationTemporality, tc.temporality)
			mustEqual(t, "updown value", p.Value, any(2.5))

			// Explicit bucket histogram, with p99.
			ser, p = app.oneSeries(t, withParams(win, "name", "e2e.latency", "quantile", "0.99"))
			mustEqual(t, "histogram type", ser.Type, "histogram")
			mustEqual(t, "histogram temporality", ser.AggregationTemporality, tc.temporality)
			mustEqual(t, "histogram count", p.Count, 5)
			mustEqual(t, "histogram bounds", fmt.Sprint(p.ExplicitBounds), "[10 50 100]")
			mustEqual(t, "histogram buckets", fmt.Sprint(p.BucketCounts), "[1 2 1 1]")
			if p.Sum == nil || *p.Sum != 325 || p.Min == nil || *p.Min != 5 || p.Max == nil || *p.Max != 200 {
				t.Errorf("histogram sum/min/max %v %v %v", p.Sum, p.Min, p.Max)
			}
			// rank 4.95 of 5 is in (100, +Inf), bounded by max 200: 100 + 100·0.95.
			if p.Quantile == nil || p.Quantile.Q != 0.99 || p.Quantile.Value == nil || !near(*p.Quantile.Value, 195) {
				t.Errorf("histogram p99 %+v, want 195", p.Quantile)
			}
			if len(p.Exemplars) == 0 {
				t.Error("histogram has no exemplars")
			}
			for _, e := range p.Exemplars {
				if e.TraceID != traceID || e.SpanID != spanID {
					t.Errorf("histogram exemplar %+v not in trace %s", e, traceID)
				}
			}

			// Exponential histogram: 1, 2, 4, 8 fit 160 buckets at scale 5
			// (index of 2^k is 32k-1: from -1 to 95).
			ser, p = app.oneSeries(t, withParams(win, "name", "e2e.size", "quantile", "0.5"))
			mustEqual(t, "exphist type", ser.Type, "exponentialHistogram")
			mustEqual(t, "exphist temporality", ser.AggregationTemporality, tc.temporality)
			mustEqual(t, "exphist count", p.Count, 4)
			mustEqual(t, "exphist scale", p.Scale, 5)
			mustEqual(t, "exphist zero count", p.ZeroCount, 0)
			if p.Sum == nil || *p.Sum != 15 || p.Min == nil || *p.Min != 1 || p.Max == nil || *p.Max != 8 {
				t.Errorf("exphist sum/min/max %v %v %v", p.Sum, p.Min, p.Max)
			}
			if p.Positive == nil || p.Positive.Offset != -1 || len(p.Positive.BucketCounts) != 97 || sumCounts(p.Positive.BucketCounts) != 4 ||
				p.Positive.BucketCounts[0] != 1 || p.Positive.BucketCounts[32] != 1 || p.Positive.BucketCounts[64] != 1 || p.Positive.BucketCounts[96] != 1 {
				t.Errorf("exphist positive %+v", p.Positive)
			}
			if p.Negative == nil || len(p.Negative.BucketCounts) != 0 {
				t.Errorf("exphist negative %+v", p.Negative)
			}
			// rank 2 ends the bucket (2^(31/32), 2]: the p50 is 2.
			if p.Quantile == nil || p.Quantile.Value == nil || !near(*p.Quantile.Value, 2) {
				t.Errorf("exphist p50 %+v, want 2", p.Quantile)
			}

			// The exemplar leads to the span's trace.
			var exs apiList[apiExemplar]
			deadline := time.Now().Add(10 * time.Second)
			for {
				exs = apiList[apiExemplar]{}
				app.getJSON(t, "/api/v1/metrics/exemplars?"+withParams(metricWindow(began), "name", "e2e.requests").Encode(), &exs)
				if len(exs.Items) > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			found := false
			for _, e := range exs.Items {
				if e.Resource["service.name"] == service {
					found = true
					mustEqual(t, "exemplar traceId", e.TraceID, traceID)
					mustEqual(t, "exemplar spanId", e.SpanID, spanID)
					mustEqual(t, "exemplar label", e.Labels["http.route"], any("/cart"))
				}
			}
			if !found {
				t.Fatalf("no exemplar of %s in %+v", service, exs.Items)
			}
			tr := app.waitTrace(t, traceID, 1, 15*time.Second)
			mustEqual(t, "exemplar trace span", tr.Spans[0].SpanID, spanID)

			names := app.waitMetricNames(t, metricWindow(began), "e2e.temperature", "e2e.requests", "e2e.queue", "e2e.latency", "e2e.size")
			for name, typ := range map[string]string{"e2e.temperature": "gauge", "e2e.requests": "sum", "e2e.queue": "sum",
				"e2e.latency": "histogram", "e2e.size": "exponentialHistogram"} {
				mustEqual(t, "names "+name, names[name].Type, typ)
			}
		})
	}

	t.Run("summary", func(t *testing.T) {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "summary-svc")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("e2e.rpc.duration")
		m.SetUnit("s")
		m.SetDescription("RPC latency")
		p := m.SetEmptySummary().DataPoints().AppendEmpty()
		p.SetStartTimestamp(pcommon.NewTimestampFromTime(began.Add(-time.Minute)))
		p.SetTimestamp(pcommon.NewTimestampFromTime(began))
		p.SetCount(100)
		p.SetSum(12.5)
		p.Attributes().PutStr("rpc.method", "Get")
		for _, qv := range [][2]float64{{0, 0.01}, {0.5, 0.1}, {0.99, 0.9}, {1, 1.5}} {
			v := p.QuantileValues().AppendEmpty()
			v.SetQuantile(qv[0])
			v.SetValue(qv[1])
		}
		body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		app.postMetrics(t, body, "application/x-protobuf")

		ser, pt := app.oneSeries(t, withParams(metricWindow(began), "name", "e2e.rpc.duration", "quantile", "0.99"))
		mustEqual(t, "summary type", ser.Type, "summary")
		mustEqual(t, "summary unit", ser.Unit, "s")
		mustEqual(t, "summary label", ser.Labels["rpc.method"], any("Get"))
		mustEqual(t, "summary count", pt.Count, 100)
		mustEqual(t, "summary start", pt.StartTimeUnixNano, strconv.FormatInt(began.Add(-time.Minute).UnixNano(), 10))
		if pt.Sum == nil || *pt.Sum != 12.5 {
			t.Errorf("summary sum %v", pt.Sum)
		}
		mustEqual(t, "summary quantiles", fmt.Sprint(pt.QuantileValues), "[{0 0.01} {0.5 0.1} {0.99 0.9} {1 1.5}]")
		if pt.Quantile == nil || pt.Quantile.Value == nil || *pt.Quantile.Value != 0.9 {
			t.Errorf("summary p99 %+v", pt.Quantile)
		}
	})
}

// TestTelemetrygenMetrics sends every metric type telemetrygen v0.161.0
// makes over gRPC and HTTP, with an exemplar trace id, and reads them back.
func TestTelemetrygenMetrics(t *testing.T) {
	bin := telemetrygen(t)
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{})
	began := time.Now()
	const points = 5
	const traceID, spanID = "ae87dadd90e9935a4bc9660628efd569", "5828fa4960140870"
	types := map[string]string{"Gauge": "gauge", "Sum": "sum", "Histogram": "histogram", "ExponentialHistogram": "exponentialHistogram"}

	for _, transport := range []string{"grpc", "http"} {
		for tgType, apiType := range types {
			t.Run(transport+"/"+tgType, func(t *testing.T) {
				service := "tgen-metrics-" + transport
				name := "tgen." + transport + "." + tgType
				args := []string{"metrics",
					"--otlp-insecure",
					"--otlp-header", `Authorization="Bearer ` + testKey + `"`,
					"--metrics", strconv.Itoa(points), "--workers", "1", "--rate", "0",
					"--metric-type", tgType, "--otlp-metric-name", name,
					"--service", service,
					"--telemetry-attributes", `host.name="h1"`,
					"--trace-id", traceID, "--span-id", spanID,
				}
				if transport == "http" {
					args = append(args, "--otlp-http", "--otlp-endpoint", app.Gateway.HTTPAddr())
				} else {
					args = append(args, "--otlp-endpoint", app.Gateway.GRPCAddr())
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
					t.Fatalf("telemetrygen: %v\n%s", err, out)
				}
				got := app.waitSeries(t, withParams(metricWindow(began), "name", name, "label.service.name", service, "label.host.name", "h1"), 1, points)
				if len(got) != 1 {
					t.Fatalf("%d series, want 1", len(got))
				}
				total := 0
				for _, s := range got {
					mustEqual(t, "type", s.Type, apiType)
					total += len(s.Points)
					for _, p := range s.Points {
						if len(p.Exemplars) == 0 {
							t.Errorf("point without exemplar %+v", p)
						}
						for _, e := range p.Exemplars {
							mustEqual(t, "exemplar trace", e.TraceID, traceID)
							mustEqual(t, "exemplar span", e.SpanID, spanID)
						}
						switch apiType {
						case "histogram":
							if p.Count == 0 || uint64(len(p.BucketCounts)) != uint64(len(p.ExplicitBounds))+1 || sumCounts(p.BucketCounts) != p.Count {
								t.Errorf("histogram point %+v", p)
							}
						case "exponentialHistogram":
							if p.Count == 0 || p.Positive == nil || p.ZeroCount+sumCounts(p.Positive.BucketCounts)+sumCounts(p.Negative.BucketCounts) != p.Count {
								t.Errorf("exponential histogram point %+v", p)
							}
						default:
							if p.Value == nil {
								t.Errorf("point without value %+v", p)
							}
						}
					}
				}
				if total != points {
					t.Errorf("%d points, want %d", total, points)
				}
				var exs apiList[apiExemplar]
				app.getJSON(t, "/api/v1/metrics/exemplars?"+withParams(metricWindow(began), "name", name).Encode(), &exs)
				if len(exs.Items) != points {
					t.Errorf("%d exemplars, want %d", len(exs.Items), points)
				}
				for _, e := range exs.Items {
					if e.TraceID != traceID || e.SpanID != spanID || e.Resource["service.name"] != service {
						t.Errorf("exemplar %+v", e)
					}
				}
			})
		}
	}
	var wantNames []string
	for _, transport := range []string{"grpc", "http"} {
		for tgType := range types {
			wantNames = append(wantNames, "tgen."+transport+"."+tgType)
		}
	}
	names := app.waitMetricNames(t, metricWindow(began), wantNames...)
	for _, transport := range []string{"grpc", "http"} {
		for tgType, apiType := range types {
			mustEqual(t, "names type", names["tgen."+transport+"."+tgType].Type, apiType)
		}
	}
}

// TestMetricsFixtureJSON posts the OTLP/JSON metrics example of
// opentelemetry-proto and reads every metric back.
func TestMetricsFixtureJSON(t *testing.T) {
	body, err := os.ReadFile("../../../shared/fixtures/otlp/metrics.json")
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{})
	app.postMetrics(t, body, "application/json")

	const ts = "1544712660300000000"
	win := url.Values{"start": {"2018-12-13T14:50:00Z"}, "end": {"2018-12-13T14:52:00Z"}}

	ser, p := app.oneSeries(t, withParams(win, "name", "my.counter"))
	mustEqual(t, "counter type", ser.Type, "sum")
	mustEqual(t, "counter monotonic", ser.IsMonotonic, true)
	mustEqual(t, "counter temporality", ser.AggregationTemporality, "delta")
	mustEqual(t, "counter value", p.Value, any(float64(5)))
	mustEqual(t, "counter time", p.TimeUnixNano, ts)
	mustEqual(t, "counter start", p.StartTimeUnixNano, ts)
	mustEqual(t, "counter attr", ser.Labels["my.counter.attr"], any("some value"))
	mustEqual(t, "counter unit", ser.Unit, "1")
	mustEqual(t, "counter description", ser.Description, "I am a Counter")
	mustEqual(t, "service", ser.Resource["service.name"], any("my.service"))
	mustEqual(t, "scope", ser.Scope.Name, "my.library")
	mustEqual(t, "scope version", ser.Scope.Version, "1.0.0")

	ser, p = app.oneSeries(t, withParams(win, "name", "my.gauge"))
	mustEqual(t, "gauge type", ser.Type, "gauge")
	mustEqual(t, "gauge value", p.Value, any(float64(10)))
	mustEqual(t, "gauge attr", ser.Labels["my.gauge.attr"], any("some value"))

	ser, p = app.oneSeries(t, withParams(win, "name", "my.histogram", "quantile", "0.5"))
	mustEqual(t, "histogram type", ser.Type, "histogram")
	mustEqual(t, "histogram temporality", ser.AggregationTemporality, "delta")
	mustEqual(t, "histogram count", p.Count, 2)
	mustEqual(t, "histogram buckets", fmt.Sprint(p.BucketCounts), "[1 1]")
	mustEqual(t, "histogram bounds", fmt.Sprint(p.ExplicitBounds), "[1]")
	if p.Sum == nil || *p.Sum != 2 || p.Min == nil || *p.Min != 0 || p.Max == nil || *p.Max != 2 {
		t.Errorf("histogram sum/min/max %v %v %v", p.Sum, p.Min, p.Max)
	}
	// rank 1 ends the first bucket [min 0, 1].
	if p.Quantile == nil || p.Quantile.Value == nil || *p.Quantile.Value != 1 {
		t.Errorf("histogram p50 %+v", p.Quantile)
	}

	ser, p = app.oneSeries(t, withParams(win, "name", "my.exponential.histogram"))
	mustEqual(t, "exphist type", ser.Type, "exponentialHistogram")
	mustEqual(t, "exphist count", p.Count, 3)
	mustEqual(t, "exphist scale", p.Scale, 0)
	mustEqual(t, "exphist zero count", p.ZeroCount, 1)
	if p.Positive == nil || p.Positive.Offset != 1 || fmt.Sprint(p.Positive.BucketCounts) != "[0 2]" {
		t.Errorf("exphist positive %+v", p.Positive)
	}
	if p.Sum == nil || *p.Sum != 10 || p.Min == nil || *p.Min != 0 || p.Max == nil || *p.Max != 5 {
		t.Errorf("exphist sum/min/max %v %v %v", p.Sum, p.Min, p.Max)
	}

	names := app.waitMetricNames(t, win, "my.counter", "my.gauge", "my.histogram", "my.exponential.histogram")
	for name, typ := range map[string]string{"my.counter": "sum", "my.gauge": "gauge", "my.histogram": "histogram",
		"my.exponential.histogram": "exponentialHistogram"} {
		got := names[name]
		mustEqual(t, "names "+name, got.Type, typ)
		mustEqual(t, "names unit "+name, got.Unit, "1")
	}
	mustEqual(t, "names description", names["my.gauge"].Description, "I am a Gauge")
}
