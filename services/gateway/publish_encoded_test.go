package gateway

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/bus"
)

// encodedPublisherFake is a fakePublisher that also takes pre-encoded
// requests, like bus.Publisher; it declines those longer than maxBytes.
type encodedPublisherFake struct {
	*fakePublisher
	maxBytes int
	mu       sync.Mutex
	encoded  [][]byte
	records  []int
}

func (p *encodedPublisherFake) PublishEncoded(_ context.Context, sig bus.Signal, tenantID string, payload []byte, records int) (bool, error) {
	if sig != bus.SignalTraces && sig != bus.SignalLogs || tenantID != "t1" {
		return false, nil
	}
	if len(payload) > p.maxBytes {
		return false, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.encoded = append(p.encoded, append([]byte(nil), payload...))
	p.records = append(p.records, records)
	return true, nil
}

func (p *encodedPublisherFake) takeEncoded() ([][]byte, []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, r := p.encoded, p.records
	p.encoded, p.records = nil, nil
	return e, r
}

func TestPublishesReceivedProtobufAsIs(t *testing.T) {
	var pub *encodedPublisherFake
	g := startGatewayWith(t, nil, func(d *Deps) {
		pub = &encodedPublisherFake{fakePublisher: d.Publisher.(*fakePublisher), maxBytes: 4 << 10}
		d.Publisher = pub
	})
	withZeroID := sampleTraces(3)
	withZeroID.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).SetSpanID(pcommon.SpanID{})
	clean := protoBody(t, sampleTraces(3))
	tests := []struct {
		name        string
		contentType string
		body        []byte
		wantEncoded bool
		wantSpans   int
	}{
		{"clean protobuf as received", "application/x-protobuf", clean, true, 3},
		{"filtered protobuf re-encoded", "application/x-protobuf", protoBody(t, withZeroID), false, 2},
		{"json re-encoded", "application/json", jsonBody(t, sampleTraces(3)), false, 3},
		{"too large for one message re-encoded", "application/x-protobuf", protoBody(t, bigTraces(8<<10)), false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := postHTTP(t, g, httpRequest{contentType: tt.contentType, body: tt.body})
			if resp.status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			encoded, records := pub.takeEncoded()
			calls := pub.take()
			if !tt.wantEncoded {
				if len(encoded) != 0 || len(calls) != 1 || calls[0].td.SpanCount() != tt.wantSpans {
					t.Fatalf("%d encoded, %d decoded publishes; want one decoded of %d spans", len(encoded), len(calls), tt.wantSpans)
				}
				return
			}
			if len(calls) != 0 || len(encoded) != 1 {
				t.Fatalf("%d encoded, %d decoded publishes; want one encoded", len(encoded), len(calls))
			}
			if !bytes.Equal(encoded[0], tt.body) || records[0] != tt.wantSpans {
				t.Errorf("published %d bytes of %d records, want the %d bytes received of %d", len(encoded[0]), records[0], len(tt.body), tt.wantSpans)
			}
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(encoded[0])
			if err != nil || td.SpanCount() != tt.wantSpans {
				t.Errorf("payload decodes to %d spans, err %v", td.SpanCount(), err)
			}
		})
	}
	// gRPC: the message body is published as received too.
	cc := dialGRPC(t, g)
	if _, err := exportGRPC(cc, testKey, sampleTraces(2)); err != nil {
		t.Fatal(err)
	}
	if encoded, _ := pub.takeEncoded(); len(encoded) != 1 || len(pub.take()) != 0 {
		t.Errorf("gRPC: %d encoded publishes, want 1 and no decoded one", len(encoded))
	}
}

// TestPublishesReceivedLogsAsIs: a protobuf logs request whose records all
// have a time is published as received; one with a record the gateway must
// stamp is decoded, stamped and re-encoded.
func TestPublishesReceivedLogsAsIs(t *testing.T) {
	var pub *encodedPublisherFake
	g := startGatewayWith(t, nil, func(d *Deps) {
		pub = &encodedPublisherFake{fakePublisher: d.Publisher.(*fakePublisher), maxBytes: 64 << 10}
		d.Publisher = pub
	})
	clean := logsProto(t, sampleLogs(3))
	resp := postHTTP(t, g, httpRequest{path: "/v1/logs", contentType: "application/x-protobuf", body: clean})
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	encoded, records := pub.takeEncoded()
	if len(encoded) != 1 || !bytes.Equal(encoded[0], clean) || records[0] != 3 || len(pub.takeLogs()) != 0 {
		t.Fatalf("clean logs: %d encoded publishes (records %v), want the body as received", len(encoded), records)
	}

	unstamped := sampleLogs(2)
	unstamped.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(1).SetTimestamp(0)
	resp = postHTTP(t, g, httpRequest{path: "/v1/logs", contentType: "application/x-protobuf", body: logsProto(t, unstamped)})
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	if encoded, _ := pub.takeEncoded(); len(encoded) != 0 {
		t.Fatalf("a record without time was published as received")
	}
	got := pub.takeLogs()
	if len(got) != 1 || got[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(1).ObservedTimestamp() == 0 {
		t.Fatalf("want one decoded publish with the observed time stamped, got %d", len(got))
	}
}
