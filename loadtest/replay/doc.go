// Package replay sends a root-cause dataset in the Nezha layout through the
// public OTLP endpoints, as a real exporter would: spans, logs and per-pod
// metrics of DIR/rca_data and (optionally) the fault-free baseline of
// DIR/construct_data, in batches, with rate control, retries on throttling,
// a progress bar and a resumable state file.
//
// Layout (every file may be .csv or .csv.gz):
//
//	DIR/rca_data/*fault_list.json           labels: hour -> [{inject_time, inject_timestamp, inject_pod, inject_type}]
//	DIR/{rca,construct}_data/trace/HH_MM_trace.csv  TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration
//	DIR/{rca,construct}_data/log/HH_MM_log.csv      Timestamp,TimeUnixNano,Node,PodName,Container,TraceID,SpanID,Log
//	DIR/{rca,construct}_data/metric/*.csv           one row per minute: Time,TimeStamp,[PodName|ServiceName],<numeric columns>
//
// Ids: 32 (trace) / 16 (span) hex digits are used as they are; any other
// source id is mapped to the first 16 / 8 bytes of SHA-256 of the id and the
// original is kept as the attribute nezha.trace_id / nezha.span_id, so spans
// and logs naming the same source id always get the same OTLP id.
package replay
