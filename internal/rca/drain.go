package rca

import (
	"strings"
)

// templateMiner groups log lines into templates as Drain does (He et al.,
// ICWS 2017; the Drain3 defaults): a line descends a fixed-depth tree —
// by token count, then by its leading tokens (a token holding a variable
// goes to the wildcard branch) — to a leaf of candidate templates, joins
// the one whose position-wise token similarity reaches simThreshold
// (differing tokens become wildcards) or starts a new one. The lines it
// sees are already masked (ids and numbers are '#', chstore.rcaLogMask),
// so it mostly merges what masking left apart. Not safe for concurrent
// use: one miner serves one analysis.
type templateMiner struct {
	simThreshold float64
	prefixDepth  int
	maxChildren  int
	root         map[int]*drainNode
	templates    []*logTemplate
}

type drainNode struct {
	children map[string]*drainNode
	leaf     []*logTemplate
}

// logTemplate is one mined template.
type logTemplate struct {
	ID     int
	Tokens []string
}

const wildcard = "<*>"

func newTemplateMiner() *templateMiner {
	return &templateMiner{simThreshold: 0.4, prefixDepth: 2, maxChildren: 100, root: map[int]*drainNode{}}
}

// Text is the template as text.
func (t *logTemplate) Text() string { return strings.Join(t.Tokens, " ") }

func hasVariable(tok string) bool {
	return tok == wildcard || strings.ContainsAny(tok, "#0123456789")
}

// masked reports whether a token is only masks and punctuation.
func masked(tok string) bool {
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 {
			return false
		}
	}
	return true
}

// add files one line and returns its template.
func (m *templateMiner) add(line string) *logTemplate {
	toks := strings.Fields(line)
	if len(toks) == 0 {
		toks = []string{""}
	}
	n := m.root[len(toks)]
	if n == nil {
		n = &drainNode{children: map[string]*drainNode{}}
		m.root[len(toks)] = n
	}
	for d := 0; d < m.prefixDepth && d < len(toks); d++ {
		key := toks[d]
		if hasVariable(key) {
			key = wildcard
		}
		next := n.children[key]
		if next == nil {
			if len(n.children) >= m.maxChildren {
				key = wildcard
				next = n.children[key]
			}
			if next == nil {
				next = &drainNode{children: map[string]*drainNode{}}
				n.children[key] = next
			}
		}
		n = next
	}
	var best *logTemplate
	bestSim, bestParams := -1.0, -1
	for _, t := range n.leaf {
		// Similarity counts the words only: the masks ('#') every line
		// shares (times, ids) would make any two lines of a length alike.
		same, words, params := 0, 0, 0
		for i, tok := range t.Tokens {
			if masked(toks[i]) {
				continue
			}
			words++
			switch {
			case tok == wildcard:
				params++
			case tok == toks[i]:
				same++
			}
		}
		sim := 1.0
		if words > 0 {
			sim = float64(same) / float64(words)
		}
		if sim > bestSim || sim == bestSim && params > bestParams {
			best, bestSim, bestParams = t, sim, params
		}
	}
	if best != nil && bestSim >= m.simThreshold {
		for i, tok := range best.Tokens {
			if tok != toks[i] {
				best.Tokens[i] = wildcard
			}
		}
		return best
	}
	t := &logTemplate{ID: len(m.templates), Tokens: append([]string(nil), toks...)}
	m.templates = append(m.templates, t)
	n.leaf = append(n.leaf, t)
	return t
}

// Severity classes of a template.
const (
	sevOther = iota
	sevWarn
	sevError
)

// severityClass reads the severity of a line: the record's own OTLP
// severity number when it has one, else a level word among the line's
// first tokens ("ERROR", "[warn]", "level=error", glog's "E0102"), or a
// line shaped like an exception or a stack frame.
func severityClass(otlp uint8, toks []string) int {
	switch {
	case otlp >= 17:
		return sevError
	case otlp >= 13:
		return sevWarn
	case otlp > 0:
		return sevOther
	}
	for i, tok := range toks {
		if i >= 6 {
			break
		}
		t := strings.ToLower(strings.Trim(tok, "[]():|,;\"'<>{}"))
		if k, v, ok := strings.Cut(t, "="); ok && (k == "level" || k == "lvl" || k == "severity") {
			t = strings.Trim(v, "\"'")
		}
		switch t {
		case "error", "err", "eror", "fatal", "critical", "crit", "severe", "panic", "emerg", "emergency", "alert":
			return sevError
		case "warn", "warning":
			return sevWarn
		case "info", "information", "debug", "trace", "notice", "verbose":
			return sevOther
		}
		if i == 0 && len(tok) >= 2 && tok[1] == '#' { // glog: E0102 → "E#"
			switch tok[0] {
			case 'E', 'F':
				return sevError
			case 'W':
				return sevWarn
			}
		}
	}
	if len(toks) > 0 {
		first := strings.TrimRight(toks[0], ":")
		if strings.HasSuffix(first, "Exception") || strings.HasSuffix(first, "Error") || first == "Traceback" || first == "panic" ||
			(first == "at" && len(toks) > 1 && strings.Contains(toks[1], "(")) || first == "Caused" {
			return sevError
		}
	}
	return sevOther
}
