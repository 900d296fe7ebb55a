package bus

import (
	"bytes"
	"context"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

func TestPublishEncoded(t *testing.T) {
	pub, js, _ := startBus(t, 64<<10)
	ctx := context.Background()
	small, err := ptraceotlp.NewExportRequestFromTraces(bigTraces(1, 1, 3, 10)).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	ok, err := pub.PublishEncoded(ctx, SignalTraces, "t1", small, 3)
	if !ok || err != nil {
		t.Fatalf("small request: ok=%v err=%v, want published", ok, err)
	}
	// The message holds the received bytes, which decode as TracesData.
	stream, err := js.Stream(ctx, IngestStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, IngestSubject(SignalTraces))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := DecodePayload(msg.Header, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(payload, small) {
		t.Error("published payload differs from the received bytes")
	}
	if got := msg.Header.Get(HeaderRecords); got != "3" {
		t.Errorf("%s = %q, want 3", HeaderRecords, got)
	}
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(payload)
	if err != nil || td.SpanCount() != 3 {
		t.Fatalf("decode: %d spans, err %v", td.SpanCount(), err)
	}
	// A retry is deduplicated like any other publish.
	if _, err := pub.PublishEncoded(ctx, SignalTraces, "t1", small, 3); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, js); n != 1 {
		t.Errorf("%d messages after a retry, want 1", n)
	}
	// Too large for one message: not published, the caller chunks.
	big, err := ptraceotlp.NewExportRequestFromTraces(bigTraces(2, 2, 50, 2000)).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	ok, err = pub.PublishEncoded(ctx, SignalTraces, "t1", big, 200)
	if ok || err != nil {
		t.Fatalf("big request: ok=%v err=%v, want not published", ok, err)
	}
	if n := streamMsgs(t, js); n != 1 {
		t.Errorf("%d messages after the big request, want 1", n)
	}
}
