package chstore_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/internal/rca"
	"github.com/aftertrace/aftertrace/internal/schema"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// The same spans and logs, written through the same insert path, read the
// same on one server and on a 2 shards × 2 replicas cluster: trace by id
// (every trace, its spans on one shard), trace search with paging, the
// service list and log search.
func TestClusterAnswersEqualSingleNode(t *testing.T) {
	env := testenv.Get(t)
	c := testenv.NewClickHouseCluster(t, 2, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := schema.MigrateClickHouse(ctx, schema.ClickHouseOptions{Addr: c.Nodes[0].Addr(), Database: "aftertrace", Cluster: c.Name}); err != nil {
		t.Fatalf("migrate cluster: %v", err)
	}
	open := func(addr, db, cluster string) *chstore.Store {
		cfg := chstore.DefaultConfig()
		cfg.Addr, cfg.Database, cfg.Cluster, cfg.MaxOpenConns = addr, db, cluster, 4
		s, err := chstore.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	single := open(env.ClickHouseAddr, env.ClickHouseDB, "")
	cluster := open(c.Nodes[0].Addr(), "aftertrace", c.Name)
	readers := map[string]*chstore.Store{"single": single, "cluster": cluster, "cluster via another node": open(c.Nodes[3].Addr(), "aftertrace", c.Name)}

	const tenant = "cluster-eq"
	now := time.Now().UTC().Truncate(time.Millisecond)
	td := ptrace.NewTraces()
	ld := plog.NewLogs()
	var ids [][16]byte
	for i := range 40 {
		var id [16]byte
		copy(id[:], fmt.Sprintf("trace-%010d", i))
		ids = append(ids, id)
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", i%3))
		rs.Resource().Attributes().PutStr("k8s.pod.name", fmt.Sprintf("pod-%d", i%5))
		rs.Resource().Attributes().PutStr("k8s.pod.uid", fmt.Sprintf("uid-%d", i%5))
		ss := rs.ScopeSpans().AppendEmpty()
		start := now.Add(-time.Duration(i) * time.Minute)
		for j := range 3 {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID(id))
			sp.SetSpanID(pcommon.SpanID{byte(i), byte(j), 1, 2, 3, 4, 5, 6})
			if j > 0 {
				sp.SetParentSpanID(pcommon.SpanID{byte(i), 0, 1, 2, 3, 4, 5, 6})
			}
			sp.SetName(fmt.Sprintf("op-%d", j))
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(j) * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(10+j) * time.Millisecond)))
			if i%7 == 0 && j == 2 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
		}
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", i%3))
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(start))
		lr.SetTraceID(pcommon.TraceID(id))
		lr.Body().SetStr(fmt.Sprintf("line %d of trace %x", i, id))
	}
	for _, s := range []*chstore.Store{single, cluster} {
		var sb otlpconv.SpanBatch
		sb.AppendTraces(tenant, td)
		if err := s.InsertSpans(ctx, &sb); err != nil {
			t.Fatalf("insert spans: %v", err)
		}
		var lb otlpconv.LogBatch
		lb.AppendLogs(tenant, ld)
		if err := s.InsertLogs(ctx, &lb); err != nil {
			t.Fatalf("insert logs: %v", err)
		}
	}

	for _, shard := range []int{0, 2} { // shard 1's and shard 2's first replica
		local := open(c.Nodes[shard].Addr(), "aftertrace", "")
		var n uint64
		if err := local.Conn().QueryRow(ctx, "SELECT count() FROM spans_local").Scan(&n); err != nil || n == 0 || n == 120 {
			t.Errorf("node %d holds %d of 120 spans (%v): want a share", shard, n, err)
		}
	}

	type answer struct {
		traces   map[string][]chstore.Span
		pages    [][]chstore.TraceSummary
		services []chstore.ServiceSummary
		logs     []chstore.LogRecord
	}
	read := func(s *chstore.Store) answer {
		a := answer{traces: map[string][]chstore.Span{}}
		for _, id := range ids {
			spans, err := s.GetTrace(ctx, tenant, id)
			if err != nil {
				t.Fatalf("get trace %x: %v", id, err)
			}
			a.traces[hex.EncodeToString(id[:])] = spans
		}
		q := chstore.TraceQuery{TenantID: tenant, Start: now.Add(-time.Hour), End: now.Add(time.Minute), Limit: 15}
		for {
			page, err := s.SearchTraces(ctx, q)
			if err != nil {
				t.Fatalf("search: %v", err)
			}
			a.pages = append(a.pages, page)
			if len(page) < q.Limit {
				break
			}
			last := page[len(page)-1]
			q.Cursor = &chstore.TraceCursor{StartNs: last.StartNs, TraceID: last.TraceID}
		}
		var err error
		if a.services, err = s.ListServices(ctx, tenant, now.Add(-time.Hour), now.Add(time.Minute)); err != nil {
			t.Fatalf("services: %v", err)
		}
		if a.logs, err = s.SearchLogs(ctx, chstore.LogQuery{TenantID: tenant, Start: now.Add(-time.Hour), End: now.Add(time.Minute), Limit: 100}); err != nil {
			t.Fatalf("logs: %v", err)
		}
		return a
	}
	want := read(single)
	if len(want.logs) != 40 || len(want.pages) != 3 {
		t.Fatalf("single node: %d logs, %d pages", len(want.logs), len(want.pages))
	}
	for name, s := range readers {
		if name == "single" {
			continue
		}
		got := read(s)
		for id, spans := range want.traces {
			if !reflect.DeepEqual(got.traces[id], spans) {
				t.Errorf("%s: trace %s = %d spans, single node %d", name, id, len(got.traces[id]), len(spans))
			}
		}
		if !reflect.DeepEqual(got.pages, want.pages) {
			t.Errorf("%s: search pages differ", name)
		}
		if !reflect.DeepEqual(got.services, want.services) {
			t.Errorf("%s: services %v, single node %v", name, got.services, want.services)
		}
		if !reflect.DeepEqual(got.logs, want.logs) {
			t.Errorf("%s: %d logs, single node %d", name, len(got.logs), len(want.logs))
		}
	}

	// Container events, their links to traces, the link candidates the
	// correlator reads and a root-cause analysis answer the same too.
	const container = "cccccccccccc0000000000000000000000000000000000000000000000000000"
	var evs []events.Event
	var links []chstore.EventLink
	for i := range 10 {
		at := now.Add(-time.Duration(i*4) * time.Minute)
		ev := events.Event{
			TenantID: tenant, ID: events.NewID(tenant, "test", []byte(fmt.Sprint(i))), TimeUnixNano: uint64(at.UnixNano()),
			Source: events.SourceFalco, Type: "falco_alert", Severity: 4, Reason: fmt.Sprintf("rule %d", i%3),
			ContainerID: container, PodUID: "uid-1", PodName: "pod-1", Namespace: "shop", ExitCode: events.ExitCodeUnknown,
		}
		evs = append(evs, ev)
		for _, id := range ids[i : i+3] {
			links = append(links, chstore.EventLink{TenantID: tenant, EventID: ev.ID, EventTimeNs: ev.TimeUnixNano, TraceID: id,
				TraceStartNs: ev.TimeUnixNano, MatchKind: chstore.MatchContainer, SpanCount: 3, RootService: "svc-0", RootName: "op-0",
				LinkedAtNs: ev.TimeUnixNano})
		}
	}
	for _, s := range []*chstore.Store{single, cluster} {
		if err := s.InsertEvents(ctx, evs); err != nil {
			t.Fatalf("insert events: %v", err)
		}
		if err := s.InsertEventLinks(ctx, links); err != nil {
			t.Fatalf("insert links: %v", err)
		}
	}
	type eventAnswer struct {
		events     []events.Event
		links      map[events.ID][]chstore.EventLink
		ofTrace    [][]chstore.TraceEvent
		candidates []chstore.LinkCandidate
		rca        []rca.Candidate
	}
	readEvents := func(s *chstore.Store) eventAnswer {
		var a eventAnswer
		var err error
		if a.events, err = s.SearchEvents(ctx, chstore.EventQuery{TenantID: tenant, Start: now.Add(-time.Hour), End: now.Add(time.Minute), Limit: 100}); err != nil {
			t.Fatalf("search events: %v", err)
		}
		evIDs := make([]events.ID, len(evs))
		for i, ev := range evs {
			evIDs[i] = ev.ID
		}
		if a.links, _, err = s.LinksOfEvents(ctx, tenant, evIDs, 10, 100); err != nil {
			t.Fatalf("links of events: %v", err)
		}
		for _, id := range ids[:12] {
			te, err := s.EventsOfTrace(ctx, tenant, id, 100)
			if err != nil {
				t.Fatalf("events of trace: %v", err)
			}
			a.ofTrace = append(a.ofTrace, te)
		}
		if a.candidates, err = s.FindLinkCandidates(ctx, tenant, chstore.LinkTarget{Kind: chstore.MatchPodUID, Value: "uid-1"},
			uint64(now.Add(-time.Hour).UnixNano()), uint64(now.Add(time.Minute).UnixNano()), 100); err != nil {
			t.Fatalf("link candidates: %v", err)
		}
		cfg := rca.DefaultConfig()
		res, err := rca.New(rca.StoreSource{Store: s, NoCache: true}, cfg).Analyze(ctx, rca.Query{TenantID: tenant, Start: now.Add(-10 * time.Minute), End: now})
		if err != nil {
			t.Fatalf("rca: %v", err)
		}
		a.rca = res.Candidates
		return a
	}
	wantEv := readEvents(single)
	if len(wantEv.events) != 10 || len(wantEv.links) != 10 || len(wantEv.candidates) == 0 {
		t.Fatalf("single node: %d events, links of %d events, %d candidates", len(wantEv.events), len(wantEv.links), len(wantEv.candidates))
	}
	t.Logf("single node: %d events, links of %d events, %d link candidates, %d root-cause candidates", len(wantEv.events), len(wantEv.links), len(wantEv.candidates), len(wantEv.rca))
	for name, s := range readers {
		if name == "single" {
			continue
		}
		got := readEvents(s)
		if !reflect.DeepEqual(got.events, wantEv.events) {
			t.Errorf("%s: %d events differ from the single node's %d", name, len(got.events), len(wantEv.events))
		}
		if !reflect.DeepEqual(got.links, wantEv.links) {
			t.Errorf("%s: event links differ", name)
		}
		if !reflect.DeepEqual(got.ofTrace, wantEv.ofTrace) {
			t.Errorf("%s: events of traces differ", name)
		}
		if !reflect.DeepEqual(got.candidates, wantEv.candidates) {
			t.Errorf("%s: link candidates %v, single node %v", name, got.candidates, wantEv.candidates)
		}
		if !reflect.DeepEqual(got.rca, wantEv.rca) {
			t.Errorf("%s: root causes %+v, single node %+v", name, got.rca, wantEv.rca)
		}
	}

	// Retention on a cluster: the partitions are listed from every shard,
	// and a drop empties the partition on every node.
	parts, err := cluster.ListPartitions(ctx)
	if err != nil {
		t.Fatalf("list partitions: %v", err)
	}
	var spanRows uint64
	for _, p := range parts {
		if p.Table == "spans" {
			spanRows += p.Rows
		}
	}
	if spanRows != 120 {
		t.Errorf("cluster partitions of spans hold %d rows, want 120", spanRows)
	}
	for _, p := range parts {
		if p.Table != "spans" {
			continue
		}
		if err := cluster.DropPartition(ctx, "spans", p.Date, p.Class); err != nil {
			t.Fatalf("drop partition: %v", err)
		}
	}
	for i, n := range c.Nodes {
		local := open(n.Addr(), "aftertrace", "")
		var rows uint64
		if err := local.Conn().QueryRow(ctx, "SELECT count() FROM spans_local").Scan(&rows); err != nil || rows != 0 {
			t.Errorf("node %d: %d spans left after the drops (%v)", i, rows, err)
		}
	}
}
