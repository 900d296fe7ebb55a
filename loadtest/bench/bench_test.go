package bench

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/loadtest/loadgen"
)

func TestSummarize(t *testing.T) {
	ms := make([]float64, 100)
	for i := range ms {
		ms[i] = float64(100 - i)
	}
	l := summarize(ms, 2)
	if l.N != 100 || l.P50 != 50 || l.P99 != 99 || l.Max != 100 || l.Errors != 2 {
		t.Fatalf("summarize = %+v", l)
	}
	if (summarize(nil, 0) != Latency{}) {
		t.Fatal("empty summary not zero")
	}
}

func TestJudge(t *testing.T) {
	cfg := StepConfig{Rate: 1000, Duration: 10 * time.Second, BatchSpans: 500}
	ok := StepResult{Client: loadgen.Stats{Requests: 100, SentSpans: 10000, AckedSpans: 10000}, Stored: 10000}
	tests := []struct {
		name string
		mod  func(*StepResult)
		want string
	}{
		{"ok", func(*StepResult) {}, "ok"},
		{"rejected", func(r *StepResult) { r.Client.RejSpans, r.Client.Failed = 10, 1 }, "rejected"},
		{"short", func(r *StepResult) { r.Client.AckedSpans = 5000 }, "acked"},
		{"late", func(r *StepResult) { r.Client.Late = 50 }, "late"},
		{"lag", func(r *StepResult) { r.LagEnd, r.BacklogEndSec = 100, 10 }, "lag grew"},
		{"lost", func(r *StepResult) { r.Stored = 9000 }, "stored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.mod(&r)
			held, why := judge(r, cfg)
			if held != (tt.want == "ok") || !strings.Contains(why, tt.want) {
				t.Fatalf("judge = %v %q, want %q", held, why, tt.want)
			}
		})
	}
}

func TestShiftedBatch(t *testing.T) {
	m, err := loadgen.NewModel(loadgen.DefaultModelConfig())
	if err != nil {
		t.Fatal(err)
	}
	bs := BuildBatches(loadgen.NewGenerator(m, 1), "t", 1, 300, 100, time.Unix(1_700_000_000, 0), time.Millisecond)
	orig := bs[0]
	if orig.Len() < 300 {
		t.Fatalf("batch has %d rows", orig.Len())
	}
	mask := roundMask(1, 3)
	s := shifted(orig, mask, time.Hour)
	if s.Len() != orig.Len() || s.StartNs[0] != orig.StartNs[0]+uint64(time.Hour) || s.TraceID[0] == orig.TraceID[0] {
		t.Fatal("shifted batch did not move times and ids")
	}
	if (s.TraceID[0] == s.TraceID[1]) != (orig.TraceID[0] == orig.TraceID[1]) {
		t.Fatal("shifting broke trace grouping")
	}
	if shifted(orig, roundMask(1, 0), 0).TraceID[0] != orig.TraceID[0] {
		t.Fatal("round 0 must keep the ids")
	}
}

func TestCPU(t *testing.T) {
	if procCPU(os.Getpid()) < 0 || selfCPU() <= 0 {
		t.Fatal("no CPU accounting")
	}
	if procCPU(-1) != 0 {
		t.Fatal("bad pid must read 0")
	}
}

func TestNextRate(t *testing.T) {
	tests := []struct {
		name                       string
		rate, best, failed, factor float64
		want                       float64
		more                       bool
	}{
		{"none held: down", 60000, 0, 60000, 1.5, 40000, true},
		{"all held: up", 40000, 40000, 0, 1.5, 60000, true},
		{"bracketed wide: halfway", 60000, 40000, 60000, 1.5, 50000, true},
		{"bracketed within 10 %: done", 43000, 40000, 43000, 1.5, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more := nextRate(tt.rate, tt.best, tt.failed, tt.factor)
			if got != tt.want || more != tt.more {
				t.Errorf("nextRate = %v, %v; want %v, %v", got, more, tt.want, tt.more)
			}
		})
	}
}
