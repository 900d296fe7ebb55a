package retention_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aftertrace/aftertrace/internal/retention"
)

func TestKeepRulesAndBounds(t *testing.T) {
	k := retention.Keep{
		Policies: map[string][]retention.Policy{
			"t1": {{Signal: "spans", Days: 7}, {Signal: "spans", Days: 90, Namespace: "pay"}, {Signal: "spans", Days: 14, Service: "cart"}, {Signal: "logs", Days: 3}},
			"t2": {{Signal: "spans", Days: 60, Namespace: "pay"}},
			"t3": {},
		},
		DefaultDays: map[retention.Signal]int{"spans": 30, "logs": 30, "metrics": 0},
	}
	rules, complete := k.Rules("t1", "spans")
	if !complete || len(rules) != 3 || rules[0].Service != "cart" || rules[1].Namespace != "pay" || rules[2].Days != 7 {
		t.Errorf("t1 spans rules %+v complete %v (want service, then namespace, then none)", rules, complete)
	}
	cases := []struct {
		tenant  string
		signals []retention.Signal
		lo, hi  int
		class   string
	}{
		{"t1", []retention.Signal{"spans"}, 7, 90, "d90"},
		{"t1", []retention.Signal{"logs"}, 3, 3, "d3"},
		{"t2", []retention.Signal{"spans"}, 30, 60, "d60"}, // rows outside pay get the default
		{"t3", []retention.Signal{"spans"}, 30, 30, retention.ClassDefault},
		{"t3", []retention.Signal{"metrics"}, retention.Forever, retention.Forever, retention.ClassDefault},
		{"t1", []retention.Signal{"spans", "logs", "metrics"}, 3, retention.Forever, retention.ClassDefault},
	}
	for _, c := range cases {
		lo, hi, class := k.Bounds(c.tenant, c.signals...)
		if lo != c.lo || hi != c.hi || class != c.class {
			t.Errorf("Bounds(%s, %v) = %d %d %s, want %d %d %s", c.tenant, c.signals, lo, hi, class, c.lo, c.hi, c.class)
		}
	}
}

func TestClipText(t *testing.T) {
	cases := map[string]struct {
		in   string
		want func(string) bool
	}{
		"short":   {"Terminal shell", func(s string) bool { return s == "Terminal shell" }},
		"nul":     {"a\x00b", func(s string) bool { return s == "ab" }},
		"invalid": {"a\xffb", func(s string) bool { return utf8.ValidString(s) && strings.HasPrefix(s, "a") }},
		"long":    {strings.Repeat("é", 2000), func(s string) bool { return len(s) <= 1024 && utf8.ValidString(s) && strings.HasSuffix(s, "…") }},
	}
	for name, c := range cases {
		if got := retention.ClipText(c.in); !c.want(got) {
			t.Errorf("%s: ClipText = %q (%d bytes)", name, got, len(got))
		}
	}
}
