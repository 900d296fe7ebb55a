package retention_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/retention"
)

func field(err error) string {
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return ae.Field
	}
	return ""
}

func TestHoldRequestValidate(t *testing.T) {
	start, end := time.Unix(100, 0), time.Unix(50, 0)
	cases := []struct {
		req    retention.HoldRequest
		field  string
		target string
	}{
		{retention.HoldRequest{Scope: "container", ID: "containerd://ABCDEF0123456789", Reason: "r"}, "", "abcdef012345"},
		{retention.HoldRequest{Scope: "trace", ID: "0123456789ABCDEF0123456789abcdef", Reason: "r"}, "", "0123456789abcdef0123456789abcdef"},
		{retention.HoldRequest{Scope: "pod", ID: "uid-1", Reason: "r"}, "", "uid-1"},
		{retention.HoldRequest{Scope: "box", ID: "x", Reason: "r"}, "scope", ""},
		{retention.HoldRequest{Scope: "container", ID: "short", Reason: "r"}, "id", ""},
		{retention.HoldRequest{Scope: "trace", ID: "xyz", Reason: "r"}, "id", ""},
		{retention.HoldRequest{Scope: "pod", ID: "", Reason: "r"}, "id", ""},
		{retention.HoldRequest{Scope: "pod", ID: "p", Reason: ""}, "reason", ""},
		{retention.HoldRequest{Scope: "pod", ID: "p", Reason: "r", Start: &start, End: &end}, "end", ""},
	}
	for _, c := range cases {
		r := c.req
		err := r.Validate()
		if f := field(err); f != c.field || (err == nil) != (c.field == "") {
			t.Errorf("%+v: error %v, want field %q", c.req, err, c.field)
		}
		if c.target != "" && r.ID != c.target {
			t.Errorf("%+v: target %q, want %q", c.req, r.ID, c.target)
		}
	}
}

func TestCaptureRules(t *testing.T) {
	rules := []retention.CaptureRule{
		{Trigger: "falco", Before: 600, After: 600},
		{Trigger: "oom_killed", Namespace: "prod", Before: 60, After: 60},
	}
	if err := retention.ValidateCaptureRules(rules); err != nil {
		t.Fatal(err)
	}
	if rules[0].ID != "rule-1" || rules[0].MinSeverity != "critical" {
		t.Errorf("defaults not filled: %+v", rules[0])
	}
	crit := retention.TriggerEvent{Source: events.SourceFalco, Severity: events.SeverityCritical}
	warn := retention.TriggerEvent{Source: events.SourceFalco, Severity: events.SeverityWarning}
	oomProd := retention.TriggerEvent{Source: events.SourceK8sObject, Type: events.TypeOOMKilled, Namespace: "prod"}
	oomDev := retention.TriggerEvent{Source: events.SourceK8sObject, Type: events.TypeOOMKilled, Namespace: "dev"}
	for _, c := range []struct {
		rule int
		ev   retention.TriggerEvent
		want bool
	}{{0, crit, true}, {0, warn, false}, {0, oomProd, false}, {1, oomProd, true}, {1, oomDev, false}, {1, crit, false}} {
		if got := rules[c.rule].Matches(&c.ev); got != c.want {
			t.Errorf("rule %d on %+v: %v", c.rule, c.ev, got)
		}
	}
	s, e := rules[0].Window(time.Unix(1000, 0))
	if s.Unix() != 400 || e.Unix() != 1600 {
		t.Errorf("window %v %v", s, e)
	}
	for _, bad := range []struct {
		r     retention.CaptureRule
		field string
	}{
		{retention.CaptureRule{Trigger: "cpu"}, "rules[0].trigger"},
		{retention.CaptureRule{Trigger: "falco", MinSeverity: "loud"}, "rules[0].minSeverity"},
		{retention.CaptureRule{Trigger: "falco", Before: -1}, "rules[0].beforeSeconds"},
	} {
		if err := retention.ValidateCaptureRules([]retention.CaptureRule{bad.r}); field(err) != bad.field {
			t.Errorf("%+v: %v, want %s", bad.r, err, bad.field)
		}
	}
}
