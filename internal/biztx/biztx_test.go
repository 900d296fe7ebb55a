package biztx

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		def   Definition
		field string // "" when valid
	}{
		{"ok", Definition{Name: "checkout", Rules: []Rule{{Service: "frontend", SpanName: "POST /api/checkout"}}, Keys: []string{"order.id"}}, ""},
		{"no name", Definition{Rules: []Rule{{Service: "a"}}}, "name"},
		{"no rules", Definition{Name: "x"}, "rules"},
		{"empty rule", Definition{Name: "x", Rules: []Rule{{Scope: ScopeAny}}}, "rules[0].service"},
		{"bad scope", Definition{Name: "x", Rules: []Rule{{Scope: "leaf", Service: "a"}}}, "rules[0].scope"},
		{"bad regex", Definition{Name: "x", Rules: []Rule{{Service: "a"}, {Attribute: "a", Regex: "(["}}}, "rules[1].regex"},
		{"two tests", Definition{Name: "x", Rules: []Rule{{Attribute: "a", Equals: "1", Prefix: "2"}}}, "rules[0].attribute"},
		{"test without attribute", Definition{Name: "x", Rules: []Rule{{Service: "s", Equals: "1"}}}, "rules[0].attribute"},
		{"dup key", Definition{Name: "x", Rules: []Rule{{Service: "a"}}, Keys: []string{"k", "k"}}, "keys[1]"},
		{"empty key", Definition{Name: "x", Rules: []Rule{{Service: "a"}}, Keys: []string{""}}, "keys[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.def.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if tc.def.Rules[0].Scope != ScopeRoot {
					t.Errorf("default scope = %q", tc.def.Rules[0].Scope)
				}
				return
			}
			if apperr.KindOf(err) != apperr.KindInvalid || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate = %v, want invalid naming %s", err, tc.field)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	c := New([]Definition{
		{Name: "checkout", Rules: []Rule{{Service: "frontend", SpanName: "POST /api/checkout"}}, Keys: []string{"order.id", "user.id"}},
		{Name: "search", Rules: []Rule{{Scope: ScopeAny, HTTPRoute: "/search"}}, Keys: []string{"user.id"}},
		{Name: "vip", Rules: []Rule{{Scope: ScopeAny, Attribute: "user.tier", Prefix: "gold"}}},
		{Name: "refund", Rules: []Rule{{Attribute: "rpc.method", Regex: "^Refund"}}, Keys: []string{"order.id"}},
		{Name: "payment", Rules: []Rule{{Service: "never"}}, Keys: []string{"payment.id"}},
	})
	root := func(svc, name string, attrs map[string]string) Span {
		return Span{Service: svc, Name: name, Root: true, Attrs: attrs}
	}
	child := func(svc, name string, attrs map[string]string) Span {
		return Span{Service: svc, Name: name, Attrs: attrs}
	}
	tests := []struct {
		name  string
		spans []Span
		want  Result
	}{
		{"root rule", []Span{
			root("frontend", "POST /api/checkout", map[string]string{"user.id": "u1"}),
			child("checkout", "PlaceOrder", map[string]string{"order.id": "o1"}),
			child("payment", "Charge", map[string]string{"order.id": "o1", "user.id": "u1"}),
		}, Result{"checkout", []Key{{"order.id", "o1"}, {"user.id", "u1"}}}},
		{"root rule does not match a child", []Span{
			root("gateway", "GET /", nil),
			child("frontend", "POST /api/checkout", nil),
		}, Result{}},
		{"any-span route", []Span{root("a", "x", nil), child("b", "y", map[string]string{"http.route": "/search", "user.id": "u9"})},
			Result{"search", []Key{{"user.id", "u9"}}}},
		{"prefix", []Span{root("a", "x", nil), child("b", "y", map[string]string{"user.tier": "gold-plus"})}, Result{"vip", nil}},
		{"regex", []Span{root("payment", "Refund", map[string]string{"rpc.method": "RefundAll", "order.id": "o2"})},
			Result{"refund", []Key{{"order.id", "o2"}}}},
		{"explicit wins", []Span{
			root("frontend", "POST /api/checkout", map[string]string{AttrTransaction: "payment", "payment.id": "p1", "order.id": "o1"}),
		}, Result{"payment", []Key{{"payment.id", "p1"}}}},
		{"explicit unknown uses default keys", []Span{
			root("x", "y", nil), child("z", "w", map[string]string{AttrTransaction: "signup", "user.id": "u3", "order.id": "o3"}),
		}, Result{"signup", []Key{{"order.id", "o3"}, {"user.id", "u3"}}}},
		{"nothing", []Span{root("a", "b", nil)}, Result{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Classify(tc.spans); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Classify = %+v, want %+v", got, tc.want)
			}
		})
	}
}
