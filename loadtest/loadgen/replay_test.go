package loadgen

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

func testPool(t testing.TB, spans int64) *replayPool {
	t.Helper()
	m, err := NewModel(DefaultModelConfig())
	if err != nil {
		t.Fatal(err)
	}
	p, err := buildReplayPool(context.Background(), NewGenerator(m, 11), 11, 500, 20000, spans, t0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReplayRequest(t *testing.T) {
	p := testPool(t, 5000)
	k := int64(2) // a template that is not the first
	tmpl := decodeTraces(t, p.reqs[k].tmpl.body)
	tests := []struct {
		name  string
		round int64
	}{{"round 0", 0}, {"round 3", 3}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.round*int64(len(p.reqs)) + k
			// Later rounds are due later; the run starts after the pool's base.
			due := t0.Add(time.Minute + time.Duration(tt.round)*time.Hour + p.reqs[k].at)
			j := p.job(n, due)
			if j.spans != p.reqs[k].spans || j.delta != due.Sub(t0.Add(p.reqs[k].at)) {
				t.Fatalf("job spans=%d delta=%v", j.spans, j.delta)
			}
			got := decodeTraces(t, j.replay.render(j.delta, j.salt))
			gs, ws := allSpans(got), allSpans(tmpl)
			if len(gs) != len(ws) || len(gs) != j.spans {
				t.Fatalf("%d spans, template %d, job %d", len(gs), len(ws), j.spans)
			}
			byTrace := map[pcommon.TraceID]map[pcommon.SpanID]bool{}
			for i, w := range ws {
				g := gs[i]
				if (g.TraceID() == w.TraceID()) != (tt.round == 0) {
					t.Fatalf("span %d: trace id %v, template %v (round %d)", i, g.TraceID(), w.TraceID(), tt.round)
				}
				if g.StartTimestamp().AsTime() != w.StartTimestamp().AsTime().Add(j.delta) || g.EndTimestamp().AsTime() != w.EndTimestamp().AsTime().Add(j.delta) {
					t.Fatalf("span %d not moved by %v", i, j.delta)
				}
				for e, we := range w.Events().All() {
					if g.Events().At(e).Timestamp().AsTime() != we.Timestamp().AsTime().Add(j.delta) {
						t.Fatalf("span %d event %d not moved", i, e)
					}
				}
				if g.SpanID() != w.SpanID() || g.ParentSpanID() != w.ParentSpanID() || g.Name() != w.Name() ||
					!reflect.DeepEqual(g.Attributes().AsRaw(), w.Attributes().AsRaw()) {
					t.Fatalf("span %d differs from its template beyond ids and times", i)
				}
				if byTrace[g.TraceID()] == nil {
					byTrace[g.TraceID()] = map[pcommon.SpanID]bool{}
				}
				byTrace[g.TraceID()][g.SpanID()] = true
			}
			// Parentage holds within each (renamed) trace.
			roots := map[pcommon.TraceID]pcommon.Timestamp{}
			for _, g := range gs {
				if g.ParentSpanID().IsEmpty() {
					roots[g.TraceID()] = g.StartTimestamp()
				} else if !byTrace[g.TraceID()][g.ParentSpanID()] {
					t.Fatalf("span %v: parent %v not in its trace %v", g.SpanID(), g.ParentSpanID(), g.TraceID())
				}
			}
			refs := j.traceRefs()
			if len(refs) != len(byTrace) || len(refs) != len(roots) {
				t.Fatalf("%d refs, %d traces, %d roots", len(refs), len(byTrace), len(roots))
			}
			for _, r := range refs {
				if len(byTrace[r.TraceID]) != r.Spans || roots[r.TraceID].AsTime() != r.Start {
					t.Fatalf("ref %v: %d spans from %v; decoded %d spans, root at %v", r.TraceID, r.Spans, r.Start, len(byTrace[r.TraceID]), roots[r.TraceID].AsTime())
				}
			}
		})
	}
}

func TestReplayTraceIDsUnique(t *testing.T) {
	p := testPool(t, 5000)
	seen := map[pcommon.TraceID]int64{}
	for n := range int64(len(p.reqs)) * 5 {
		for _, r := range p.job(n, t0).traceRefs() {
			if prev, dup := seen[r.TraceID]; dup {
				t.Fatalf("trace id %v of request %d already sent by request %d", r.TraceID, n, prev)
			}
			seen[r.TraceID] = n
		}
	}
}

// rawFakeSender is fakeSender that also takes encoded requests, decoding
// them as a server would.
type rawFakeSender struct {
	fakeSender
	ids map[pcommon.TraceID]bool
	bad error
}

func (f *rawFakeSender) SendTracesRaw(_ context.Context, body []byte) (int64, error) {
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		f.mu.Lock()
		f.bad = err
		f.mu.Unlock()
		return 0, err
	}
	f.mu.Lock()
	for _, sp := range allSpans(req.Traces()) {
		f.ids[sp.TraceID()] = true
	}
	f.mu.Unlock()
	return f.SendTraces(context.Background(), req.Traces())
}

func TestRunReplay(t *testing.T) {
	tests := []struct {
		name        string
		replaySpans int // 0: the whole run fits in one round
		reject      bool
	}{
		{"one round", 0, false},
		{"one round rejected", 0, true},
		{"many rounds", 1200, false},
	}
	base := func() RunConfig {
		cfg := DefaultRunConfig()
		cfg.Rate, cfg.Duration, cfg.Connections, cfg.BatchSpans = 20000, 300*time.Millisecond, 2, 500
		return cfg
	}
	// The live run is the reference of the schedule.
	live := &fakeSender{}
	lcfg := base()
	lcfg.NewSender = func() (Sender, error) { return live, nil }
	want, err := Run(context.Background(), lcfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &rawFakeSender{fakeSender: fakeSender{reject: tt.reject}, ids: map[pcommon.TraceID]bool{}}
			cfg := base()
			cfg.Replay, cfg.ReplaySpans = true, tt.replaySpans
			cfg.NewSender = func() (Sender, error) { return fs, nil }
			var mu sync.Mutex
			acked := map[pcommon.TraceID]bool{}
			cfg.OnAck = func(refs []TraceRef, _ time.Time) {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range refs {
					acked[r.TraceID] = true
				}
			}
			var started time.Time
			cfg.OnStart = func(t0 time.Time) { started = t0 }
			got, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if fs.bad != nil || started.IsZero() || got.InFlight != 0 || int64(fs.spans) != got.SentSpans {
				t.Fatalf("decode error %v, started %v, in flight %d, received %d of %d spans", fs.bad, started, got.InFlight, fs.spans, got.SentSpans)
			}
			if tt.replaySpans == 0 && (got.Requests != want.Requests || got.SentSpans != want.SentSpans) {
				t.Fatalf("replay sent %d spans in %d requests, live %d in %d", got.SentSpans, got.Requests, want.SentSpans, want.Requests)
			}
			limit := int64(cfg.Rate*cfg.Duration.Seconds()) + int64(cfg.BatchSpans) + 200
			if got.SentSpans == 0 || got.SentSpans > limit {
				t.Fatalf("sent %d spans, want 1..%d", got.SentSpans, limit)
			}
			if tt.reject {
				if got.AckedSpans != 0 || got.RejSpans != got.SentSpans || len(acked) != 0 {
					t.Fatalf("acked=%d rejected=%d acks=%d", got.AckedSpans, got.RejSpans, len(acked))
				}
				return
			}
			if got.AckedSpans != got.SentSpans || got.Failed != 0 {
				t.Fatalf("acked %d of %d, failed %d", got.AckedSpans, got.SentSpans, got.Failed)
			}
			// OnAck names exactly the (distinct) trace ids sent.
			if !reflect.DeepEqual(acked, fs.ids) {
				t.Fatalf("acked %d trace ids, sender saw %d distinct", len(acked), len(fs.ids))
			}
		})
	}
}

func TestReplayConfig(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*RunConfig)
		want string // "" : valid
	}{
		{"traces only", func(*RunConfig) {}, ""},
		{"faults", func(c *RunConfig) { c.Faults = 1 }, "replay: not supported with faults"},
		{"metrics", func(c *RunConfig) { c.Metrics = true }, "replay: not supported with metrics"},
		{"logs", func(c *RunConfig) { c.LogsPerTrace = 2 }, "replay: not supported with logs per trace"},
		{"negative pool", func(c *RunConfig) { c.ReplaySpans = -1 }, "replay spans"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultRunConfig()
			cfg.Replay = true
			tt.mod(&cfg)
			err := cfg.Validate()
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
	cfg := DefaultRunConfig()
	cfg.Replay, cfg.Duration = true, time.Second
	cfg.NewSender = func() (Sender, error) { return &fakeSender{}, nil }
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "RawTraceSender") {
		t.Fatalf("replay over a sender without raw sends: %v", err)
	}
}

// otlpServer is an in-process OTLP gRPC receiver (pdata's own codec) that
// rejects one record of every request.
type otlpServer struct {
	ptraceotlp.UnimplementedGRPCServer
	mu    sync.Mutex
	spans int
	auth  []string
}

func (s *otlpServer) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	s.spans += req.Traces().SpanCount()
	s.auth = append(s.auth, md.Get("authorization")...)
	s.mu.Unlock()
	resp := ptraceotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedSpans(1)
	return resp, nil
}

type otlpLogServer struct {
	plogotlp.UnimplementedGRPCServer
	mu      sync.Mutex
	records int
}

func (s *otlpLogServer) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records += req.Logs().LogRecordCount()
	if s.records > 2*req.Logs().LogRecordCount() {
		return plogotlp.NewExportResponse(), errors.New("full")
	}
	resp := plogotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedLogRecords(1)
	return resp, nil
}

func TestRawSendGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	trs, ls := &otlpServer{}, &otlpLogServer{}
	ptraceotlp.RegisterGRPCServer(srv, trs)
	plogotlp.RegisterGRPCServer(srv, ls)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	defer func() { srv.Stop(); wg.Wait() }()

	s, err := NewGRPCSender(lis.Addr().String(), "k1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := testPool(t, 1000)
	j := p.job(int64(len(p.reqs)), t0.Add(time.Hour)) // round 1
	rej, err := s.(RawTraceSender).SendTracesRaw(context.Background(), j.replay.render(j.delta, j.salt))
	trs.mu.Lock()
	spans, auth := trs.spans, trs.auth
	trs.mu.Unlock()
	if err != nil || rej != 1 || spans != j.spans || len(auth) != 1 || auth[0] != "Bearer k1" {
		t.Fatalf("traces: rejected %d, err %v; server got %d of %d spans, auth %q", rej, err, spans, j.spans, auth)
	}

	g := newGen(t, DefaultModelConfig(), 4)
	g.SetLogsPerTrace(1)
	ld := g.NextBatch(t0, 20).Logs
	tmpl, err := EncodeLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	rej, err = s.(RawLogSender).SendLogsRaw(context.Background(), tmpl.Render(time.Second, 5))
	ls.mu.Lock()
	records := ls.records
	ls.mu.Unlock()
	if err != nil || rej != 1 || records != ld.LogRecordCount() {
		t.Fatalf("logs: rejected %d, err %v; server got %d of %d records", rej, err, records, ld.LogRecordCount())
	}
	for range 2 { // the third request fails: the error comes back as one
		_, err = s.(RawLogSender).SendLogsRaw(context.Background(), tmpl.Render(0, 0))
	}
	if err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("server error not returned: %v", err)
	}
}

// BenchmarkReplayNext is the load generator's cost per span with replay
// (copy and patch a pool request) against generating and marshalling it;
// compare ns/span.
func BenchmarkReplayNext(b *testing.B) {
	b.Run("live", func(b *testing.B) {
		m, err := NewModel(DefaultModelConfig())
		if err != nil {
			b.Fatal(err)
		}
		g := NewGenerator(m, 1)
		spans := 0
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			batch := g.NextBatch(t0.Add(time.Duration(i)*25*time.Millisecond), 500)
			if _, err := ptraceotlp.NewExportRequestFromTraces(batch.Traces).MarshalProto(); err != nil {
				b.Fatal(err)
			}
			spans += batch.Spans
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
	})
	b.Run("replay", func(b *testing.B) {
		p := testPool(b, 20000)
		spans := 0
		b.ReportAllocs()
		for i := int64(0); b.Loop(); i++ {
			j := p.job(i, t0.Add(time.Hour+time.Duration(i)*25*time.Millisecond))
			if len(j.replay.render(j.delta, j.salt)) == 0 {
				b.Fatal("empty request")
			}
			spans += j.spans
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
	})
}
