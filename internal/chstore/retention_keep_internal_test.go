package chstore

import (
	"strings"
	"testing"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// TestKeepTablesCoverRetention: every table retention drops from has its
// policy columns described (a closed map: nothing else reaches the SQL).
func TestKeepTablesCoverRetention(t *testing.T) {
	for table := range retention.Tables {
		if _, ok := keepTables[table]; !ok {
			t.Errorf("%s: no keepTables entry", table)
		}
	}
	for table := range keepTables {
		if _, ok := retention.Tables[table]; !ok {
			t.Errorf("%s: not a retention-managed table", table)
		}
	}
}

func TestKeepExprs(t *testing.T) {
	k := retention.Keep{
		Policies: map[string][]retention.Policy{
			"t1": {{Signal: "spans", Days: 7}, {Signal: "spans", Days: 90, Namespace: "pay'; DROP"}},
			"t2": {},
		},
		DefaultDays: map[retention.Signal]int{"spans": 30, "links": 0},
	}
	cases := []struct {
		table     string
		tenants   []string
		args      int // bound values of the days expression
		wantInSQL string
	}{
		{"spans", []string{"t1", "t2"}, 2 + 1 + 1 + 1 + 1, "k8s_namespace_name = ?"}, // pay: tenant, ns, days; all: tenant, days; default
		{"spans", nil, 1, "toUInt32(?)"},
		{"event_links", []string{"t1"}, 2 + 1, "tenant_id = ?"}, // the longest of t1's links policies: none, so the default
		{"container_sightings", []string{"t1"}, 2 + 1, "tenant_id = ?"},
	}
	for _, c := range cases {
		e := keepTables[c.table].keepExprs(k, c.tenants)
		if len(e.daysArgs) != c.args || len(e.classArgs) != c.args || strings.Count(e.days, "?") != c.args ||
			!strings.Contains(e.days, c.wantInSQL) || strings.Contains(e.days, "DROP") {
			t.Errorf("%s %v: days %s %v", c.table, c.tenants, e.days, e.daysArgs)
		}
	}
	if e := keepTables["event_links"].keepExprs(k, []string{"t1"}); e.daysArgs[1] != retention.Forever || e.classArgs[1] != retention.ClassDefault {
		t.Errorf("links of t1 (no links policy, default forever): %v %v", e.daysArgs, e.classArgs)
	}
	many := map[string][]retention.Policy{}
	var tenants []string
	for i := range 500 {
		id := string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		many[id] = []retention.Policy{{Signal: "spans", Days: 3}}
		tenants = append(tenants, id)
	}
	chunks := keepTables["spans"].tenantChunks(retention.Keep{Policies: many}, tenants)
	n := 0
	for _, c := range chunks {
		if len(c) > maxKeepBranches {
			t.Errorf("chunk of %d tenants", len(c))
		}
		n += len(c)
	}
	if len(chunks) < 2 || n != 500 {
		t.Errorf("%d chunks of %d tenants", len(chunks), n)
	}
}
