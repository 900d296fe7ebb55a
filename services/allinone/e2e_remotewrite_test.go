package allinone

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/localstack"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// sameRanges compares two promRange answers, values within 1e-9
// (relative): sums over series in another order round differently.
func sameRanges(a, b map[string][][2]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			x, _ := strconv.ParseFloat(av[i][1].(string), 64)
			y, _ := strconv.ParseFloat(bv[i][1].(string), 64)
			if av[i][0] != bv[i][0] || math.Abs(x-y) > 1e-9*math.Max(1, math.Abs(y)) {
				return false
			}
		}
	}
	return true
}

// promRange runs a Prometheus range query and returns each series'
// values by its labels.
func promRange(t *testing.T, u, key string) map[string][][2]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" || r.Data.ResultType != "matrix" {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	out := map[string][][2]any{}
	for _, s := range r.Data.Result {
		out[fmt.Sprint(s.Metric)] = s.Values
	}
	return out
}

// startPrometheus runs Debian's prometheus on loopback with cfg (YAML)
// and returns its base URL; it is stopped at cleanup.
func startPrometheus(t *testing.T, cfg string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found: deploy/dev/install-deps.sh installs Debian's prometheus")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := localstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log:\n%s", b)
		}
	})
	base := "http://" + addr
	waitFor(t, 30*time.Second, "prometheus ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// A real Prometheus scrapes a local target and remote-writes to the
// gateway with the tenant's key: every sample Prometheus stored (older
// than its send deadline) reads back through /api/v1/metrics/series with
// the same time and value, typed from the metadata it sent, job as the
// service; another tenant sees none of it.
func TestPrometheusRemoteWrite(t *testing.T) {
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{})

	var scrapes atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP demo_requests_total Requests served.\n# TYPE demo_requests_total counter\n")
		fmt.Fprintf(w, "demo_requests_total{code=\"200\"} %d\ndemo_requests_total{code=\"500\"} %d\n", 10*n, n/3)
		fmt.Fprintf(w, "# HELP demo_temperature_celsius Temperature.\n# TYPE demo_temperature_celsius gauge\n")
		fmt.Fprintf(w, "demo_temperature_celsius %g\n", 20+float64(n%7)/2)
		// A histogram whose observations drift upwards.
		fmt.Fprintf(w, "# HELP demo_latency_seconds Latency.\n# TYPE demo_latency_seconds histogram\n")
		cum := int64(0)
		for i, le := range []string{"0.1", "0.25", "0.5", "1", "+Inf"} {
			cum += n * int64(5-i) * (1 + n%3)
			fmt.Fprintf(w, "demo_latency_seconds_bucket{le=%q} %d\n", le, cum)
		}
		fmt.Fprintf(w, "demo_latency_seconds_sum %g\ndemo_latency_seconds_count %d\n", float64(cum)*0.3, cum)
	}))
	defer target.Close()
	tu, _ := url.Parse(target.URL)
	prom := startPrometheus(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: ['%s']
remote_write:
  - url: http://%s/api/v1/push
    authorization:
      type: Bearer
      credentials: %s
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send_interval: 1s
`, tu.Host, app.Gateway.HTTPAddr(), testKey))

	type series struct {
		Name     string         `json:"name"`
		Type     string         `json:"type"`
		Labels   map[string]any `json:"labels"`
		Resource map[string]any `json:"resource"`
		Points   []struct {
			Time  string `json:"timeUnixNano"`
			Value any    `json:"value"`
		} `json:"points"`
	}
	read := func(name string) []series {
		var page struct {
			Items []series `json:"items"`
		}
		if code := app.getJSON(t, "/api/v1/metrics/series?name="+name, &page); code != http.StatusOK {
			t.Fatalf("series %s: %d", name, code)
		}
		return page.Items
	}
	waitFor(t, time.Minute, `16 remote-written points of demo_requests_total{code="200"}`, func() bool {
		for _, s := range read("demo_requests_total") {
			if s.Labels["code"] == "200" && len(s.Points) >= 16 {
				return true
			}
		}
		return false
	})

	// What Prometheus itself stored for the 200 series.
	var pr struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(`demo_requests_total{code="200"}[5m]`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &pr); err != nil || len(pr.Data.Result) != 1 {
		t.Fatalf("prometheus query: %v %s", err, body)
	}
	stored := map[int64]float64{}
	var s200 *series
	for _, s := range read("demo_requests_total") {
		if s.Labels["code"] == "200" {
			s200 = &s
		}
	}
	if s200 == nil || s200.Type != "sum" || s200.Resource["service.name"] != "demo" || s200.Resource["service.instance.id"] != tu.Host {
		t.Fatalf("the 200 series as stored: %+v", s200)
	}
	for _, p := range s200.Points {
		ns, _ := strconv.ParseInt(p.Time, 10, 64)
		v, _ := p.Value.(float64)
		stored[ns/1e6] = v
	}
	cutoff := time.Now().Add(-4 * time.Second) // Prometheus sends within its 1 s batch deadline
	checked := 0
	for _, v := range pr.Data.Result[0].Values {
		secs, _ := v[0].(float64)
		ms := int64(secs*1000 + 0.5)
		if time.UnixMilli(ms).After(cutoff) {
			continue
		}
		want, _ := strconv.ParseFloat(v[1].(string), 64)
		got, ok := stored[ms]
		if !ok || got != want {
			t.Errorf("sample at %d: Prometheus has %v, Aftertrace %v (found %v)", ms, want, got, ok)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d samples old enough to compare", checked)
	}
	if g := read("demo_temperature_celsius"); len(g) != 1 || g[0].Type != "gauge" {
		t.Errorf("gauge: %+v", g)
	}
	t.Logf("%d of Prometheus's samples compared equal", checked)

	// PromQL through /prometheus/api/v1 answers what Prometheus answers
	// over the same range, for rate, sum by and histogram_quantile.
	// Windows start after Aftertrace's first sample: Prometheus may have
	// scraped once before its remote-write queue started.
	first := int64(math.MaxInt64)
	for ms := range stored {
		first = min(first, ms)
	}
	end := cutoff.Truncate(time.Second)
	start := end.Add(-8 * time.Second)
	if f := time.UnixMilli(first).Add(7 * time.Second); start.Before(f) {
		start = f.Truncate(time.Second).Add(time.Second)
	}
	for _, expr := range []string{
		`rate(demo_requests_total[5s])`,
		`sum by (code) (rate(demo_requests_total[5s]))`,
		`histogram_quantile(0.9, sum by (le) (rate(demo_latency_seconds_bucket[5s])))`,
		`demo_temperature_celsius`,
	} {
		params := url.Values{"query": {expr}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"1"}}
		want := promRange(t, prom+"/api/v1/query_range?"+params.Encode(), "")
		got := promRange(t, app.apiURL("/prometheus/api/v1/query_range?"+params.Encode()), testKey)
		if len(want) == 0 || !sameRanges(got, want) {
			t.Errorf("%s:\n Aftertrace %v\n Prometheus %v", expr, got, want)
		}
	}

	// promtool (Debian's, as Prometheus ships it) queries the API; it
	// speaks basic auth only: the key goes as the password.
	if bin, err := exec.LookPath("promtool"); err != nil {
		t.Error("promtool not found (Debian's prometheus package ships it)")
	} else {
		server := "http://tenant:" + testKey + "@" + app.API.Addr() + "/prometheus"
		for _, args := range [][]string{
			{"query", "instant", server, `sum(demo_requests_total)`},
			{"query", "range", "--start=" + strconv.FormatInt(start.Unix(), 10), "--end=" + strconv.FormatInt(end.Unix(), 10), "--step=1s", server, `rate(demo_requests_total{code="200"}[5s])`},
		} {
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "=>") {
				t.Errorf("promtool %s %s: %v\n%s", args[0], args[1], err, out)
			}
		}
	}

	// Another tenant reads none of it.
	ctx := context.Background()
	store, err := pgstore.Open(ctx, env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	other, err := store.CreateTenant(ctx, "other-prom")
	if err != nil {
		t.Fatal(err)
	}
	key, err := store.CreateKey(ctx, other.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, app.apiURL("/api/v1/metrics/series?name=demo_requests_total"), nil)
	req.Header.Set("Authorization", "Bearer "+key.Key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page.Items) != 0 {
		t.Errorf("another tenant: %d %s, want no series", resp.StatusCode, body)
	}
	params := url.Values{"query": {"demo_requests_total"}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"1"}}
	if got := promRange(t, app.apiURL("/prometheus/api/v1/query_range?"+params.Encode()), key.Key); len(got) != 0 {
		t.Errorf("another tenant's PromQL: %v, want nothing", got)
	}
}
