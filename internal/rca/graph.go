package rca

// graph is the service call graph seen in the spans: caller → callees.
type graph struct {
	callees map[string]map[string]bool
	reach   map[string]map[string]bool // memoized transitive callees
}

func callGraph(spans []SpanStat) graph {
	g := graph{callees: map[string]map[string]bool{}, reach: map[string]map[string]bool{}}
	for _, s := range spans {
		if s.Kind != SpanInbound || s.Caller == "" {
			continue
		}
		caller, callee := serviceOf(s.Caller, s.CallerPod, ""), serviceOf(s.Service, s.Pod, "")
		if caller == callee {
			continue
		}
		if g.callees[caller] == nil {
			g.callees[caller] = map[string]bool{}
		}
		g.callees[caller][callee] = true
	}
	return g
}

// descendants returns every service reachable from svc through calls
// (svc itself only through a cycle).
func (g graph) descendants(svc string) map[string]bool {
	if r, ok := g.reach[svc]; ok {
		return r
	}
	r := map[string]bool{}
	stack := []string{svc}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for c := range g.callees[s] {
			if !r[c] {
				r[c] = true
				stack = append(stack, c)
			}
		}
	}
	g.reach[svc] = r
	return r
}

// reaches reports whether to is a (transitive) callee of from.
func (g graph) reaches(from, to string) bool { return g.descendants(from)[to] }
