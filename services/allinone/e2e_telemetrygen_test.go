package allinone

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

var (
	telemetrygenOnce sync.Once
	telemetrygenPath string
	telemetrygenErr  error
)

// telemetrygen returns the pinned telemetrygen binary: $AFTERTRACE_TELEMETRYGEN
// (make test builds it), else built from loadtest/tools.
func telemetrygen(t *testing.T) string {
	t.Helper()
	telemetrygenOnce.Do(func() {
		if p := os.Getenv("AFTERTRACE_TELEMETRYGEN"); p != "" {
			telemetrygenPath = p
			return
		}
		dir, err := os.MkdirTemp("", "telemetrygen-")
		if err != nil {
			telemetrygenErr = err
			return
		}
		telemetrygenPath = filepath.Join(dir, "telemetrygen")
		cmd := exec.Command("go", "build", "-C", "../../loadtest/tools", "-o", telemetrygenPath,
			"github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen")
		if out, err := cmd.CombinedOutput(); err != nil {
			telemetrygenErr = fmt.Errorf("build telemetrygen: %v\n%s", err, out)
		}
	})
	if telemetrygenErr != nil {
		t.Fatal(telemetrygenErr)
	}
	return telemetrygenPath
}

type traceList struct {
	Items []struct {
		TraceID   string `json:"traceId"`
		SpanCount int    `json:"spanCount"`
	} `json:"items"`
	NextCursor string `json:"nextCursor"`
}

// TestTelemetrygen sends traces with telemetrygen v0.161.0 over gRPC and
// HTTP and reads every span back.
func TestTelemetrygen(t *testing.T) {
	bin := telemetrygen(t)
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{})
	const traces, children = 5, 3

	for _, transport := range []string{"grpc", "http"} {
		t.Run(transport, func(t *testing.T) {
			service := "tgen-" + transport
			args := []string{"traces",
				"--otlp-insecure",
				"--otlp-header", `Authorization="Bearer ` + testKey + `"`,
				"--traces", fmt.Sprint(traces), "--child-spans", fmt.Sprint(children),
				"--workers", "1", "--rate", "0",
				"--service", service,
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

			var list traceList
			deadline := time.Now().Add(20 * time.Second)
			for {
				list = traceList{}
				app.getJSON(t, "/api/v1/traces?service="+service+"&limit=100", &list)
				complete := len(list.Items) == traces
				for _, it := range list.Items {
					complete = complete && it.SpanCount == 1+children
				}
				if complete {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("search: %+v, want %d traces of %d spans", list.Items, traces, 1+children)
				}
				time.Sleep(100 * time.Millisecond)
			}
			for _, it := range list.Items {
				tr := app.waitTrace(t, it.TraceID, 1+children, 5*time.Second)
				var root apiSpan
				for _, s := range tr.Spans {
					if s.ParentSpanID == "" {
						root = s
					}
				}
				if root.SpanID == "" {
					t.Fatalf("trace %s has no root span", it.TraceID)
				}
				for _, s := range tr.Spans {
					if s.SpanID != root.SpanID && s.ParentSpanID != root.SpanID {
						t.Errorf("span %s parent %s, want root %s", s.SpanID, s.ParentSpanID, root.SpanID)
					}
					mustEqual(t, "service", s.Service, service)
					mustEqual(t, "order.id", s.Attributes["order.id"], any("o-1"))
					for k, v := range k8sResource {
						mustEqual(t, "resource "+k, s.Resource[k], any(v))
					}
				}
			}
		})
	}
}
