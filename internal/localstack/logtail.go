package localstack

import (
	"bytes"
	"io"
	"os"
	"strings"
)

const (
	tailLines = 20
	tailBytes = 16 << 10
)

// logMark remembers where each log ended before a start, so error messages
// show only what this run wrote.
type logMark []logPos

type logPos struct {
	path string
	off  int64
}

func markLogs(paths ...string) logMark {
	m := make(logMark, 0, len(paths))
	for _, p := range paths {
		var off int64
		if st, err := os.Stat(p); err == nil {
			off = st.Size()
		}
		m = append(m, logPos{p, off})
	}
	return m
}

// tail formats the last lines written since the mark, per non-empty log.
func (m logMark) tail() string {
	var b strings.Builder
	for _, l := range m {
		if t := tailFrom(l.path, l.off); t != "" {
			b.WriteString("\n--- tail of " + l.path + ":\n" + t)
		}
	}
	return b.String()
}

// mentions tells e.g. a bind failure apart from other start failures.
func (m logMark) mentions(s string) bool {
	for _, l := range m {
		if strings.Contains(tailFrom(l.path, l.off), s) {
			return true
		}
	}
	return false
}

func tailFrom(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil {
		if st.Size() < off { // rotated or truncated
			off = 0
		}
		off = max(off, st.Size()-tailBytes)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	data, _ := io.ReadAll(f)
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return ""
	}
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
