// Package rcaeval scores root-cause analysis against labelled cases: for
// every case it asks for the root causes of the case's window, ranks
// services by their best candidate and reports the top-k accuracy AS@k,
// overall and per fault type. Cases come from a Nezha-layout dataset's
// labels or from a JSON file of a user's own post-mortems.
package rcaeval

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Candidate is one ranked root-cause candidate as the API answers it.
type Candidate struct {
	Service string  `json:"service"`
	Score   float64 `json:"score"`
}

// Answer is what the analysis said about one window.
type Answer struct {
	Candidates []Candidate
	Status     string // the answer's verdict ("ranked", "no_baseline", ...); "" when not given
}

// Asker asks for the root causes of [start, end).
type Asker interface {
	Ask(ctx context.Context, start, end time.Time) (Answer, error)
}

// Outcome is the result for one case.
type Outcome struct {
	Case     Case
	Rank     int // 1-based rank of the true service; 0 = not ranked
	Top      []string
	Status   string
	Err      string
	Duration time.Duration
}

// Summary is the accuracy over all cases.
type Summary struct {
	N             int
	AS1, AS3, AS5 float64 // percent
	Outcomes      []Outcome
	P50, P99, Max time.Duration
	Avg           time.Duration
}

// Rank orders services by their best candidate's score and returns the
// 1-based rank of truth; a service tied with truth counts as ahead of it.
func Rank(cands []Candidate, truth string) (int, []string) {
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

// ks are the reported top-k cut-offs.
var ks = [3]int{1, 3, 5}

// tally counts the hits at each k.
type tally struct {
	n    int
	hits [3]int
}

func (t *tally) add(rank int) {
	t.n++
	for i, k := range ks {
		if rank >= 1 && rank <= k {
			t.hits[i]++
		}
	}
}

func (t tally) pct(i int) float64 {
	if t.n == 0 {
		return 0
	}
	return 100 * float64(t.hits[i]) / float64(t.n)
}

// Run evaluates every case and writes the per-case table, the per-type
// table and, as its last line, the AS@k summary
// "AS@1=.. AS@3=.. AS@5=.. n=N".
func Run(ctx context.Context, ask Asker, cases []Case, out io.Writer) (Summary, error) {
	if out == nil {
		out = io.Discard
	}
	sum := Summary{N: len(cases)}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "case\ttype\ttrue service\trank\ttop 3\tstatus\tms")
	var all tally
	byType := map[string]*tally{}
	var durs []time.Duration
	var total time.Duration
	for _, c := range cases {
		o := Outcome{Case: c}
		start := time.Now()
		ans, err := ask.Ask(ctx, c.Start, c.End)
		o.Duration = time.Since(start)
		total += o.Duration
		durs = append(durs, o.Duration)
		if err != nil {
			if ctx.Err() != nil {
				return sum, ctx.Err()
			}
			o.Err = err.Error()
		} else {
			o.Rank, o.Top = Rank(ans.Candidates, c.Service)
			o.Status = ans.Status
		}
		all.add(o.Rank)
		typ := c.Type
		if typ == "" {
			typ = "unlabelled"
		}
		if byType[typ] == nil {
			byType[typ] = &tally{}
		}
		byType[typ].add(o.Rank)
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
		id := c.ID
		if id == "" {
			id = c.Start.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", id, typ, c.Service, rank, note, o.Status, o.Duration.Milliseconds())
		sum.Outcomes = append(sum.Outcomes, o)
	}
	tw.Flush()

	fmt.Fprintln(out)
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	sort.Strings(types)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "fault type\tn\tAS@1\tAS@3\tAS@5")
	for _, t := range types {
		ty := byType[t]
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\n", t, ty.n, ty.pct(0), ty.pct(1), ty.pct(2))
	}
	fmt.Fprintf(tw, "all\t%d\t%.1f\t%.1f\t%.1f\n", all.n, all.pct(0), all.pct(1), all.pct(2))
	tw.Flush()

	sum.AS1, sum.AS3, sum.AS5 = all.pct(0), all.pct(1), all.pct(2)
	if len(durs) > 0 {
		sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
		sum.Avg = total / time.Duration(len(durs))
		sum.P50 = durs[(len(durs)-1)/2]
		sum.P99 = durs[min(len(durs)-1, (len(durs)*99+99)/100-1)]
		sum.Max = durs[len(durs)-1]
	}
	fmt.Fprintf(out, "answer time: p50 %d ms, p99 %d ms, max %d ms\n", sum.P50.Milliseconds(), sum.P99.Milliseconds(), sum.Max.Milliseconds())
	fmt.Fprintf(out, "AS@1=%.1f AS@3=%.1f AS@5=%.1f n=%d\n", sum.AS1, sum.AS3, sum.AS5, sum.N)
	return sum, nil
}
