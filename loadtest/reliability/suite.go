package reliability

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Options configure a suite run.
type Options struct {
	Bin  string // the aftertrace binary
	Dir  string // work dir; "" a temporary one, removed after
	Spec string // api/openapi.yaml
	// Short runs every case with short windows and few repetitions (the
	// subset `make test` runs): the same checks, weaker figures.
	Short bool
	// Only, if set, runs just these cases (by name).
	Only []string
	Log  *slog.Logger
}

// Result is one row of the table.
type Result struct {
	Name   string
	Figure string
	Pass   bool
}

// durations of one run.
type durations struct {
	chOutage, natsOutage, window, overload time.Duration
	kills                                  int
}

func (o Options) durations() durations {
	if o.Short {
		return durations{chOutage: 8 * time.Second, natsOutage: 4 * time.Second, window: 5 * time.Second, overload: 5 * time.Second, kills: 2}
	}
	return durations{chOutage: 60 * time.Second, natsOutage: 15 * time.Second, window: 20 * time.Second, overload: 15 * time.Second, kills: 10}
}

// env is what the cases share.
type env struct {
	short   bool // judge hostile cases by what the hostile tenant got only
	st      *Stack
	d       durations
	spec    string
	log     *slog.Logger
	load    Tenant // fault cases
	quiet   Tenant // the tenant that must not notice the hostile one
	hostile Tenant
	base    probe // the quiet tenant's quiet run
}

type testCase struct {
	name string
	run  func(ctx context.Context, e *env) Result
}

// cases in running order: checks that need a calm stack first, the faults
// that disturb it last.
func cases() []testCase {
	return []testCase{
		{"routes_without_credentials", routesWithoutCredentials},
		{"other_tenants_ids", otherTenantsIDs},
		{"injection_probes", injectionProbes},
		{"quiet_baseline", quietBaseline},
		{"hostile_flood", hostileFlood},
		{"hostile_timestamps", hostileTimestamps},
		{"hostile_poison", hostilePoison},
		{"hostile_auth_flood", hostileAuthFlood},
		{"hostile_grpc_bombs", hostileGRPCBombs},
		{"hostile_heavy_reads", hostileHeavyReads},
		{"oversized_and_bombs", oversizedAndBombs},
		{"poison_messages", poisonMessages},
		{"overload_3x", overload3x},
		{"clickhouse_down", clickHouseDown},
		{"writer_sigkill", writerSigkill},
		{"nats_down", natsDown},
	}
}

// Run starts a stack, runs the cases, writes the table to w as rows
// complete, and ends with "reliability: passed=N failed=M".
func Run(ctx context.Context, o Options, w io.Writer) ([]Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Spec == "" {
		o.Spec = "api/openapi.yaml"
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "aftertrace-reliability-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	start := time.Now()
	defer httpClient.CloseIdleConnections()
	st, err := StartStack(ctx, dir, o.Bin, o.Log)
	if err != nil {
		return nil, err
	}
	defer st.Stop()
	e := &env{short: o.Short, st: st, d: o.durations(), spec: o.Spec, log: o.Log}
	for _, t := range []struct {
		name string
		dst  *Tenant
	}{{"load", &e.load}, {"quiet", &e.quiet}, {"hostile", &e.hostile}} {
		if *t.dst, err = st.NewTenant(ctx, t.name); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(w, "stack ready in %s (%s)\n", time.Since(start).Round(time.Second), dir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tFIGURE\tVERDICT")
	_ = tw.Flush()
	var results []Result
	for _, c := range cases() {
		if len(o.Only) > 0 && !contains(o.Only, c.name) {
			continue
		}
		cstart := time.Now()
		r := c.run(ctx, e)
		r.Name = c.name
		results = append(results, r)
		verdict := "PASS"
		if !r.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%s)\n", r.Name, r.Figure, verdict, time.Since(cstart).Round(time.Second))
		_ = tw.Flush()
		if ctx.Err() != nil {
			break
		}
	}
	passed := 0
	for _, r := range results {
		if r.Pass {
			passed++
		}
	}
	fmt.Fprintf(w, "total %s\n", time.Since(start).Round(time.Second))
	fmt.Fprintf(w, "reliability: passed=%d failed=%d\n", passed, len(results)-passed)
	return results, ctx.Err()
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if strings.TrimSpace(y) == x {
			return true
		}
	}
	return false
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }
