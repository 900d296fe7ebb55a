package replay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// ScopeName is the instrumentation scope of everything replayed.
const ScopeName = "github.com/aftertrace/aftertrace/loadtest/replay"

// errSkipFile marks a file that holds no time series (e.g. dependency.csv).
var errSkipFile = errors.New("not a time series")

// converter turns the rows of one CSV file into OTLP batches.
type converter interface {
	// rowTime is the row's time in unix ns.
	rowTime(rec []string) (int64, error)
	// add appends one row to the batch and returns how many records (spans,
	// log records, data points) it added.
	add(rec []string) (int, error)
	// flush exports the batch and starts a new one; it returns the records
	// the server rejected through partial success.
	flush(ctx context.Context, s *Sender) (rejected int64, err error)
}

// newConverter returns the converter of f; services are the dataset's
// services (nil: none known), for edge columns of metric files.
func newConverter(f File, header []string, namespace string, services map[string]bool) (converter, error) {
	cols := newColumns(header)
	switch f.Kind {
	case KindTrace:
		return newTraceConv(f.Path, cols, namespace)
	case KindLog:
		return newLogConv(f.Path, cols, namespace)
	case KindMetric:
		return newMetricConv(f, header, cols, namespace, services)
	}
	return nil, fmt.Errorf("%s: unknown kind %q", f.Path, f.Kind)
}

func parseUnixNano(s string) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad unix ns time %q", s)
	}
	return v, nil
}

// parseEpoch reads a unix time in s, ms, µs or ns (chosen by magnitude).
func parseEpoch(s string) (int64, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad unix time %q", s)
	}
	switch {
	case v < 1e11:
		return int64(v * 1e9), nil
	case v < 1e14:
		return int64(v * 1e6), nil
	case v < 1e17:
		return int64(v * 1e3), nil
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	return int64(v), nil
}

// parseGoTime reads Go's time.Time.String() output as the Nezha metric
// "Time" column holds it ("2022-08-22 03:51:19.79 +0000 UTC m=+0.30").
func parseGoTime(s string) (int64, error) {
	if i := strings.Index(s, " m="); i >= 0 {
		s = s[:i]
	}
	// Times without a zone are UTC, as the datasets' other columns are.
	for _, layout := range []string{"2006-01-02 15:04:05.999999999 -0700 MST", time.RFC3339Nano, "2006-01-02T15:04:05.999999999", time.DateTime} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t.UnixNano(), nil
		}
	}
	return 0, fmt.Errorf("bad time %q", s)
}

// putResource sets the k8s resource attributes shared by every signal.
func putResource(attrs pcommon.Map, pod, namespace string) {
	if pod == "" {
		return
	}
	attrs.PutStr("service.name", ServiceFromPod(pod))
	attrs.PutStr("k8s.pod.name", pod)
	if namespace != "" {
		attrs.PutStr("k8s.namespace.name", namespace)
	}
}
