package schema

import (
	"fmt"
	"regexp"
	"strings"
)

// On a ClickHouse cluster every table of the single-node schema becomes
// two: <name>_local, a Replicated* table on every node holding its
// shard's rows, and <name>, a Distributed table over them, so the code
// reads and writes the same names on both topologies. Materialized views
// run per node, from the local source to the local target: the trace-id
// index of a shard indexes that shard's spans. Every statement runs ON
// CLUSTER, so one migrator changes every node; the migration files stay
// the single-node SQL, rewritten statement by statement (clusterize).

// shardKeys says on which shard a table's rows live (closed: a table
// without an entry cannot be clusterized). Rows that must be read
// together live together: a trace's spans (so its index, made per shard,
// is whole), a log record's copies, a series' points, an event's rows.
var shardKeys = map[string]string{
	"spans":               "cityHash64(tenant_id, trace_id)",
	"trace_index":         "cityHash64(tenant_id, trace_id)",
	"service_index":       "cityHash64(tenant_id, service_name)",
	"logs":                "cityHash64(tenant_id, record_id)",
	"log_trace_index":     "cityHash64(tenant_id, trace_id)",
	"metric_points":       "cityHash64(tenant_id, series_id)",
	"metric_names":        "cityHash64(tenant_id, metric_name)",
	"container_events":    "cityHash64(tenant_id, event_id)",
	"event_links":         "cityHash64(tenant_id, event_id)",
	"trace_event_index":   "cityHash64(tenant_id, trace_id)",
	"container_sightings": "cityHash64(tenant_id, container_id)",
	"rca_span_stats":      "cityHash64(tenant_id, bucket)",
	"rca_buckets":         "cityHash64(tenant_id, bucket)",
	chMigrationsTable:     "rand()",
}

// LocalSuffix names a table's per-node part on a cluster.
const LocalSuffix = "_local"

var (
	reCreateTable = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)\s*(\(.*\))\s*ENGINE\s*=\s*(\w+)\(([^)]*)\)(.*)$`)
	reCreateMV    = regexp.MustCompile(`(?is)^CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+TO\s+(\w+)\s+AS\s+(.*)$`)
	reFrom        = regexp.MustCompile(`(?i)\bFROM\s+(\w+)`)
	reAlter       = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+(\w+)\s+(.*)$`)
	reDrop        = regexp.MustCompile(`(?is)^DROP\s+TABLE\s+IF\s+EXISTS\s+(\w+)$`)
)

// clusterize rewrites one single-node statement for cluster c and
// database db.
func clusterize(stmt, c, db string) ([]string, error) {
	stmt = strings.TrimSpace(stmt)
	q := func(name string) string { return "`" + db + "`." + name }
	on := " ON CLUSTER `" + c + "`"
	if m := reCreateTable.FindStringSubmatch(stmt); m != nil {
		name, cols, engine, args, rest := m[1], m[2], m[3], strings.TrimSpace(m[4]), m[5]
		key, ok := shardKeys[name]
		if !ok {
			return nil, fmt.Errorf("table %s has no shard key", name)
		}
		local := name + LocalSuffix
		path := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s', '{replica}'", db, local)
		if name == chMigrationsTable { // one copy on every node
			path = fmt.Sprintf("'/clickhouse/tables/all/%s/%s', '{shard}-{replica}'", db, local)
		}
		if args != "" {
			path += ", " + args
		}
		return []string{
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s %s ENGINE = Replicated%s(%s)%s", q(local), on, cols, engine, path, rest),
			distributed(name, key, c, db),
		}, nil
	}
	if m := reCreateMV.FindStringSubmatch(stmt); m != nil {
		sel := reFrom.ReplaceAllString(m[3], "FROM `"+db+"`.${1}"+LocalSuffix)
		return []string{fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s%s TO %s AS %s", q(m[1]), on, q(m[2]+LocalSuffix), sel)}, nil
	}
	if m := reAlter.FindStringSubmatch(stmt); m != nil {
		// A Distributed table cannot be altered ON CLUSTER beside
		// replicated ones; it holds no data (inserts are synchronous), so
		// it is made again from the altered local table.
		name := m[1]
		key, ok := shardKeys[name]
		if !ok {
			return nil, fmt.Errorf("table %s has no shard key", name)
		}
		return []string{
			fmt.Sprintf("ALTER TABLE %s%s %s", q(name+LocalSuffix), on, m[2]),
			fmt.Sprintf("DROP TABLE IF EXISTS %s%s", q(name), on),
			distributed(name, key, c, db),
		}, nil
	}
	if m := reDrop.FindStringSubmatch(stmt); m != nil {
		if strings.HasSuffix(m[1], "_mv") {
			return []string{fmt.Sprintf("DROP TABLE IF EXISTS %s%s", q(m[1]), on)}, nil
		}
		return []string{
			fmt.Sprintf("DROP TABLE IF EXISTS %s%s", q(m[1]), on),
			fmt.Sprintf("DROP TABLE IF EXISTS %s%s", q(m[1]+LocalSuffix), on),
		}, nil
	}
	return nil, fmt.Errorf("statement cannot run on a cluster: %.80s", stmt)
}

// distributed creates the Distributed table name over name_local.
func distributed(name, key, c, db string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS `%s`.%s ON CLUSTER `%s` AS `%s`.%s ENGINE = Distributed(`%s`, `%s`, %s, %s)",
		db, name, c, db, name+LocalSuffix, c, db, name+LocalSuffix, key)
}
