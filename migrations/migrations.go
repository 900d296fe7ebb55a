// Package migrations embeds the SQL schema migrations for ClickHouse and
// Postgres so the binary can apply them without files on disk.
package migrations

import "embed"

// ClickHouse holds the ClickHouse migrations under "clickhouse/".
//
//go:embed clickhouse/*.sql
var ClickHouse embed.FS

// Postgres holds the Postgres migrations under "postgres/".
//
//go:embed postgres/*.sql
var Postgres embed.FS
