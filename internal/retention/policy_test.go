package retention_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/internal/retention"
)

func TestValidatePoliciesNamesTheField(t *testing.T) {
	cases := []struct {
		name  string
		ps    []retention.Policy
		field string
	}{
		{"ok", []retention.Policy{{Signal: "spans", Days: 7}, {Signal: "events", Days: 30, Namespace: "prod"}}, ""},
		{"empty", nil, ""},
		{"bad signal", []retention.Policy{{Signal: "spans", Days: 7}, {Signal: "traces", Days: 7}}, "policies[1].signal"},
		{"zero days", []retention.Policy{{Signal: "logs", Days: 0}}, "policies[0].days"},
		{"negative days", []retention.Policy{{Signal: "logs", Days: -3}}, "policies[0].days"},
		{"duplicate", []retention.Policy{{Signal: "logs", Days: 3}, {Signal: "logs", Days: 5}}, "policies[1].signal"},
		{"bad namespace", []retention.Policy{{Signal: "links", Days: 3, Namespace: "\xff"}}, "policies[0].namespace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := retention.ValidatePolicies(c.ps)
			if c.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Kind != apperr.KindInvalid || ae.Field != c.field {
				t.Fatalf("error %v, want invalid %s", err, c.field)
			}
		})
	}
}

func TestMatchMostSpecific(t *testing.T) {
	ps := []retention.Policy{
		{Signal: "spans", Days: 7},
		{Signal: "spans", Days: 90, Namespace: "payments"},
		{Signal: "spans", Days: 14, Service: "checkout"},
		{Signal: "spans", Days: 60, Namespace: "payments", Service: "checkout"},
		{Signal: "events", Days: 30},
		{Signal: "logs", Days: 3, Namespace: "a"},
		{Signal: "logs", Days: 5, Namespace: "a"}, // (ValidatePolicies refuses this; Match takes the longest)
	}
	cases := []struct {
		signal        retention.Signal
		ns, svc, want string
	}{
		{"spans", "shop", "cart", "d7"},
		{"spans", "payments", "cart", "d90"},
		{"spans", "shop", "checkout", "d14"},
		{"spans", "payments", "checkout", "d60"},
		{"events", "x", "y", "d30"},
		{"metrics", "payments", "checkout", retention.ClassDefault},
		{"logs", "a", "", "d5"},
		{"logs", "b", "", retention.ClassDefault},
	}
	for _, c := range cases {
		if got := retention.Match(ps, c.signal, c.ns, c.svc); got != c.want {
			t.Errorf("Match(%s, %s, %s) = %s, want %s", c.signal, c.ns, c.svc, got, c.want)
		}
	}
}

func TestParseClass(t *testing.T) {
	for class, want := range map[string]int{"d1": 1, "d7": 7, "d365": 365} {
		if d, ok := retention.ParseClass(class); !ok || d != want {
			t.Errorf("ParseClass(%q) = %d %v", class, d, ok)
		}
		if retention.DaysClass(want) != class {
			t.Errorf("DaysClass(%d) = %s", want, retention.DaysClass(want))
		}
	}
	for _, class := range []string{"default", "hold", "d", "d0", "d07", "dx", "7", "d-1", "d1'"} {
		if _, ok := retention.ParseClass(class); ok {
			t.Errorf("ParseClass(%q) accepted", class)
		}
	}
	for class, want := range map[string]bool{"default": true, "hold": true, "d3": true, "x": false, "d3; DROP": false} {
		if retention.ValidClass(class) != want {
			t.Errorf("ValidClass(%q) = %v", class, !want)
		}
	}
}

type policySource struct {
	m   map[string][]retention.Policy
	err error
}

func (p *policySource) AllPolicies(context.Context) (map[string][]retention.Policy, error) {
	return p.m, p.err
}

func TestClassifierBatches(t *testing.T) {
	src := &policySource{m: map[string][]retention.Policy{
		"t1": {{Signal: "spans", Days: 7}, {Signal: "logs", Days: 90, Namespace: "prod"}},
	}}
	c := retention.NewClassifier(src, nil)
	b := otlpconv.SpanBatch{
		TenantID: []string{"t1", "t2"}, Namespace: []string{"prod", "prod"}, ServiceName: []string{"a", "a"},
		RetentionClass: []string{"default", "default"},
	}
	c.ClassifySpans(&b) // nothing loaded yet: default
	if b.RetentionClass[0] != "default" {
		t.Fatalf("before refresh: %v", b.RetentionClass)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.ClassifySpans(&b)
	if b.RetentionClass[0] != "d7" || b.RetentionClass[1] != "default" {
		t.Errorf("spans classes %v", b.RetentionClass)
	}
	lb := otlpconv.LogBatch{
		TenantID: []string{"t1", "t1"}, Namespace: []string{"prod", "dev"}, ServiceName: []string{"a", "a"},
		RetentionClass: []string{"default", "default"},
	}
	c.ClassifyLogs(&lb)
	if lb.RetentionClass[0] != "d90" || lb.RetentionClass[1] != "default" {
		t.Errorf("logs classes %v", lb.RetentionClass)
	}
	// A failed refresh keeps the policies.
	src.err = errors.New("down")
	if err := c.Refresh(context.Background()); err == nil {
		t.Error("refresh error swallowed")
	}
	if got := c.Class("t1", "spans", "", ""); got != "d7" {
		t.Errorf("after failed refresh: %s", got)
	}
}
