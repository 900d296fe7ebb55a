package loadgen

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Template is an encoded OTLP export request (protobuf) that can be sent
// again and again with fresh trace ids and times, without building and
// marshalling pdata each time: Render copies the bytes and patches, in
// place, every trace id and every unix-nano time field.
type Template struct {
	body  []byte
	ids   []int32 // offsets of the 16-byte trace ids
	times []int32 // offsets of the fixed64 unix-nano times
}

// EncodeTraces encodes td as an ExportTraceServiceRequest template.
func EncodeTraces(td ptrace.Traces) (*Template, error) {
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return nil, fmt.Errorf("encode traces: %w", err)
	}
	return newTemplate(b, traceRequestFields)
}

// EncodeLogs encodes ld as an ExportLogsServiceRequest template.
func EncodeLogs(ld plog.Logs) (*Template, error) {
	b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		return nil, fmt.Errorf("encode logs: %w", err)
	}
	return newTemplate(b, logsRequestFields)
}

func newTemplate(body []byte, schema []wireField) (*Template, error) {
	t := &Template{body: body}
	if err := t.index(body, 0, schema); err != nil {
		return nil, fmt.Errorf("index template: %w", err)
	}
	return t, nil
}

// Size is the encoded request's length in bytes.
func (t *Template) Size() int { return len(t.body) }

// Render returns a fresh copy of the request (the caller owns it: a
// request in flight must not share its buffer) with every time moved by
// delta and every trace id salted by salt (SaltTraceID).
func (t *Template) Render(delta time.Duration, salt uint64) []byte {
	out := bytes.Clone(t.body) // not zeroed first, unlike make+copy
	t.patch(out, delta, salt)
	return out
}

// patch salts the ids and moves the times of out, a copy of t.body.
func (t *Template) patch(out []byte, delta time.Duration, salt uint64) {
	if salt != 0 {
		for _, o := range t.ids {
			p := out[o+8 : o+16]
			binary.BigEndian.PutUint64(p, binary.BigEndian.Uint64(p)^salt)
		}
	}
	if delta != 0 {
		for _, o := range t.times {
			p := out[o : o+8]
			binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)+uint64(delta))
		}
	}
}

// SaltTraceID is what Render does to a trace id: its last 8 bytes xor-ed
// with salt (big-endian). The first 8 stay, so ids of different salts
// still look random, and different salts give different ids.
func SaltTraceID(id pcommon.TraceID, salt uint64) pcommon.TraceID {
	binary.BigEndian.PutUint64(id[8:], binary.BigEndian.Uint64(id[8:])^salt)
	return id
}

// RoundSalt is the trace-id salt of replay round r of seed: 0 for round 0
// (the ids as generated), then distinct nonzero values (splitmix64 is a
// bijection, so distinct rounds of one seed never share a salt).
func RoundSalt(seed, round uint64) uint64 {
	if round == 0 {
		return 0
	}
	if s := splitmix64(splitmix64(seed) + round); s != 0 {
		return s
	}
	return 1
}

func splitmix64(x uint64) uint64 {
	z := x + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
