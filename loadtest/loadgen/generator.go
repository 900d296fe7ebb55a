package loadgen

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Generator produces traces (and the logs that go with them) of a Model.
// Not safe for concurrent use; the output is a function of the seed, the
// faults and the sequence of calls.
type Generator struct {
	m            *Model
	rng          *rand.Rand
	faults       []Fault
	logsPerTrace int
	stats        map[*Pod]*podStats // for metrics; nil when metrics are off
	orderSeq     uint64
}

// NewGenerator returns a generator for m whose randomness comes from seed.
func NewGenerator(m *Model, seed uint64) *Generator {
	return &Generator{m: m, rng: rand.New(rand.NewPCG(seed, 0x7472616365))} // "trace"
}

// Model is the application the generator simulates.
func (g *Generator) Model() *Model { return g.m }

// SetFaults installs faults (from Model.PlanFaults or hand-made).
func (g *Generator) SetFaults(fs []Fault) {
	g.faults = append([]Fault(nil), fs...)
	for i := range g.faults {
		f := &g.faults[i]
		if f.pod != nil {
			continue
		}
		if s := g.m.Service(f.Service); s != nil {
			for _, p := range s.Pods {
				if p.Name == f.Pod {
					f.pod = p
				}
			}
		}
	}
}

// SetLogsPerTrace makes every trace carry n log records on its spans.
func (g *Generator) SetLogsPerTrace(n int) { g.logsPerTrace = max(n, 0) }

// TraceRef identifies one generated trace.
type TraceRef struct {
	TraceID pcommon.TraceID
	Spans   int
	Start   time.Time
}

// Batch is one request's worth of telemetry.
type Batch struct {
	Traces     ptrace.Traces
	Logs       plog.Logs // empty unless logs are on
	Spans      int
	LogRecords int
	Refs       []TraceRef
}

// NextBatch generates whole traces starting at at until the batch holds at
// least minSpans spans.
func (g *Generator) NextBatch(at time.Time, minSpans int) Batch {
	b := newBatchBuilder(g.logsPerTrace > 0)
	out := Batch{}
	for out.Spans < max(minSpans, 1) {
		ref, logs := g.trace(b, at)
		out.Spans += ref.Spans
		out.LogRecords += logs
		out.Refs = append(out.Refs, ref)
	}
	out.Traces, out.Logs = b.td, b.ld
	return out
}

// batchBuilder groups spans and logs by pod (one ResourceSpans per pod).
type batchBuilder struct {
	td    ptrace.Traces
	ld    plog.Logs
	logs  bool
	spans map[*Pod]ptrace.SpanSlice
	recs  map[*Pod]plog.LogRecordSlice
}

func newBatchBuilder(logs bool) *batchBuilder {
	return &batchBuilder{td: ptrace.NewTraces(), ld: plog.NewLogs(), logs: logs,
		spans: map[*Pod]ptrace.SpanSlice{}, recs: map[*Pod]plog.LogRecordSlice{}}
}

func (b *batchBuilder) span(p *Pod) ptrace.Span {
	ss, ok := b.spans[p]
	if !ok {
		rs := b.td.ResourceSpans().AppendEmpty()
		p.Resource.CopyTo(rs.Resource().Attributes())
		sc := rs.ScopeSpans().AppendEmpty()
		sc.Scope().SetName("go.opentelemetry.io/contrib/instrumentation")
		sc.Scope().SetVersion("0.60.0")
		ss = sc.Spans()
		b.spans[p] = ss
	}
	return ss.AppendEmpty()
}

func (b *batchBuilder) log(p *Pod) plog.LogRecord {
	ls, ok := b.recs[p]
	if !ok {
		rl := b.ld.ResourceLogs().AppendEmpty()
		p.Resource.CopyTo(rl.Resource().Attributes())
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("shop/logger")
		ls = sl.LogRecords()
		b.recs[p] = ls
	}
	return ls.AppendEmpty()
}

// traceCtx is the state of the trace being generated.
type traceCtx struct {
	b       *batchBuilder
	id      pcommon.TraceID
	spans   int
	servers []ptrace.Span // server spans, where logs attach
	pods    []*Pod
	userID  string
}

func (g *Generator) trace(b *batchBuilder, at time.Time) (TraceRef, int) {
	t := &traceCtx{b: b, id: g.traceID(), userID: fmt.Sprintf("user-%05d", g.rng.IntN(50000))}
	root := g.m.Services[0]
	route := root.Routes[g.rng.IntN(len(root.Routes))]
	business := ""
	if g.rng.Float64() < g.m.Config.BusinessRatio {
		if s := g.m.Service("checkout"); s != nil && g.rng.IntN(3) > 0 {
			root, route, business = s, "PlaceOrder", "checkout"
		} else if s := g.m.Service("payment"); s != nil {
			root, route, business = s, "Charge", "payment"
		}
	}
	g.server(t, root, nil, route, pcommon.SpanID{}, at, 0, business)
	logs := 0
	if b.logs {
		logs = g.logs(t)
	}
	return TraceRef{TraceID: t.id, Spans: t.spans, Start: at}, logs
}

// server emits the server span of svc handling route, called from caller
// (nil for a root), and everything below it; it returns the span's end.
func (g *Generator) server(t *traceCtx, svc *Service, caller *Service, route string, parent pcommon.SpanID, start time.Time, depth int, business string) time.Time {
	pod := svc.Pods[g.rng.IntN(len(svc.Pods))]
	sp := t.b.span(pod)
	t.spans++
	t.servers = append(t.servers, sp)
	t.pods = append(t.pods, pod)
	id := g.spanID()
	sp.SetTraceID(t.id)
	sp.SetSpanID(id)
	if parent != (pcommon.SpanID{}) {
		sp.SetParentSpanID(parent)
	}
	sp.SetKind(ptrace.SpanKindServer)

	latency, errRate := 1.0, g.m.Config.ErrorRate
	for i := range g.faults {
		if g.faults[i].active(pod, start) {
			latency, errRate = g.faults[i].LatencyFactor, g.faults[i].ErrorRate
		}
	}
	failed := g.rng.Float64() < errRate
	self := g.selfTime(svc.BaseMs * latency)
	cur := start.Add(self / 2)

	// Downstream calls, one after the other.
	if depth < g.m.Config.Depth && len(svc.Callees) > 0 {
		n := 1 + g.rng.IntN(min(g.m.Config.FanOut, len(svc.Callees)))
		for _, i := range g.rng.Perm(len(svc.Callees))[:n] {
			cur = g.client(t, pod, svc.Callees[i], id, cur.Add(50*time.Microsecond), depth+1)
		}
	}
	if svc.DB != "" && g.rng.IntN(2) == 0 {
		cur = g.db(t, pod, id, cur.Add(30*time.Microsecond))
	}
	end := cur.Add(self / 2)

	attrs := sp.Attributes()
	attrs.EnsureCapacity(12)
	status := 200
	if failed {
		status = 500
	}
	if svc.RPC {
		sp.SetName(svc.rpcSvc + "/" + route)
		attrs.PutStr("rpc.system", "grpc")
		attrs.PutStr("rpc.service", svc.rpcSvc)
		attrs.PutStr("rpc.method", route)
		grpcCode := int64(0)
		if failed {
			grpcCode = 13
		}
		attrs.PutInt("rpc.grpc.status_code", grpcCode)
		attrs.PutStr("http.method", "POST")
		attrs.PutStr("http.route", "/"+svc.rpcSvc+"/"+route)
	} else {
		method := "GET"
		if route == "/cart/checkout" || route == "/cart" && g.rng.IntN(2) == 0 {
			method = "POST"
		}
		sp.SetName(method + " " + route)
		attrs.PutStr("http.method", method)
		attrs.PutStr("http.route", route)
		attrs.PutStr("http.target", route)
		attrs.PutStr("http.scheme", "http")
		attrs.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) loadgen/1.0")
	}
	attrs.PutInt("http.status_code", int64(status))
	attrs.PutStr("net.host.name", svc.Name+"."+g.m.Config.Namespace+".svc.cluster.local")
	attrs.PutInt("net.host.port", 8080)
	peer := "10.0." + fmt.Sprint(g.rng.IntN(256)) + "." + fmt.Sprint(g.rng.IntN(256))
	if caller != nil {
		peer = caller.Name + "." + g.m.Config.Namespace + ".svc.cluster.local"
	}
	attrs.PutStr("net.peer.name", peer)
	attrs.PutStr("enduser.id", t.userID)
	if business != "" {
		g.orderSeq++
		attrs.PutStr("business.transaction", business)
		attrs.PutStr("order.id", fmt.Sprintf("ord-%08x%04x", g.rng.Uint32(), g.orderSeq&0xffff))
		attrs.PutStr("user.id", t.userID)
		attrs.PutDouble("order.amount", math.Round(g.rng.Float64()*50000)/100)
		attrs.PutStr("order.currency", "USD")
	}
	if failed {
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage("internal error")
		ev := sp.Events().AppendEmpty()
		ev.SetName("exception")
		ev.SetTimestamp(pcommon.NewTimestampFromTime(end.Add(-time.Microsecond)))
		ev.Attributes().PutStr("exception.type", "UpstreamError")
		ev.Attributes().PutStr("exception.message", svc.Name+": upstream request failed")
	} else {
		sp.Status().SetCode(ptrace.StatusCodeUnset)
	}
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	g.observe(pod, t.id, id, end.Sub(start), failed)
	return end
}

// client emits the client span of a call from pod to callee and the
// callee's server span below it; it returns the client span's end.
func (g *Generator) client(t *traceCtx, pod *Pod, callee *Service, parent pcommon.SpanID, start time.Time, depth int) time.Time {
	sp := t.b.span(pod)
	t.spans++
	id := g.spanID()
	route := callee.Routes[g.rng.IntN(len(callee.Routes))]
	net := 200*time.Microsecond + time.Duration(g.rng.IntN(300))*time.Microsecond
	end := g.server(t, callee, pod.Service, route, id, start.Add(net/2), depth, "").Add(net / 2)
	sp.SetTraceID(t.id)
	sp.SetSpanID(id)
	sp.SetParentSpanID(parent)
	sp.SetKind(ptrace.SpanKindClient)
	attrs := sp.Attributes()
	attrs.EnsureCapacity(10)
	host := callee.Name + "." + g.m.Config.Namespace + ".svc.cluster.local"
	if callee.RPC {
		sp.SetName(callee.rpcSvc + "/" + route)
		attrs.PutStr("rpc.system", "grpc")
		attrs.PutStr("rpc.service", callee.rpcSvc)
		attrs.PutStr("rpc.method", route)
		attrs.PutStr("http.method", "POST")
		attrs.PutStr("http.route", "/"+callee.rpcSvc+"/"+route)
	} else {
		sp.SetName("GET " + route)
		attrs.PutStr("http.method", "GET")
		attrs.PutStr("http.route", route)
		attrs.PutStr("http.url", "http://"+host+route)
	}
	attrs.PutInt("http.status_code", 200)
	attrs.PutStr("net.peer.name", host)
	attrs.PutInt("net.peer.port", 8080)
	attrs.PutStr("peer.service", callee.Name)
	attrs.PutStr("net.transport", "ip_tcp")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	return end
}

var dbStatements = map[string][]string{
	"postgresql": {"SELECT * FROM products WHERE id = $1", "INSERT INTO orders (id, user_id, total) VALUES ($1, $2, $3)", "UPDATE accounts SET balance = balance - $1 WHERE id = $2"},
	"redis":      {"HGETALL cart:{user}", "HSET cart:{user} {item} {qty}", "DEL cart:{user}"},
}

// db emits a database client span of pod.
func (g *Generator) db(t *traceCtx, pod *Pod, parent pcommon.SpanID, start time.Time) time.Time {
	sp := t.b.span(pod)
	t.spans++
	sys := pod.Service.DB
	stmts := dbStatements[sys]
	stmt := stmts[g.rng.IntN(len(stmts))]
	end := start.Add(g.selfTime(0.7))
	sp.SetTraceID(t.id)
	sp.SetSpanID(g.spanID())
	sp.SetParentSpanID(parent)
	sp.SetKind(ptrace.SpanKindClient)
	op := stmt[:indexByte(stmt, ' ')]
	sp.SetName(op + " " + pod.Service.Name)
	attrs := sp.Attributes()
	attrs.EnsureCapacity(10)
	attrs.PutStr("db.system", sys)
	attrs.PutStr("db.name", pod.Service.Name)
	attrs.PutStr("db.statement", stmt)
	attrs.PutStr("db.operation", op)
	attrs.PutStr("db.user", pod.Service.Name+"_app")
	attrs.PutStr("net.peer.name", sys+"."+g.m.Config.Namespace+".svc.cluster.local")
	port := int64(5432)
	if sys == "redis" {
		port = 6379
	}
	attrs.PutInt("net.peer.port", port)
	attrs.PutStr("net.transport", "ip_tcp")
	attrs.PutStr("peer.service", sys)
	attrs.PutInt("db.rows_affected", int64(g.rng.IntN(20)))
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	return end
}

// logs attaches g.logsPerTrace records to the trace's server spans.
func (g *Generator) logs(t *traceCtx) int {
	for i := range g.logsPerTrace {
		k := g.rng.IntN(len(t.servers))
		if i == 0 {
			k = 0
		}
		sp, pod := t.servers[k], t.pods[k]
		lr := t.b.log(pod)
		ts := sp.StartTimestamp() + pcommon.Timestamp(g.rng.Int64N(int64(max(sp.EndTimestamp()-sp.StartTimestamp(), 1))))
		lr.SetTimestamp(ts)
		lr.SetObservedTimestamp(ts)
		lr.SetTraceID(t.id)
		lr.SetSpanID(sp.SpanID())
		lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
		if sp.Status().Code() == ptrace.StatusCodeError {
			lr.SetSeverityNumber(plog.SeverityNumberError)
			lr.SetSeverityText("ERROR")
			lr.Body().SetStr(pod.Service.Name + ": request failed: upstream returned 500")
		} else {
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.SetSeverityText("INFO")
			lr.Body().SetStr(pod.Service.Name + ": handled " + sp.Name())
		}
		lr.Attributes().PutStr("logger", pod.Service.Name+".handler")
		lr.Attributes().PutStr("enduser.id", t.userID)
		if v, ok := sp.Attributes().Get("order.id"); ok {
			lr.Attributes().PutStr("order.id", v.Str())
		}
	}
	return g.logsPerTrace
}

// selfTime draws a latency around baseMs (a long-tailed distribution).
func (g *Generator) selfTime(baseMs float64) time.Duration {
	ms := baseMs * (0.5 + 0.5*g.rng.ExpFloat64())
	return time.Duration(ms * float64(time.Millisecond))
}

func (g *Generator) traceID() pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], g.rng.Uint64())
	binary.BigEndian.PutUint64(id[8:], g.rng.Uint64()|1)
	return id
}

func (g *Generator) spanID() pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], g.rng.Uint64()|1)
	return id
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return len(s)
}
