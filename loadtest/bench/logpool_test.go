package bench

import (
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/aftertrace/aftertrace/loadtest/loadgen"
)

func decodeLogRecords(t *testing.T, body []byte) []plog.LogRecord {
	t.Helper()
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		t.Fatalf("decode: %v", err)
	}
	var out []plog.LogRecord
	for _, rl := range req.Logs().ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				out = append(out, lr)
			}
		}
	}
	return out
}

func TestLogPoolReplay(t *testing.T) {
	m, err := loadgen.NewModel(loadgen.DefaultModelConfig())
	if err != nil {
		t.Fatal(err)
	}
	var pods []*loadgen.Pod
	for _, s := range m.Services {
		pods = append(pods, s.Pods...)
	}
	base := time.Unix(1_700_000_000, 0)
	const size, perReq = 4, 100
	p, err := newLogPool(7, pods, perReq, size, base)
	if err != nil {
		t.Fatal(err)
	}
	k := int64(1)
	want := decodeLogRecords(t, p.reqs[k].Render(0, 0)) // as built
	tests := []struct {
		name  string
		round int64
	}{{"round 0", 0}, {"round 3", 3}}
	seen := map[pcommon.TraceID]int64{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.round*size + k
			at := base.Add(time.Minute + time.Duration(n)*time.Second)
			got := decodeLogRecords(t, p.request(n, at))
			if len(got) != perReq || len(want) != perReq {
				t.Fatalf("%d records, template %d, want %d", len(got), len(want), perReq)
			}
			if first := got[0].Timestamp().AsTime(); !first.Equal(at) {
				t.Fatalf("first record at %v, not at its due time %v", first, at)
			}
			for i, w := range want {
				g := got[i]
				d := at.Sub(base)
				if g.Timestamp().AsTime() != w.Timestamp().AsTime().Add(d) || g.ObservedTimestamp().AsTime() != w.ObservedTimestamp().AsTime().Add(d) {
					t.Fatalf("record %d: at %v, template %v, want moved by %v", i, g.Timestamp().AsTime(), w.Timestamp().AsTime(), d)
				}
				if (g.TraceID() == w.TraceID()) != (tt.round == 0) || g.TraceID() != loadgen.SaltTraceID(w.TraceID(), loadgen.RoundSalt(7, uint64(tt.round))) {
					t.Fatalf("record %d: trace id %v, template %v (round %d)", i, g.TraceID(), w.TraceID(), tt.round)
				}
				if prev, dup := seen[g.TraceID()]; dup {
					t.Fatalf("record %d: trace id %v already sent in round %d", i, g.TraceID(), prev)
				}
				seen[g.TraceID()] = tt.round
				if g.SpanID() != w.SpanID() || g.Body().Str() != w.Body().Str() || g.SeverityNumber() != w.SeverityNumber() ||
					!reflect.DeepEqual(g.Attributes().AsRaw(), w.Attributes().AsRaw()) {
					t.Fatalf("record %d differs from its template beyond ids and times", i)
				}
			}
		})
	}
}
