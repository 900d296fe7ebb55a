// Package eval scores the root-cause API against a labelled dataset in the
// Nezha layout: for every labelled fault it asks POST /api/v1/rca for a
// window derived only from the label's inject_time (read as UTC), ranks
// services by their best candidate and reports the top-k accuracy AS@k.
package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Fault is one labelled fault.
type Fault struct {
	Time    time.Time // inject_time, read as UTC
	Pod     string
	Type    string
	Service string // root-cause service: the pod name without its last two '-' segments
}

// ServiceOfPod strips the last two '-' segments (replica set hash, pod id).
func ServiceOfPod(pod string) string {
	parts := strings.Split(pod, "-")
	if len(parts) <= 2 {
		return pod
	}
	return strings.Join(parts[:len(parts)-2], "-")
}

// ReadLabels reads every DIR/rca_data/*fault_list.json, by time.
func ReadLabels(dir string) ([]Fault, error) {
	files, err := filepath.Glob(filepath.Join(dir, "rca_data", "*fault_list.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no rca_data/*fault_list.json", dir)
	}
	var out []Fault
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var raw map[string][]struct {
			InjectTime      string `json:"inject_time"`
			InjectTimestamp string `json:"inject_timestamp"`
			InjectPod       string `json:"inject_pod"`
			InjectType      string `json:"inject_type"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for hour, list := range raw {
			for i, r := range list {
				t, err := time.ParseInLocation(time.DateTime, strings.TrimSpace(r.InjectTime), time.UTC)
				if err != nil {
					sec, err2 := strconv.ParseInt(r.InjectTimestamp, 10, 64)
					if err2 != nil {
						return nil, fmt.Errorf("%s: hour %s entry %d: bad inject_time %q", f, hour, i, r.InjectTime)
					}
					t = time.Unix(sec, 0).UTC()
				}
				out = append(out, Fault{Time: t, Pod: r.InjectPod, Type: r.InjectType, Service: ServiceOfPod(r.InjectPod)})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// Config says what to evaluate.
type Config struct {
	Dir    string
	API    string // base URL, e.g. http://127.0.0.1:8080
	Key    string
	Before time.Duration // window start = inject_time − Before
	After  time.Duration // window end = inject_time + After
	Client *http.Client
	Out    io.Writer
}

// DefaultConfig returns the defaults of `aftertrace eval nezha`.
func DefaultConfig() Config {
	return Config{Before: 0, After: 4 * time.Minute}
}

// Outcome is the result for one fault.
type Outcome struct {
	Fault    Fault
	Rank     int // 1-based rank of the true service; 0 = not ranked
	Top      []string
	Err      string
	Duration time.Duration
}

// Summary is the accuracy over all faults.
type Summary struct {
	N               int
	AS1, AS3, AS5   float64 // percent
	Outcomes        []Outcome
	MaxLatency, Avg time.Duration
}

type candidate struct {
	Service string  `json:"service"`
	Score   float64 `json:"score"`
}

// Rank orders services by their best candidate's score and returns the
// 1-based rank of truth; a service tied with truth counts as ahead of it.
func Rank(cands []candidate, truth string) (int, []string) {
	best := map[string]float64{}
	for _, c := range cands {
		if s, ok := best[c.Service]; !ok || c.Score > s {
			best[c.Service] = c.Score
		}
	}
	svcs := make([]string, 0, len(best))
	for s := range best {
		svcs = append(svcs, s)
	}
	sort.Slice(svcs, func(i, j int) bool {
		if best[svcs[i]] != best[svcs[j]] {
			return best[svcs[i]] > best[svcs[j]]
		}
		return svcs[i] < svcs[j]
	})
	ts, ok := best[truth]
	if !ok {
		return 0, svcs
	}
	rank := 1
	for _, s := range svcs {
		if s != truth && best[s] >= ts {
			rank++
		}
	}
	return rank, svcs
}

// Run evaluates every labelled fault and writes the per-fault table and,
// as its last line, the AS@k summary.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	faults, err := ReadLabels(cfg.Dir)
	if err != nil {
		return Summary{}, err
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	sum := Summary{N: len(faults)}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "inject_time (UTC)\ttype\ttrue service\trank\ttop 3\tms")
	var hits [3]int
	var total time.Duration
	for _, f := range faults {
		o := Outcome{Fault: f}
		start := time.Now()
		cands, err := ask(ctx, client, cfg, f.Time.Add(-cfg.Before), f.Time.Add(cfg.After))
		o.Duration = time.Since(start)
		total += o.Duration
		sum.MaxLatency = max(sum.MaxLatency, o.Duration)
		if err != nil {
			if ctx.Err() != nil {
				return sum, ctx.Err()
			}
			o.Err = err.Error()
		} else {
			o.Rank, o.Top = Rank(cands, f.Service)
		}
		for i, k := range []int{1, 3, 5} {
			if o.Rank >= 1 && o.Rank <= k {
				hits[i]++
			}
		}
		rank := "-"
		if o.Rank > 0 {
			rank = strconv.Itoa(o.Rank)
		}
		top := o.Top
		if len(top) > 3 {
			top = top[:3]
		}
		note := strings.Join(top, ",")
		if o.Err != "" {
			note = "error: " + o.Err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", f.Time.Format(time.DateTime), f.Type, f.Service, rank, note, o.Duration.Milliseconds())
		sum.Outcomes = append(sum.Outcomes, o)
	}
	tw.Flush()
	if n := float64(sum.N); n > 0 {
		sum.AS1, sum.AS3, sum.AS5 = 100*float64(hits[0])/n, 100*float64(hits[1])/n, 100*float64(hits[2])/n
		sum.Avg = total / time.Duration(sum.N)
	}
	fmt.Fprintf(out, "answer time: avg %d ms, max %d ms\n", sum.Avg.Milliseconds(), sum.MaxLatency.Milliseconds())
	fmt.Fprintf(out, "AS@1=%.1f AS@3=%.1f AS@5=%.1f n=%d\n", sum.AS1, sum.AS3, sum.AS5, sum.N)
	return sum, nil
}

func ask(ctx context.Context, client *http.Client, cfg Config, start, end time.Time) ([]candidate, error) {
	body, _ := json.Marshal(map[string]string{"start": start.UTC().Format(time.RFC3339Nano), "end": end.UTC().Format(time.RFC3339Nano)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(cfg.API, "/")+"/api/v1/rca", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.Key != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var r struct {
		Candidates []candidate `json:"candidates"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return r.Candidates, nil
}
