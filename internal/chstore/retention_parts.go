package chstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// partsSQL lists the active partitions of the database's tables with their
// size; partition is the partition key as ClickHouse prints it, e.g.
// ('2026-10-01','d7').
// On a cluster the local tables of every shard are listed under their
// Distributed names (a partition's size summed over the shards).
const partsSQL = `SELECT replaceRegexpOne(table, '_local$', '') AS t, partition, toUInt64(sum(rows)), toUInt64(sum(bytes_on_disk))
FROM %s
WHERE database = ? AND active AND has(?, table)
GROUP BY t, partition
ORDER BY t, partition`

// ListPartitions returns the (date, retention_class) partitions of the
// tables retention manages (retention.Tables). Partitions whose key does
// not parse are left out (never dropped).
func (s *Store) ListPartitions(ctx context.Context) ([]retention.Partition, error) {
	tables := make([]string, 0, len(retention.Tables))
	for t := range retention.Tables {
		if s.cfg.Cluster != "" {
			t += "_local"
		}
		tables = append(tables, t)
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf(partsSQL, s.systemTable("parts")), s.cfg.Database, tables)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	defer rows.Close()
	var out []retention.Partition
	for rows.Next() {
		var p retention.Partition
		var key string
		if err := rows.Scan(&p.Table, &key, &p.Rows, &p.Bytes); err != nil {
			return nil, fmt.Errorf("list partitions: scan: %w", err)
		}
		date, class, ok := ParsePartitionKey(key)
		if !ok {
			continue
		}
		p.Date, p.Class = date, class
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	return out, nil
}

// ParsePartitionKey parses a (date, retention_class) partition key as
// system.parts prints it: ('2026-10-01','d7'). ok is false for anything
// else, including classes retention does not write.
func ParsePartitionKey(key string) (date time.Time, class string, ok bool) {
	key = strings.TrimSpace(key)
	if !strings.HasPrefix(key, "(") || !strings.HasSuffix(key, ")") {
		return date, "", false
	}
	parts := strings.SplitN(key[1:len(key)-1], ",", 2)
	if len(parts) != 2 {
		return date, "", false
	}
	d, ok1 := unquote(parts[0])
	class, ok2 := unquote(parts[1])
	if !ok1 || !ok2 || !retention.ValidClass(class) {
		return date, "", false
	}
	date, err := time.Parse(time.DateOnly, d)
	if err != nil {
		return date, "", false
	}
	return date, class, true
}

// unquote strips the single quotes of a plain quoted literal (no escapes:
// dates and retention classes have none).
func unquote(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '\'' || s[len(s)-1] != '\'' {
		return "", false
	}
	s = s[1 : len(s)-1]
	if strings.ContainsAny(s, `'\`) {
		return "", false
	}
	return s, true
}

// DropPartition drops one (date, class) partition of a retention-managed
// table. ALTER cannot bind parameters: the table must be one of
// retention.Tables and the class one retention writes (letters and
// digits), and the date is formatted here, so nothing else reaches the SQL.
func (s *Store) DropPartition(ctx context.Context, table string, date time.Time, class string) error {
	if _, ok := retention.Tables[table]; !ok {
		return fmt.Errorf("drop partition: %q is not a retention-managed table", table)
	}
	if !retention.ValidClass(class) || class == retention.ClassHold {
		return fmt.Errorf("drop partition: class %q may not be dropped", class)
	}
	part := fmt.Sprintf("('%s', '%s')", date.UTC().Format(time.DateOnly), class)
	if err := s.conn.Exec(ctx, "ALTER TABLE "+s.ddlTarget(table)+" DROP PARTITION "+part); err != nil {
		return fmt.Errorf("drop partition %s of %s: %w", part, table, err)
	}
	return nil
}
