package allinone

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// Two processes of one deployment (same NATS, ClickHouse and Postgres):
// both serve, but each background loop (retention with capture and
// bundles, the anomaly pass) runs in one of them; when it stops, the other
// takes over.
func TestBackgroundLoopsRunOncePerDeployment(t *testing.T) {
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
		eventually(t, loop+" led by exactly one process", func() bool {
			return leading(0, loop)+leading(1, loop) == 1
		})
	}
	leader := 0
	if leading(1, "retention") == 1 {
		leader = 1
	}
	apps[leader].stop(t)()
	other := 1 - leader
	for _, loop := range []string{"retention", "correlator/anomalies"} {
		eventually(t, loop+" taken over", func() bool { return leading(other, loop) == 1 })
	}
}
