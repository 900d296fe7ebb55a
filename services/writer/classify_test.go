package writer

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// tagClassifier gives every row a class naming its signal.
type tagClassifier struct{}

func (tagClassifier) ClassifySpans(b *otlpconv.SpanBatch) { fill(b.RetentionClass, "d1") }
func (tagClassifier) ClassifyLogs(b *otlpconv.LogBatch)   { fill(b.RetentionClass, "d2") }
func (tagClassifier) ClassifyMetrics(b *otlpconv.MetricBatch) {
	fill(b.RetentionClass, "d3")
}

func fill(s []string, v string) {
	for i := range s {
		s[i] = v
	}
}

// classStore records the classes it was asked to insert.
type classStore struct{ classes []string }

func (c *classStore) InsertSpans(_ context.Context, b *otlpconv.SpanBatch) error {
	c.classes = append(c.classes, b.RetentionClass...)
	return nil
}

func (c *classStore) InsertLogs(_ context.Context, b *otlpconv.LogBatch) error {
	c.classes = append(c.classes, b.RetentionClass...)
	return nil
}

func (c *classStore) InsertMetrics(_ context.Context, b *otlpconv.MetricBatch) error {
	c.classes = append(c.classes, b.RetentionClass...)
	return nil
}

// TestSinksClassifyBeforeInsert: each sink sets every row's retention class
// through the classifier right before the insert; without one rows keep
// the default class.
func TestSinksClassifyBeforeInsert(t *testing.T) {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{1})
	tb, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("x")
	lb, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	md := pmetric.NewMetrics()
	g := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("m")
	g.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
	mb, _ := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)

	for _, c := range []struct {
		cls  Classifier
		want []string
	}{{tagClassifier{}, []string{"d1", "d2", "d3"}}, {nil, []string{"default", "default", "default"}}} {
		st := &classStore{}
		sinks := []struct {
			s    sink
			data []byte
		}{
			{&traceSink{store: st, classify: c.cls}, tb},
			{&logSink{store: st, classify: c.cls}, lb},
			{&metricSink{store: st, classify: c.cls}, mb},
		}
		for _, s := range sinks {
			if _, err := s.s.Add("t1", s.data); err != nil {
				t.Fatal(err)
			}
			if err := s.s.Insert(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if len(st.classes) != 3 || st.classes[0] != c.want[0] || st.classes[1] != c.want[1] || st.classes[2] != c.want[2] {
			t.Errorf("classes %v, want %v", st.classes, c.want)
		}
	}
}
