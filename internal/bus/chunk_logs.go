package bus

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// chunkLogs marshals ld into protobuf payloads of at most maxBytes each,
// halving the record set until every part fits (see chunkTraces).
func chunkLogs(ld plog.Logs, maxBytes int) ([][]byte, []int, error) {
	var m plog.ProtoMarshaler
	if m.LogsSize(ld) <= maxBytes {
		b, err := m.MarshalLogs(ld)
		if err != nil {
			return nil, nil, fmt.Errorf("marshal logs: %w", err)
		}
		return [][]byte{b}, []int{ld.LogRecordCount()}, nil
	}
	n := ld.LogRecordCount()
	if n <= 1 {
		return nil, nil, apperr.New(apperr.KindTooLarge,
			"a single log record is larger than the queue's message limit of %d bytes", maxBytes)
	}
	a, b := splitLogs(ld, n/2)
	pa, ca, err := chunkLogs(a, maxBytes)
	if err != nil {
		return nil, nil, err
	}
	pb, cb, err := chunkLogs(b, maxBytes)
	if err != nil {
		return nil, nil, err
	}
	return append(pa, pb...), append(ca, cb...), nil
}

// splitLogs returns the first k log records of ld and the rest, each with
// its resource and scope.
func splitLogs(ld plog.Logs, k int) (plog.Logs, plog.Logs) {
	out := [2]plog.Logs{plog.NewLogs(), plog.NewLogs()}
	i := 0
	rls := ld.ResourceLogs()
	for r := 0; r < rls.Len(); r++ {
		rl := rls.At(r)
		var dst [2]plog.ResourceLogs
		var have [2]bool
		sls := rl.ScopeLogs()
		for s := 0; s < sls.Len(); s++ {
			sl := sls.At(s)
			var sdst [2]plog.ScopeLogs
			var shave [2]bool
			recs := sl.LogRecords()
			for j := 0; j < recs.Len(); j++ {
				side := 0
				if i >= k {
					side = 1
				}
				i++
				if !have[side] {
					dst[side] = out[side].ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(dst[side].Resource())
					dst[side].SetSchemaUrl(rl.SchemaUrl())
					have[side] = true
				}
				if !shave[side] {
					sdst[side] = dst[side].ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(sdst[side].Scope())
					sdst[side].SetSchemaUrl(sl.SchemaUrl())
					shave[side] = true
				}
				recs.At(j).CopyTo(sdst[side].LogRecords().AppendEmpty())
			}
		}
	}
	return out[0], out[1]
}
