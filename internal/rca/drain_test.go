package rca

import (
	"strings"
	"testing"
)

func TestTemplateMiner(t *testing.T) {
	m := newTemplateMiner()
	lines := []string{
		"#:#:#.# INFO c.s.OrderService## TraceID: # SpanID: # [create][Order Create Success]",
		"#:#:#.# INFO c.s.OrderService## TraceID: # SpanID: # [create][Order Create Success]",
		"#:#:#.# ERROR c.s.OrderService## TraceID: # SpanID: # [create][Order Create Failed]",
		"user login: alice from web",
		"user login: bob from web",
		"user login: carol from mobile",
		"disk full",
	}
	var ids []int
	for _, l := range lines {
		ids = append(ids, m.add(l).ID)
	}
	for _, tc := range []struct {
		a, b int
		same bool
		why  string
	}{
		{0, 1, true, "identical lines"},
		{0, 2, false, "another level and wording: its own template"},
		{3, 4, true, "lines differing in one word after their leading tokens merge, the word a wildcard"},
		{4, 5, true, "two differing words of five still merge"},
		{3, 6, false, "different lengths never merge"},
	} {
		if (ids[tc.a] == ids[tc.b]) != tc.same {
			t.Errorf("%s: lines %d and %d → templates %d, %d", tc.why, tc.a, tc.b, ids[tc.a], ids[tc.b])
		}
	}
	if got := m.templates[ids[3]].Text(); got != "user login: <*> from <*>" {
		t.Errorf("template = %q", got)
	}
	// masked tokens ('#') do not make lines alike: the words decide
	m2 := newTemplateMiner()
	a := m2.add("#:#:#.# ERROR # # Payment declined for #")
	b := m2.add("#:#:#.# ERROR # # Inventory missing item #")
	if a == b {
		t.Errorf("lines sharing only masks merged into %q", a.Text())
	}
}

func TestTemplateMinerDeterministic(t *testing.T) {
	lines := []string{"a b c", "a b d", "x y", "a q c", "x z"}
	var first []string
	for run := 0; run < 3; run++ {
		m := newTemplateMiner()
		var got []string
		for _, l := range lines {
			got = append(got, m.add(l).Text())
		}
		if run == 0 {
			first = got
			continue
		}
		if strings.Join(got, "|") != strings.Join(first, "|") {
			t.Fatalf("run %d: %v, first %v", run, got, first)
		}
	}
}

func TestSeverityClass(t *testing.T) {
	for _, tc := range []struct {
		otlp uint8
		line string
		want int
	}{
		{17, "anything", sevError},
		{13, "anything", sevWarn},
		{9, "ERROR but the record says info", sevOther},
		{0, "#:#:#.# ERROR c.s.X## something failed", sevError},
		{0, "#:#:#.# WARN c.s.X## slow", sevWarn},
		{0, "[error] upstream timed out", sevError},
		{0, "level=warning msg=retry", sevWarn},
		{0, `level="error" msg=boom`, sevError},
		{0, "E# #:#:#.# # server.go:#] dial failed", sevError},
		{0, "java.lang.NullPointerException: null", sevError},
		{0, "at com.example.Service.call(Service.java:#)", sevError},
		{0, "Traceback (most recent call last):", sevError},
		{0, "#:#:#.# INFO c.s.X## no error here", sevOther},
		{0, "errors are counted later in this line", sevOther},
		{0, "", sevOther},
	} {
		if got := severityClass(tc.otlp, strings.Fields(tc.line)); got != tc.want {
			t.Errorf("severityClass(%d, %q) = %d, want %d", tc.otlp, tc.line, got, tc.want)
		}
	}
}

// The miner takes any text: it never panics, and a line always lands in a
// template of its own length.
func FuzzTemplateMiner(f *testing.F) {
	for _, s := range []string{"", "a", "a b c", "# # #", "ERROR x <*> y", "\x00\xff", strings.Repeat("w ", 200)} {
		f.Add(s, "a b c")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		m := newTemplateMiner()
		for _, l := range []string{a, b, a} {
			tpl := m.add(l)
			n := len(strings.Fields(l))
			if n == 0 {
				n = 1
			}
			if len(tpl.Tokens) != n {
				t.Fatalf("%q → template of %d tokens", l, len(tpl.Tokens))
			}
			_ = severityClass(0, strings.Fields(l))
		}
	})
}
