package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// deadLetter publishes a dead letter of queue as Delivery.DeadLetter does.
func deadLetter(t *testing.T, d DeadLetters, queue Signal, tenant, origin string, data string) {
	t.Helper()
	m := nats.NewMsg(DeadLetterSubject(queue))
	m.Data = []byte(data)
	m.Header.Set(HeaderTenant, tenant)
	m.Header.Set(HeaderRecords, "2")
	m.Header.Set(HeaderReason, "insert")
	m.Header.Set(HeaderError, "code 395: throwIf")
	m.Header.Set(HeaderOrigin, origin)
	m.Header.Set(nats.MsgIdHdr, "original-id-"+data)
	if _, err := d.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func TestDeadLetters(t *testing.T) {
	_, js, _ := startBus(t, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := DeadLetters{JS: js}
	deadLetter(t, d, SignalTraces, "t1", IngestSubject(SignalTraces), "a")
	deadLetter(t, d, SignalLogs, "t2", IngestSubject(SignalLogs), "b")
	deadLetter(t, d, SignalTraces, "t1", IngestSubject(SignalTraces), "c")
	deadLetter(t, d, SignalCorrelate, "t3", "", "d") // no origin

	all, err := d.List(ctx, "", 0, 10)
	if err != nil || len(all) != 4 {
		t.Fatalf("list all: %d, %v", len(all), err)
	}
	traces, err := d.List(ctx, "traces", 0, 10)
	if err != nil || len(traces) != 2 || traces[0].Tenant != "t1" || traces[0].Reason != "insert" ||
		traces[0].Records != 2 || traces[0].Origin != IngestSubject(SignalTraces) || traces[0].Data != nil {
		t.Fatalf("list traces: %+v, %v", traces, err)
	}
	if page, _ := d.List(ctx, "", all[0].Seq, 2); len(page) != 2 || page[0].Seq != all[1].Seq {
		t.Fatalf("page after %d: %+v", all[0].Seq, page)
	}
	got, err := d.Get(ctx, traces[1].Seq)
	if err != nil || string(got.Data) != "c" {
		t.Fatalf("get: %+v, %v", got, err)
	}
	if _, err := d.Get(ctx, 999); apperr.KindOf(err) != apperr.KindNotFound {
		t.Fatalf("get missing: %v", err)
	}

	// Replay: back on the ingest stream with the original headers but a
	// new message id, and gone from the dead letters; twice is not found.
	if err := d.Replay(ctx, traces[0].Seq); err != nil {
		t.Fatal(err)
	}
	ingest, err := js.Stream(ctx, IngestStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ingest.GetLastMsgForSubject(ctx, IngestSubject(SignalTraces))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "a" || m.Header.Get(HeaderTenant) != "t1" || m.Header.Get(HeaderError) != "" ||
		m.Header.Get(HeaderOrigin) != "" || m.Header.Get(nats.MsgIdHdr) == "original-id-a" {
		t.Fatalf("replayed message %q %v", m.Data, m.Header)
	}
	if err := d.Replay(ctx, traces[0].Seq); apperr.KindOf(err) != apperr.KindNotFound {
		t.Fatalf("second replay: %v", err)
	}
	noOrigin, _ := d.List(ctx, "correlate", 0, 1)
	if err := d.Replay(ctx, noOrigin[0].Seq); apperr.KindOf(err) != apperr.KindInvalid {
		t.Fatalf("replay without origin: %v", err)
	}

	if n, err := d.Purge(ctx, "traces"); err != nil || n != 1 {
		t.Fatalf("purge traces: %d, %v", n, err)
	}
	if n, err := d.Count(ctx, ""); err != nil || n != 2 {
		t.Fatalf("left: %d, %v", n, err)
	}
	if n, err := d.Purge(ctx, "all"); err != nil || n != 2 {
		t.Fatalf("purge all: %d, %v", n, err)
	}
	if _, err := d.List(ctx, "", 0, 10); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
