package chstore_test

import (
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

const fullContainerID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// logFixture is what sampleLogData writes: 2 services, 10 records each,
// one second apart from base, alternating severities, a trace on the
// records of "api" with an even index.
func sampleLogData() plog.Logs {
	ld := plog.NewLogs()
	for si, svc := range []string{"api", "db"} {
		rl := ld.ResourceLogs().AppendEmpty()
		res := rl.Resource().Attributes()
		res.PutStr(otlpconv.AttrServiceName, svc)
		res.PutStr(otlpconv.AttrPodUID, "pod-"+svc)
		if svc == "api" {
			res.PutStr(otlpconv.AttrContainerID, "containerd://"+fullContainerID)
		}
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("logger")
		sl.Scope().SetVersion("2.0")
		for i := range 10 {
			r := sl.LogRecords().AppendEmpty()
			r.SetTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(i)*time.Second + time.Duration(si))))
			r.SetObservedTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Minute)))
			sev := plog.SeverityNumberInfo
			if i%2 == 1 {
				sev = plog.SeverityNumberError
			}
			r.SetSeverityNumber(sev)
			r.SetSeverityText(sev.String())
			r.Body().SetStr(fmt.Sprintf("%s line %d: 100%% done_ok Ünïcode", svc, i))
			r.Attributes().PutInt("i", int64(i))
			if svc == "api" && i%2 == 0 {
				r.SetTraceID(logTrace)
				r.SetSpanID(pcommon.SpanID{byte(i + 1)})
			}
		}
	}
	return ld
}

var logTrace = pcommon.TraceID{0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}

func insertLogs(t *testing.T, s *chstore.Store, tenant string, ld plog.Logs) {
	t.Helper()
	var b otlpconv.LogBatch
	b.AppendLogs(tenant, ld)
	if err := s.InsertLogs(ctx(t), &b); err != nil {
		t.Fatalf("insert logs: %v", err)
	}
}

func TestSearchLogs(t *testing.T) {
	s := openStore(t)
	if err := s.Conn().Exec(ctx(t), "SYSTEM STOP MERGES logs"); err != nil {
		t.Fatal(err)
	}
	insertLogs(t, s, "t1", sampleLogData())
	insertLogs(t, s, "t1", sampleLogData()) // a re-delivery: same ids
	insertLogs(t, s, "t2", sampleLogData()) // another tenant
	if n := countRows(t, s, "SELECT count() FROM logs WHERE tenant_id = 't1'"); n != 40 {
		t.Fatalf("%d rows stored for t1, want 40 (duplicates kept until merge)", n)
	}

	window := func(q chstore.LogQuery) chstore.LogQuery {
		q.TenantID = "t1"
		if q.Start.IsZero() {
			q.Start, q.End = base.Add(-time.Hour), base.Add(time.Hour)
		}
		if q.Limit == 0 {
			q.Limit = 100
		}
		return q
	}
	tests := []struct {
		name  string
		q     chstore.LogQuery
		want  int
		check func(t *testing.T, got []chstore.LogRecord)
	}{
		{name: "all, deduped", q: window(chstore.LogQuery{}), want: 20},
		{name: "copies short of a page: LIMIT BY fallback", q: window(chstore.LogQuery{Limit: 10}), want: 10, check: func(t *testing.T, got []chstore.LogRecord) {
			seen := map[[16]byte]bool{}
			for i, r := range got {
				if seen[r.RecordID] || r.Body == "" || (i > 0 && r.SortNs() > got[i-1].SortNs()) {
					t.Fatalf("record %d: duplicate, empty or out of order", i)
				}
				seen[r.RecordID] = true
			}
		}},
		{name: "service", q: window(chstore.LogQuery{Service: "db"}), want: 10},
		{name: "severity", q: window(chstore.LogQuery{SeverityMin: int(plog.SeverityNumberError)}), want: 10},
		{name: "trace in window", q: window(chstore.LogQuery{TraceID: logTrace}), want: 5},
		{name: "trace without window uses the index", q: chstore.LogQuery{TenantID: "t1", TraceID: logTrace}, want: 5},
		{name: "unknown trace", q: chstore.LogQuery{TenantID: "t1", TraceID: [16]byte{9}}, want: 0},
		{name: "trace of another tenant", q: chstore.LogQuery{TenantID: "t3", TraceID: logTrace}, want: 0},
		{name: "span", q: window(chstore.LogQuery{SpanID: [8]byte{3}}), want: 1},
		{name: "container full", q: window(chstore.LogQuery{ContainerID: fullContainerID}), want: 10},
		{name: "container runtime form", q: window(chstore.LogQuery{ContainerID: "containerd://" + fullContainerID}), want: 10},
		{name: "container 12-char prefix", q: window(chstore.LogQuery{ContainerID: fullContainerID[:12]}), want: 10},
		{name: "container other", q: window(chstore.LogQuery{ContainerID: "ffffffffffff"}), want: 0},
		{name: "pod", q: window(chstore.LogQuery{PodUID: "pod-db"}), want: 10},
		{name: "q case-insensitive", q: window(chstore.LogQuery{Q: "API LINE 3"}), want: 1},
		{name: "q unicode case", q: window(chstore.LogQuery{Q: "üNÏCODE"}), want: 20},
		{name: "q percent is literal", q: window(chstore.LogQuery{Q: "100%"}), want: 20},
		{name: "q underscore is literal", q: window(chstore.LogQuery{Q: "e_o"}), want: 20},
		{name: "q wildcard does not match", q: window(chstore.LogQuery{Q: "line%done"}), want: 0},
		{name: "q with quote", q: window(chstore.LogQuery{Q: `x' OR '1'='1`}), want: 0},
		{name: "combined", q: window(chstore.LogQuery{Service: "api", SeverityMin: int(plog.SeverityNumberError), Q: "line"}), want: 5},
		{name: "window excludes", q: window(chstore.LogQuery{Start: base.Add(5 * time.Second), End: base.Add(6 * time.Second)}), want: 3},
		{name: "inverted window", q: window(chstore.LogQuery{Start: base.Add(time.Hour), End: base}), want: 0},
		{name: "newest first, fields", q: window(chstore.LogQuery{Service: "api", Limit: 2}), want: 2, check: func(t *testing.T, got []chstore.LogRecord) {
			r := got[0]
			if r.TimeNs != uint64(base.Add(9*time.Second).UnixNano()) || got[1].TimeNs >= r.TimeNs {
				t.Errorf("order: %d then %d", r.TimeNs, got[1].TimeNs)
			}
			if r.Body != "api line 9: 100% done_ok Ünïcode" || r.BodyType != otlpconv.TypeString {
				t.Errorf("body %q type %d", r.Body, r.BodyType)
			}
			if r.SeverityNumber != uint8(plog.SeverityNumberError) || r.SeverityText != "Error" {
				t.Errorf("severity %d %q", r.SeverityNumber, r.SeverityText)
			}
			if r.ObservedNs != uint64(base.Add(time.Minute).UnixNano()) {
				t.Errorf("observed %d", r.ObservedNs)
			}
			if r.Attributes["i"] != int64(9) || r.Resource[otlpconv.AttrServiceName] != "api" {
				t.Errorf("attrs %v resource %v", r.Attributes, r.Resource)
			}
			if r.ContainerID != fullContainerID || r.K8sPodUID != "pod-api" || r.Service != "api" {
				t.Errorf("promoted: %q %q %q", r.ContainerID, r.K8sPodUID, r.Service)
			}
			if r.ScopeName != "logger" || r.ScopeVersion != "2.0" {
				t.Errorf("scope %q %q", r.ScopeName, r.ScopeVersion)
			}
			if r.TraceID != [16]byte{} || r.SpanID != [8]byte{} {
				t.Errorf("record without trace: %x %x", r.TraceID, r.SpanID)
			}
			if got[1].TraceID != [16]byte(logTrace) || got[1].SpanID != [8]byte{9} {
				t.Errorf("trace ids %x %x", got[1].TraceID, got[1].SpanID)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.SearchLogs(ctx(t), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Fatalf("%d records, want %d", len(got), tc.want)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}

	t.Run("no window without trace", func(t *testing.T) {
		_, err := s.SearchLogs(ctx(t), chstore.LogQuery{TenantID: "t1"})
		if apperr.KindOf(err) != apperr.KindInvalid {
			t.Fatalf("err %v, want invalid", err)
		}
	})

	t.Run("pagination visits each record once", func(t *testing.T) {
		seen := map[[16]byte]bool{}
		var cur *chstore.LogCursor
		last := uint64(1<<63 - 1)
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("too many pages")
			}
			got, err := s.SearchLogs(ctx(t), window(chstore.LogQuery{Limit: 3, Cursor: cur}))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got {
				if seen[r.RecordID] {
					t.Fatalf("record %s twice", hex.EncodeToString(r.RecordID[:]))
				}
				if r.SortNs() > last {
					t.Fatalf("not newest first")
				}
				last = r.SortNs()
				seen[r.RecordID] = true
			}
			if len(got) < 3 {
				break
			}
			l := got[len(got)-1]
			cur = &chstore.LogCursor{TimeNs: l.SortNs(), RecordID: l.RecordID}
		}
		if len(seen) != 20 {
			t.Fatalf("%d records seen, want 20", len(seen))
		}
	})
}

func TestSearchLogsEqualTimes(t *testing.T) {
	// Records of one nanosecond are ordered and paged by record id.
	s := openStore(t)
	ld := plog.NewLogs()
	recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for range 7 {
		r := recs.AppendEmpty()
		r.SetObservedTimestamp(pcommon.NewTimestampFromTime(base)) // time unset: observed time sorts
		r.Body().SetEmptyMap().PutInt("n", 1)
	}
	insertLogs(t, s, "t1", ld)
	seen := map[[16]byte]bool{}
	var cur *chstore.LogCursor
	for range 10 {
		got, err := s.SearchLogs(ctx(t), chstore.LogQuery{TenantID: "t1", Start: base, End: base, Limit: 2, Cursor: cur})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got {
			if seen[r.RecordID] {
				t.Fatal("record twice")
			}
			seen[r.RecordID] = true
			if r.Body != `{"n":1}` || r.BodyType != otlpconv.TypeMap || r.TimeNs != 0 {
				t.Errorf("record %+v", r)
			}
		}
		if len(got) < 2 {
			break
		}
		l := got[len(got)-1]
		cur = &chstore.LogCursor{TimeNs: l.SortNs(), RecordID: l.RecordID}
	}
	if len(seen) != 7 {
		t.Fatalf("%d records, want 7", len(seen))
	}
}
