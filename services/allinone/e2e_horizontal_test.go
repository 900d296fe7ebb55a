package allinone

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// Two processes of one deployment (same NATS, ClickHouse and Postgres),
// each with a gateway, writer, API and correlator: traces sent through
// either gateway are stored once as either API reads them, the writers
// share the consumers' work, and each background loop (retention with
// capture and bundles, the anomaly pass) runs in one of them; when it
// stops, the other takes over.
func TestTwoOfEachServiceOneDeployment(t *testing.T) {
	env := testenv.Get(t)
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	apps := make([]*testApp, 2)
	for i := range apps {
		apps[i] = startApp(t, env, env.ClickHouseAddr, appOptions{
			cfg: func(c *Config) {
				c.LeaseInterval = 100 * time.Millisecond
				c.Correlator.Anomalies.Interval = time.Hour // on, but not due in this test
			},
			deps: func(d *Deps) { d.Registry = regs[i] },
		})
	}
	leading := func(i int, loop string) float64 {
		mfs, err := regs[i].Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "aftertrace_lease_leading" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == loop {
					return m.GetGauge().GetValue()
				}
			}
		}
		return 0
	}
	for _, loop := range []string{"retention", "correlator/anomalies"} {
		waitFor(t, 10*time.Second, loop+" led by exactly one process", func() bool {
			return leading(0, loop)+leading(1, loop) == 1
		})
	}
	// Through both gateways, read through both APIs: each trace once.
	var ids []string
	for i := range 300 {
		id := newTraceID()
		if code, _, body := apps[i%2].sendTrace(t, makeTrace(id, 3, "horizontal")); code != http.StatusOK {
			t.Fatalf("send through gateway %d: %d %s", i%2, code, body)
		}
		ids = append(ids, hexID(id))
		time.Sleep(5 * time.Millisecond)
	}
	for _, id := range ids {
		apps[0].waitTrace(t, id, 3, 30*time.Second)
		apps[1].waitTrace(t, id, 3, 30*time.Second)
	}
	rows := [2]float64{counterValue(t, regs[0], "aftertrace_writer_rows_total"), counterValue(t, regs[1], "aftertrace_writer_rows_total")}
	t.Logf("rows written by each writer: %v", rows)
	if rows[0] == 0 || rows[1] == 0 || rows[0]+rows[1] < 900 {
		t.Errorf("rows written by each writer: %v, want both to share the 900 spans", rows)
	}

	leader := 0
	if leading(1, "retention") == 1 {
		leader = 1
	}
	apps[leader].stop(t)()
	other := 1 - leader
	for _, loop := range []string{"retention", "correlator/anomalies"} {
		waitFor(t, 10*time.Second, loop+" taken over", func() bool { return leading(other, loop) == 1 })
	}
}
