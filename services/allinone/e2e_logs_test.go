package allinone

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// apiLog is the API's log record, as the tests read it.
type apiLog struct {
	RecordID             string         `json:"recordId"`
	TimeUnixNano         string         `json:"timeUnixNano"`
	ObservedTimeUnixNano string         `json:"observedTimeUnixNano"`
	SeverityNumber       int            `json:"severityNumber"`
	SeverityText         string         `json:"severityText"`
	Body                 any            `json:"body"`
	TraceID              string         `json:"traceId"`
	SpanID               string         `json:"spanId"`
	Flags                uint32         `json:"flags"`
	EventName            string         `json:"eventName"`
	Service              string         `json:"service"`
	Attributes           map[string]any `json:"attributes"`
	Resource             map[string]any `json:"resource"`
	Scope                apiScope       `json:"scope"`
}

type apiScope struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type apiLogPage struct {
	Items      []apiLog `json:"items"`
	NextCursor string   `json:"nextCursor"`
}

// logs GETs /api/v1/logs with params and fails on a non-200 answer.
func (a *testApp) logs(t *testing.T, params url.Values) apiLogPage {
	t.Helper()
	var page apiLogPage
	if code := a.getJSON(t, "/api/v1/logs?"+params.Encode(), &page); code != http.StatusOK {
		t.Fatalf("GET /api/v1/logs?%s: status %d", params.Encode(), code)
	}
	return page
}

// waitLogs polls /api/v1/logs with params until it answers want records.
func (a *testApp) waitLogs(t *testing.T, params url.Values, want int, within time.Duration) []apiLog {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		page := a.logs(t, params)
		if len(page.Items) >= want {
			if len(page.Items) > want {
				t.Fatalf("logs %s: %d records, want %d (duplicates visible?)", params.Encode(), len(page.Items), want)
			}
			return page.Items
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs %s: %d records after %v, want %d", params.Encode(), len(page.Items), within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pollLogCount polls /api/v1/logs until it answers want records or within
// passes, and returns the last count.
func (a *testApp) pollLogCount(t *testing.T, params url.Values, want int, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := len(a.logs(t, params).Items)
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// params builds query parameters from key, value pairs.
func params(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// TestSDKLogExporters sends log records through the OTel Go SDK log
// exporters (gRPC and HTTP) and reads them back with every field intact;
// the filters and pagination of /api/v1/logs work on them.
func TestSDKLogExporters(t *testing.T) {
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{})
	headers := map[string]string{"Authorization": "Bearer " + testKey}
	const n = 5

	cases := []struct {
		name string
		exp  func(ctx context.Context) (sdklog.Exporter, error)
	}{
		{"grpc", func(ctx context.Context) (sdklog.Exporter, error) {
			return otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(app.Gateway.GRPCAddr()),
				otlploggrpc.WithInsecure(), otlploggrpc.WithHeaders(headers))
		}},
		{"grpc-gzip", func(ctx context.Context) (sdklog.Exporter, error) {
			return otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(app.Gateway.GRPCAddr()),
				otlploggrpc.WithInsecure(), otlploggrpc.WithHeaders(headers), otlploggrpc.WithCompressor("gzip"))
		}},
		{"http", func(ctx context.Context) (sdklog.Exporter, error) {
			return otlploghttp.New(ctx, otlploghttp.WithEndpoint(app.Gateway.HTTPAddr()),
				otlploghttp.WithInsecure(), otlploghttp.WithHeaders(headers))
		}},
		{"http-gzip", func(ctx context.Context) (sdklog.Exporter, error) {
			return otlploghttp.New(ctx, otlploghttp.WithEndpoint(app.Gateway.HTTPAddr()),
				otlploghttp.WithInsecure(), otlploghttp.WithHeaders(headers),
				otlploghttp.WithCompression(otlploghttp.GzipCompression))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			exp, err := tc.exp(ctx)
			if err != nil {
				t.Fatal(err)
			}
			service := "sdklog-" + tc.name
			attrs := []attribute.KeyValue{attribute.String("service.name", service)}
			for k, v := range k8sResource {
				attrs = append(attrs, attribute.String(k, v))
			}
			lp := sdklog.NewLoggerProvider(
				sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)),
				sdklog.WithResource(resource.NewSchemaless(attrs...)),
			)
			logger := lp.Logger("e2e", otellog.WithInstrumentationVersion("1.2.3"))

			traceID, spanID := newTraceID(), newTraceID()
			sc := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID(traceID), SpanID: trace.SpanID(spanID[:8]), TraceFlags: trace.FlagsSampled,
			})
			tctx := trace.ContextWithSpanContext(ctx, sc)
			base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
			for i := range n {
				var r otellog.Record
				r.SetTimestamp(base.Add(time.Duration(i) * time.Millisecond))
				r.SetObservedTimestamp(base.Add(time.Second))
				if i%2 == 0 {
					r.SetSeverity(otellog.SeverityError)
					r.SetSeverityText("ERROR")
				} else {
					r.SetSeverity(otellog.SeverityInfo)
					r.SetSeverityText("INFO")
				}
				r.SetBody(attribute.StringValue(fmt.Sprintf("order o-%d failed: it's \"odd\" \\ ü", i)))
				if i == n-1 {
					r.SetBody(attribute.MapValue(attribute.String("order", "o-4"), attribute.Int("items", 2)))
					r.SetEventName("order.failed")
				}
				r.AddAttributes(
					attribute.Int("i", i),
					attribute.String("order.id", fmt.Sprintf("o-%d", i)),
					attribute.Bool("retry", true),
					attribute.Float64("ratio", 0.25),
					attribute.StringSlice("tags", []string{"a", "b"}),
				)
				logger.Emit(tctx, r)
			}
			if err := lp.Shutdown(ctx); err != nil {
				t.Fatalf("export: %v", err)
			}

			tid, sid := sc.TraceID().String(), sc.SpanID().String()
			got := app.waitLogs(t, params("service", service, "limit", "100"), n, 20*time.Second)
			for j, l := range got {
				i := n - 1 - j // newest first
				mustEqual(t, "time", l.TimeUnixNano, fmt.Sprint(base.Add(time.Duration(i)*time.Millisecond).UnixNano()))
				mustEqual(t, "observed", l.ObservedTimeUnixNano, fmt.Sprint(base.Add(time.Second).UnixNano()))
				mustEqual(t, "traceId", l.TraceID, tid)
				mustEqual(t, "spanId", l.SpanID, sid)
				mustEqual(t, "flags", l.Flags, uint32(1))
				mustEqual(t, "service", l.Service, service)
				mustEqual(t, "scope", l.Scope, apiScope{Name: "e2e", Version: "1.2.3"})
				mustEqual(t, "attr i", l.Attributes["i"], any(float64(i)))
				mustEqual(t, "attr order.id", l.Attributes["order.id"], any(fmt.Sprintf("o-%d", i)))
				mustEqual(t, "attr retry", l.Attributes["retry"], any(true))
				mustEqual(t, "attr ratio", l.Attributes["ratio"], any(0.25))
				if tags, ok := l.Attributes["tags"].([]any); !ok || len(tags) != 2 || tags[0] != "a" || tags[1] != "b" {
					t.Errorf("tags = %#v", l.Attributes["tags"])
				}
				for k, v := range k8sResource {
					mustEqual(t, "resource "+k, l.Resource[k], any(v))
				}
				if i%2 == 0 {
					mustEqual(t, "severity", l.SeverityNumber, int(otellog.SeverityError))
					mustEqual(t, "severityText", l.SeverityText, "ERROR")
				} else {
					mustEqual(t, "severity", l.SeverityNumber, int(otellog.SeverityInfo))
					mustEqual(t, "severityText", l.SeverityText, "INFO")
				}
				if i == n-1 {
					m, ok := l.Body.(map[string]any)
					if !ok || m["order"] != "o-4" || m["items"] != float64(2) {
						t.Errorf("map body = %#v", l.Body)
					}
					mustEqual(t, "eventName", l.EventName, "order.failed")
				} else {
					mustEqual(t, "body", l.Body, any(fmt.Sprintf("order o-%d failed: it's \"odd\" \\ ü", i)))
					mustEqual(t, "eventName", l.EventName, "")
				}
				if !lowerHex(l.RecordID) || len(l.RecordID) != 32 {
					t.Errorf("recordId %q", l.RecordID)
				}
			}

			// Filters.
			cid := k8sResource["container.id"]
			filters := []struct {
				name string
				p    url.Values
				want int
			}{
				{"traceId alone (window from the trace's logs)", params("traceId", strings.ToUpper(tid)), n},
				{"traceId and spanId", params("traceId", tid, "spanId", sid, "service", service), n},
				{"other trace", params("traceId", hexID(newTraceID())), 0},
				{"severityMin error", params("service", service, "severityMin", fmt.Sprint(int(otellog.SeverityError))), 3},
				{"severityMin info", params("service", service, "severityMin", fmt.Sprint(int(otellog.SeverityInfo))), n},
				{"q", params("service", service, "q", "O-3 FAILED"), 1},
				{"q literal", params("service", service, "q", `"odd" \ Ü`), n - 1},
				{"q no match", params("service", service, "q", "o-%"), 0},
				{"containerId", params("service", service, "containerId", cid), n},
				{"containerId runtime form", params("service", service, "containerId", "containerd://"+strings.ToUpper(cid)), n},
				{"containerId 12-char prefix", params("service", service, "containerId", cid[:12]), n},
				{"containerId other", params("service", service, "containerId", "ffffffffffff"), 0},
				{"podUid", params("service", service, "podUid", k8sResource["k8s.pod.uid"]), n},
				{"other service", params("service", service+"-nope"), 0},
			}
			for _, f := range filters {
				// Polled: the trace index (a materialized view) may become
				// visible a moment after the records themselves.
				if got := app.pollLogCount(t, f.p, f.want, 10*time.Second); got != f.want {
					t.Errorf("filter %s: %d records, want %d", f.name, got, f.want)
				}
			}

			// Pagination: each record exactly once, newest first.
			seen := map[string]bool{}
			p := params("service", service, "limit", "2")
			var order []string
			for pages := 0; ; pages++ {
				if pages > n {
					t.Fatal("too many pages")
				}
				page := app.logs(t, p)
				for _, l := range page.Items {
					if seen[l.RecordID] {
						t.Errorf("record %s on two pages", l.RecordID)
					}
					seen[l.RecordID] = true
					order = append(order, l.TimeUnixNano)
				}
				if page.NextCursor == "" {
					break
				}
				p.Set("cursor", page.NextCursor)
			}
			if len(seen) != n {
				t.Errorf("pages held %d records, want %d", len(seen), n)
			}
			for i := 1; i < len(order); i++ {
				if order[i] >= order[i-1] {
					t.Errorf("page order not newest first: %v", order)
				}
			}
		})
	}
}

// TestTelemetrygenLogs sends logs with telemetrygen over gRPC and HTTP and
// reads every record back.
func TestTelemetrygenLogs(t *testing.T) {
	bin := telemetrygen(t)
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{})
	const n = 5

	for _, transport := range []string{"grpc", "http"} {
		t.Run(transport, func(t *testing.T) {
			service := "tgenlog-" + transport
			tid, sid := hexID(newTraceID()), hexID(newTraceID())[:16]
			args := []string{"logs",
				"--otlp-insecure",
				"--otlp-header", `Authorization="Bearer ` + testKey + `"`,
				"--logs", fmt.Sprint(n), "--workers", "1", "--rate", "0",
				"--service", service,
				"--body", "tgen body " + transport,
				"--severity-number", "13", "--severity-text", "Warn",
				"--trace-id", tid, "--span-id", sid,
				"--telemetry-attributes", `order.id="o-1"`,
			}
			for k, v := range k8sResource {
				args = append(args, "--otlp-attributes", fmt.Sprintf("%s=%q", k, v))
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

			got := app.waitLogs(t, params("service", service, "limit", "100"), n, 20*time.Second)
			for _, l := range got {
				mustEqual(t, "body", l.Body, any("tgen body "+transport))
				mustEqual(t, "severity", l.SeverityNumber, 13)
				mustEqual(t, "severityText", l.SeverityText, "Warn")
				mustEqual(t, "traceId", l.TraceID, tid)
				mustEqual(t, "spanId", l.SpanID, sid)
				mustEqual(t, "order.id", l.Attributes["order.id"], any("o-1"))
				for k, v := range k8sResource {
					mustEqual(t, "resource "+k, l.Resource[k], any(v))
				}
			}
			app.waitLogs(t, params("traceId", tid), n, 10*time.Second)
		})
	}
}

// TestLogsFixtureJSON posts the OTLP/JSON logs example of opentelemetry-proto
// (upper-case hex ids) and reads the record back.
func TestLogsFixtureJSON(t *testing.T) {
	body, err := os.ReadFile("../../../shared/fixtures/otlp/logs.json")
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{})

	req, _ := http.NewRequest(http.MethodPost, "http://"+app.Gateway.HTTPAddr()+"/v1/logs", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/logs: %d %s", resp.StatusCode, rb)
	}

	const tid, sid = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	// No window: the trace's logs (December 2018) are found through the index.
	got := app.waitLogs(t, params("traceId", tid), 1, 20*time.Second)
	l := got[0]
	mustEqual(t, "traceId", l.TraceID, tid)
	mustEqual(t, "spanId", l.SpanID, sid)
	mustEqual(t, "time", l.TimeUnixNano, "1544712660300000000")
	mustEqual(t, "observed", l.ObservedTimeUnixNano, "1544712660300000000")
	mustEqual(t, "severity", l.SeverityNumber, 10)
	mustEqual(t, "severityText", l.SeverityText, "Information")
	mustEqual(t, "body", l.Body, any("Example log record"))
	mustEqual(t, "service", l.Service, "my.service")
	mustEqual(t, "scope", l.Scope, apiScope{Name: "my.library", Version: "1.0.0"})
	mustEqual(t, "string.attribute", l.Attributes["string.attribute"], any("some string"))
	mustEqual(t, "boolean.attribute", l.Attributes["boolean.attribute"], any(true))
	mustEqual(t, "int.attribute", l.Attributes["int.attribute"], any(float64(10)))
	mustEqual(t, "double.attribute", l.Attributes["double.attribute"], any(637.704))
	if arr, ok := l.Attributes["array.attribute"].([]any); !ok || len(arr) != 2 || arr[0] != "many" || arr[1] != "values" {
		t.Errorf("array.attribute = %#v", l.Attributes["array.attribute"])
	}
	if m, ok := l.Attributes["map.attribute"].(map[string]any); !ok || m["some.map.key"] != "some value" {
		t.Errorf("map.attribute = %#v", l.Attributes["map.attribute"])
	}

	// With an explicit window around the record, the other filters apply.
	w := params("start", "2018-12-13T14:50:00Z", "end", "2018-12-13T14:52:00Z")
	for name, want := range map[string]int{"": 1, "severityMin=10": 1, "severityMin=11": 0, "q=example LOG": 1, "service=my.service": 1} {
		p := url.Values{}
		for k, v := range w {
			p[k] = v
		}
		if k, v, ok := strings.Cut(name, "="); ok {
			p.Set(k, v)
		}
		if n := len(app.logs(t, p).Items); n != want {
			t.Errorf("window + %q: %d records, want %d", name, n, want)
		}
	}
}
