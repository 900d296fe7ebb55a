package otlpconv

import (
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// sampleLogs is one resource with three records: a full one, a map body
// without time (observed time only), and an empty one.
func sampleLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(AttrServiceName, "checkout")
	res.PutStr(AttrPodUID, "uid-1")
	res.PutStr(AttrContainerID, "docker://ABCDEF0123456789")
	res.PutStr(AttrContainerName, "app")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("lib")
	sl.Scope().SetVersion("1.0")

	full := sl.LogRecords().AppendEmpty()
	full.SetTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 11, 23, 23, 59, 59, 900, time.UTC)))
	full.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 11, 24, 0, 0, 1, 0, time.UTC)))
	full.SetSeverityNumber(plog.SeverityNumberError)
	full.SetSeverityText("ERROR")
	full.Body().SetStr("payment failed")
	full.SetTraceID(pcommon.TraceID{1, 2})
	full.SetSpanID(pcommon.SpanID{3})
	full.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
	full.SetEventName("payment.failure")
	full.Attributes().PutInt("attempt", 3)
	full.SetDroppedAttributesCount(2)

	m := sl.LogRecords().AppendEmpty()
	m.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)))
	m.Body().SetEmptyMap().PutStr("k", "v")
	m.SetSeverityNumber(plog.SeverityNumber(300)) // out of the UInt8 range

	sl.LogRecords().AppendEmpty() // no time at all
	return ld
}

func TestAppendLogs(t *testing.T) {
	var b LogBatch
	now := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	b.Now = func() time.Time { return now }
	b.AppendLogs("tenant-a", sampleLogs())
	if b.Len() != 3 {
		t.Fatalf("len %d", b.Len())
	}
	cols := b.Columns()
	if len(cols) != len(LogColumns) {
		t.Fatalf("%d columns, %d names", len(cols), len(LogColumns))
	}
	for i, col := range cols {
		if n := reflect.ValueOf(col).Len(); n != 3 {
			t.Errorf("column %s has %d rows", LogColumns[i], n)
		}
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"tenant", b.TenantID[0], "tenant-a"},
		{"service", b.ServiceName[0], "checkout"},
		{"date is UTC day of time", b.Date[0].Format(time.DateOnly), "2026-11-23"},
		{"time", b.TimeNs[0], uint64(time.Date(2026, 11, 23, 23, 59, 59, 900, time.UTC).UnixNano())},
		{"severity", b.SeverityNumber[0], uint8(plog.SeverityNumberError)},
		{"severity text", b.SeverityText[0], "ERROR"},
		{"body", b.Body[0], "payment failed"},
		{"body type", b.BodyType[0], TypeString},
		{"trace id", b.TraceID[0], string([]byte{1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})},
		{"span id", b.SpanID[0], string([]byte{3, 0, 0, 0, 0, 0, 0, 0})},
		{"flags", b.Flags[0], uint32(1)},
		{"event name", b.EventName[0], "payment.failure"},
		{"scope", b.ScopeName[0] + "/" + b.ScopeVersion[0], "lib/1.0"},
		{"container id normalized", b.ContainerID[0], "abcdef0123456789"},
		{"pod uid", b.PodUID[0], "uid-1"},
		{"attr", DecodeAttrs(b.AttrKeys[0], b.AttrValues[0], b.AttrTypes[0])["attempt"], int64(3)},
		{"resource", DecodeAttrs(b.ResourceKeys[0], b.ResourceValues[0], b.ResourceTypes[0])[AttrContainerName], "app"},
		{"dropped", b.DroppedAttributesCount[0], uint32(2)},
		{"record id size", len(b.RecordID[0]), 16},
		{"map body", b.Body[1], `{"k":"v"}`},
		{"map body type", b.BodyType[1], TypeMap},
		{"no time: filed under observed", b.Timestamp[1], time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)},
		{"no time stays 0", b.TimeNs[1], uint64(0)},
		{"severity clamped", b.SeverityNumber[1], uint8(255)},
		{"unset trace id is zeros", b.TraceID[1], string(make([]byte, 16))},
		{"no times: observed is now", b.ObservedNs[2], uint64(now.UnixNano())},
		{"no times: filed now", b.Timestamp[2], now},
		{"empty body", b.BodyType[2], TypeEmpty},
		{"no attrs: empty not nil", b.AttrKeys[2] != nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#v, want %#v", c.what, c.got, c.want)
		}
	}
}

func TestLogRecordIDs(t *testing.T) {
	ids := func(tenant string, ld plog.Logs) []string {
		var b LogBatch
		b.Now = func() time.Time { return time.Unix(1, 0) }
		b.AppendLogs(tenant, ld)
		return b.RecordID
	}
	base := ids("t", sampleLogs())
	if again := ids("t", sampleLogs()); !reflect.DeepEqual(base, again) {
		t.Error("the same message gave different ids (redelivery would duplicate)")
	}
	seen := map[string]bool{}
	for _, id := range base {
		if seen[id] {
			t.Error("two records of one message share an id")
		}
		seen[id] = true
	}
	if other := ids("u", sampleLogs()); other[0] == base[0] {
		t.Error("tenant not part of the id")
	}

	// Two identical records in one message stay distinct.
	ld := plog.NewLogs()
	recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for range 2 {
		r := recs.AppendEmpty()
		r.SetTimestamp(1)
		r.Body().SetStr("same")
	}
	if twin := ids("t", ld); twin[0] == twin[1] {
		t.Error("identical records of one message collapsed")
	}

	changes := map[string]func(plog.LogRecord){
		"body":     func(r plog.LogRecord) { r.Body().SetStr("other") },
		"severity": func(r plog.LogRecord) { r.SetSeverityNumber(plog.SeverityNumberInfo) },
		"attr":     func(r plog.LogRecord) { r.Attributes().PutInt("attempt", 4) },
		"time":     func(r plog.LogRecord) { r.SetTimestamp(r.Timestamp() + 1) },
		"span":     func(r plog.LogRecord) { r.SetSpanID(pcommon.SpanID{9}) },
	}
	for name, change := range changes {
		ld := sampleLogs()
		change(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0))
		if got := ids("t", ld); got[0] == base[0] {
			t.Errorf("changing the %s kept the id", name)
		}
	}
	ld = sampleLogs()
	ld.ResourceLogs().At(0).Resource().Attributes().PutStr("host.name", "h")
	if got := ids("t", ld); got[0] == base[0] {
		t.Error("resource not part of the id")
	}
}

func TestMissingServiceNameLogs(t *testing.T) {
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().SetTimestamp(1)
	var b LogBatch
	b.AppendLogs("t", ld)
	if b.ServiceName[0] != "unknown_service" {
		t.Errorf("service %q", b.ServiceName[0])
	}
}

func BenchmarkAppendLogs(b *testing.B) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(AttrServiceName, "svc")
	rl.Resource().Attributes().PutStr(AttrPodName, "pod")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := range 100 {
		r := recs.AppendEmpty()
		r.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + i))
		r.Body().SetStr("GET /api/cart 200 in 12ms user=42 request_id=abcdef")
		r.SetTraceID(pcommon.TraceID{byte(i)})
		for j := range 8 {
			r.Attributes().PutStr("key"+string(rune('a'+j)), "value")
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		var batch LogBatch
		batch.AppendLogs("t", ld)
	}
}
