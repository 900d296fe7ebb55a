package allinone

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// k8sResource is the resource a pod's SDK would report.
var k8sResource = map[string]string{
	"k8s.pod.uid":        "6f1c1d2e-0000-4a1b-9c3d-112233445566",
	"k8s.pod.name":       "checkout-7d9f8b-abcde",
	"k8s.namespace.name": "shop",
	"k8s.node.name":      "node-1",
	"container.id":       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"k8s.container.name": "checkout",
}

// TestSDKExporters sends a trace through the OTel Go SDK exporters (gRPC
// and HTTP) and reads every span back with ids, parentage, attributes and
// k8s resource attributes intact.
func TestSDKExporters(t *testing.T) {
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{})
	headers := map[string]string{"Authorization": "Bearer " + testKey}

	cases := []struct {
		name string
		exp  func(ctx context.Context) (sdktrace.SpanExporter, error)
	}{
		{"grpc", func(ctx context.Context) (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(app.Gateway.GRPCAddr()),
				otlptracegrpc.WithInsecure(), otlptracegrpc.WithHeaders(headers))
		}},
		{"grpc-gzip", func(ctx context.Context) (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(app.Gateway.GRPCAddr()),
				otlptracegrpc.WithInsecure(), otlptracegrpc.WithHeaders(headers), otlptracegrpc.WithCompressor("gzip"))
		}},
		{"http", func(ctx context.Context) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(app.Gateway.HTTPAddr()),
				otlptracehttp.WithInsecure(), otlptracehttp.WithHeaders(headers))
		}},
		{"http-gzip", func(ctx context.Context) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(app.Gateway.HTTPAddr()),
				otlptracehttp.WithInsecure(), otlptracehttp.WithHeaders(headers),
				otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			exp, err := tc.exp(ctx)
			if err != nil {
				t.Fatal(err)
			}
			attrs := []attribute.KeyValue{attribute.String("service.name", "sdk-"+tc.name)}
			for k, v := range k8sResource {
				attrs = append(attrs, attribute.String(k, v))
			}
			tp := sdktrace.NewTracerProvider(
				sdktrace.WithSyncer(exp),
				sdktrace.WithResource(resource.NewSchemaless(attrs...)),
			)
			tracer := tp.Tracer("e2e", trace.WithInstrumentationVersion("1.2.3"))

			rootCtx, root := tracer.Start(ctx, "POST /api/checkout", trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(
					attribute.String("http.route", "/api/checkout"),
					attribute.Int("http.status_code", 500),
					attribute.Bool("retry", true),
					attribute.Float64("ratio", 0.25),
					attribute.StringSlice("tags", []string{"a", "b"}),
					attribute.String("quote", `it's "odd" \ ü`),
				))
			_, child := tracer.Start(rootCtx, "charge card", trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(attribute.String("order.id", "o-42")))
			child.AddEvent("retrying", trace.WithAttributes(attribute.Int("attempt", 2)))
			child.SetStatus(codes.Error, "card declined")
			child.End()
			root.End()
			if err := tp.Shutdown(ctx); err != nil {
				t.Fatalf("export: %v", err)
			}

			traceID := root.SpanContext().TraceID().String()
			tr := app.waitTrace(t, traceID, 2, 15*time.Second)
			mustEqual(t, "traceId", tr.TraceID, traceID)
			spans := spanByName(t, tr)
			r, c := spans["POST /api/checkout"], spans["charge card"]
			mustEqual(t, "root spanId", r.SpanID, root.SpanContext().SpanID().String())
			mustEqual(t, "root parent", r.ParentSpanID, "")
			mustEqual(t, "child spanId", c.SpanID, child.SpanContext().SpanID().String())
			mustEqual(t, "child parent", c.ParentSpanID, r.SpanID)
			mustEqual(t, "root kind", r.Kind, "server")
			mustEqual(t, "child kind", c.Kind, "client")
			mustEqual(t, "service", r.Service, "sdk-"+tc.name)
			mustEqual(t, "child status", c.Status.Code, "error")
			mustEqual(t, "child status message", c.Status.Message, "card declined")
			mustEqual(t, "http.route", r.Attributes["http.route"], any("/api/checkout"))
			mustEqual(t, "http.status_code", r.Attributes["http.status_code"], any(float64(500)))
			mustEqual(t, "retry", r.Attributes["retry"], any(true))
			mustEqual(t, "ratio", r.Attributes["ratio"], any(0.25))
			mustEqual(t, "quote", r.Attributes["quote"], any(`it's "odd" \ ü`))
			if tags, ok := r.Attributes["tags"].([]any); !ok || len(tags) != 2 || tags[0] != "a" || tags[1] != "b" {
				t.Errorf("tags = %#v, want [a b]", r.Attributes["tags"])
			}
			mustEqual(t, "order.id", c.Attributes["order.id"], any("o-42"))
			if len(c.Events) != 1 || c.Events[0].Name != "retrying" {
				t.Errorf("child events = %+v, want one 'retrying'", c.Events)
			}
			for k, v := range k8sResource {
				mustEqual(t, "resource "+k, r.Resource[k], any(v))
				mustEqual(t, "child resource "+k, c.Resource[k], any(v))
			}
			for _, s := range tr.Spans {
				if !lowerHex(s.SpanID) || !lowerHex(s.TraceID) {
					t.Errorf("ids not lower-case hex: %+v", s)
				}
			}
		})
	}
}
