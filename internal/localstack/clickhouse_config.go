package localstack

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"text/template"
)

// clickHouseConfig is a self-contained server config: users, profiles and
// quotas are inline so no users.xml is needed next to it, and every path is
// under the private dir. The <yandex> root is what 18.16 requires; newer
// servers still accept it. A cluster node gets its remote_servers,
// ZooKeeper, macros and interserver port too.
var clickHouseConfig = template.Must(template.New("config.xml").Funcs(template.FuncMap{"x": xmlEscape}).Parse(`<?xml version="1.0"?>
<!-- Written by aftertrace localstack on every start; edits are overwritten. -->
<yandex>
  <logger>
    <level>{{x .LogLevel}}</level>
    <log>{{x .LogPath}}</log>
    <errorlog>{{x .ErrLogPath}}</errorlog>
    <size>10M</size>
    <count>2</count>
  </logger>
  <listen_host>{{x .Host}}</listen_host>
  <tcp_port>{{.TCPPort}}</tcp_port>
  <http_port>{{.HTTPPort}}</http_port>
  <max_connections>1024</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>{{x .DataDir}}/</path>
  <tmp_path>{{x .DataDir}}/tmp/</tmp_path>
  <user_files_path>{{x .DataDir}}/user_files/</user_files_path>
  <format_schema_path>{{x .DataDir}}/format_schemas/</format_schema_path>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <!-- poll_interval: an idle client connection notices shutdown only at its
       next poll; the default 10 s would make every Stop take 10 s. -->
  <profiles><default><max_memory_usage>4000000000</max_memory_usage><poll_interval>1</poll_interval><background_pool_size>{{.MergeThreads}}</background_pool_size>{{if .Cluster}}<distributed_product_mode>global</distributed_product_mode>{{end}}</default></profiles>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <!-- ZSTD for every part (as deploy/clickhouse/compression.xml): about a
       third fewer bytes per span than LZ4 on telemetry columns. -->
{{- with .Cluster}}
  <!-- One node of a replicated, sharded cluster (ClickHouseClusterNode). -->
  <interserver_http_host>{{x $.Host}}</interserver_http_host>
  <interserver_http_port>{{.InterserverPort}}</interserver_http_port>
  <remote_servers><{{.Name}}>
{{- range .Shards}}
    <shard><internal_replication>true</internal_replication>
{{- range .}}<replica><host>{{x .Host}}</host><port>{{.Port}}</port></replica>{{end -}}
    </shard>
{{- end}}
  </{{.Name}}></remote_servers>
  <zookeeper>{{range .ZooKeeper}}<node><host>{{x .Host}}</host><port>{{.Port}}</port></node>{{end}}<session_timeout_ms>30000</session_timeout_ms></zookeeper>
  <macros><shard>{{x .Shard}}</shard><replica>{{x .Replica}}</replica></macros>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
{{- end}}
  <compression><case><min_part_size>0</min_part_size><min_part_size_ratio>0</min_part_size_ratio><method>zstd</method></case></compression>
</yandex>
`))

type clickHouseConfigData struct {
	LogLevel, LogPath, ErrLogPath string
	Host                          string
	TCPPort, HTTPPort             int
	DataDir                       string
	MergeThreads                  int
	Cluster                       *ClickHouseClusterNode
}

// HostPort is one server address.
type HostPort struct {
	Host string
	Port int
}

// ClickHouseClusterNode makes a server one node of a cluster.
type ClickHouseClusterNode struct {
	Name            string       // the cluster's name in remote_servers (a plain word)
	Shards          [][]HostPort // every shard's replicas (native ports)
	ZooKeeper       []HostPort
	Shard, Replica  string // this node's macros
	InterserverPort int    // replication port; zero picks a free one
}

func writeClickHouseConfig(path string, d clickHouseConfigData) error {
	var buf bytes.Buffer
	if err := clickHouseConfig.Execute(&buf, d); err != nil {
		return fmt.Errorf("render clickhouse config: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write clickhouse config: %w", err)
	}
	return nil
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
