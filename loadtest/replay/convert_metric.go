package replay

import (
	"context"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// MetricPrefix starts every replayed metric name.
const MetricPrefix = "nezha."

// metricConv maps one-row-per-minute metric files to gauges, one gauge per
// numeric column:
//   - per-pod files (a PodName column): "nezha.<column>", resource
//     service.name (from the pod), k8s.pod.name, k8s.namespace.name and
//     k8s.node.name when the file has a Node column;
//   - other files with a time column (front_service, source_50,
//     destination_50, ...): "nezha.<file>.<column>", resource service.name
//     from a ServiceName column if there is one, and nezha.file = <file>;
//   - columns of such files named "<service>_<service>" for two of the
//     dataset's services (source_50, destination_50: per-edge latency)
//     are one metric "nezha.<file>" with the point attributes
//     source_workload and destination_workload, as a service mesh
//     (Istio) labels its per-edge metrics;
//   - files without a time column (dependency: Source,Target,Weight) hold
//     no time series and are skipped (errSkipFile).
//
// Column names become snake_case; a "(unit)" suffix becomes the unit.
type metricConv struct {
	epoch, text, pod, service, node int
	file, namespace                 string
	values                          []metricCol
	md                              pmetric.Metrics
	byRes                           map[string]map[string]pmetric.Metric
	resScope                        map[string]pmetric.MetricSlice
}

type metricCol struct {
	idx               int
	name, unit, descr string
	source, dest      string // an edge column: the calling and the called service
}

// edgeOf splits a column "<a>_<b>" into two known services.
func edgeOf(col string, services map[string]bool) (string, string, bool) {
	for i := 0; i < len(col); i++ {
		if col[i] == '_' && services[col[:i]] && services[col[i+1:]] {
			return col[:i], col[i+1:], true
		}
	}
	return "", "", false
}

func newMetricConv(f File, header []string, cols columns, namespace string, services map[string]bool) (*metricConv, error) {
	base := path.Base(f.Rel)
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".gz"), ".csv")
	c := &metricConv{epoch: cols.opt("TimeStamp", "Timestamp"), text: cols.opt("Time"),
		pod: cols.opt("PodName", "Pod"), service: cols.opt("ServiceName", "Service"),
		node: cols.opt("Node", "NodeName"), namespace: namespace}
	if c.epoch < 0 && c.text < 0 {
		return nil, fmt.Errorf("%s: %w (no Time or TimeStamp column)", f.Path, errSkipFile)
	}
	prefix := MetricPrefix
	if c.pod < 0 {
		fileName, _ := MetricName(base)
		c.file = base
		prefix += fileName + "."
	}
	used := map[string]bool{}
	for i, h := range header {
		if i == c.epoch || i == c.text || i == c.pod || i == c.service || i == c.node {
			continue
		}
		switch strings.ToLower(h) {
		case "namespace", "container", "source", "target":
			continue
		}
		if src, dst, ok := edgeOf(h, services); ok && c.pod < 0 {
			c.values = append(c.values, metricCol{idx: i, name: strings.TrimSuffix(prefix, "."), descr: "per-edge " + base, source: src, dest: dst})
			continue
		}
		name, unit := MetricName(h)
		if name == "" {
			continue
		}
		name = prefix + name
		if used[name] && unit != "" {
			u, _ := MetricName(unit)
			name += "_" + u
		}
		if used[name] {
			name += "_" + strconv.Itoa(i)
		}
		used[name] = true
		c.values = append(c.values, metricCol{idx: i, name: name, unit: unit, descr: h})
	}
	if len(c.values) == 0 {
		return nil, fmt.Errorf("%s: %w (no value columns)", f.Path, errSkipFile)
	}
	c.reset()
	return c, nil
}

func (c *metricConv) reset() {
	c.md = pmetric.NewMetrics()
	c.byRes = map[string]map[string]pmetric.Metric{}
	c.resScope = map[string]pmetric.MetricSlice{}
}

func (c *metricConv) rowTime(rec []string) (int64, error) {
	if c.epoch >= 0 {
		if v, err := parseEpoch(field(rec, c.epoch)); err == nil || c.text < 0 {
			return v, err
		}
	}
	return parseGoTime(field(rec, c.text))
}

func (c *metricConv) add(rec []string) (int, error) {
	t, err := c.rowTime(rec)
	if err != nil {
		return 0, err
	}
	pod, service, node := field(rec, c.pod), field(rec, c.service), field(rec, c.node)
	key := pod + "\x00" + service + "\x00" + node
	byName, ok := c.byRes[key]
	if !ok {
		rm := c.md.ResourceMetrics().AppendEmpty()
		attrs := rm.Resource().Attributes()
		putResource(attrs, pod, c.namespace)
		if pod == "" && service != "" {
			attrs.PutStr("service.name", strings.ToLower(service))
		}
		if node != "" {
			attrs.PutStr("k8s.node.name", node)
		}
		if c.file != "" {
			attrs.PutStr("nezha.file", c.file)
		}
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(ScopeName)
		byName = map[string]pmetric.Metric{}
		c.byRes[key] = byName
		c.resScope[key] = sm.Metrics()
	}
	n := 0
	for _, col := range c.values {
		s := strings.TrimSpace(field(rec, col.idx))
		if s == "" {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		m, ok := byName[col.name]
		if !ok {
			m = c.resScope[key].AppendEmpty()
			m.SetName(col.name)
			m.SetUnit(col.unit)
			m.SetDescription(col.descr)
			m.SetEmptyGauge()
			byName[col.name] = m
		}
		dp := m.Gauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.Timestamp(t))
		dp.SetDoubleValue(v)
		if col.dest != "" {
			dp.Attributes().PutStr("source_workload", col.source)
			dp.Attributes().PutStr("destination_workload", col.dest)
		}
		n++
	}
	return n, nil
}

func (c *metricConv) flush(ctx context.Context, s *Sender) (int64, error) {
	md := c.md
	c.reset()
	if md.DataPointCount() == 0 {
		return 0, nil
	}
	return s.Metrics(ctx, md)
}
