package retention

import (
	"strings"
	"unicode/utf8"
)

// ClipText makes free text from telemetry (a Falco rule name, an incident
// title) fit a hold's reason: valid UTF-8 without NUL bytes (Postgres
// refuses them) and at most maxTextBytes, cut at a character boundary with
// "…" marking the cut. A trigger must never fail to place its hold
// because of such text.
func ClipText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= maxTextBytes {
		return s
	}
	const mark = "…"
	cut := maxTextBytes - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
