package otlpconv

import (
	"strings"
	"unicode/utf8"
)

// LogPatternBytes bounds the text a log pattern is made of.
const LogPatternBytes = 300

// LogPattern is the masked text of a log record's body, stored beside it
// (logs.body_pattern) so that root-cause analysis counts log templates
// without reading bodies: the "log" (container runtime), "message" or
// "msg" field of a JSON body, else the body; its first LogPatternBytes
// bytes; UUIDs and every run of hex digits holding a digit (ids, hashes,
// numbers, times) replaced by '#'. What is left is the record's wording.
// It masks the same runs as chstore's SQL for records stored before the
// column existed.
func LogPattern(body string) string {
	var buf [LogPatternBytes + 4]byte
	text := buf[:0]
	found := false
	if strings.HasPrefix(body, "{") {
		for _, k := range []string{`"log":"`, `"message":"`, `"msg":"`} {
			if v, ok := appendJSONStringField(text, body, k); ok && len(v) > 0 {
				text, found = v, true
				break
			}
		}
	}
	if !found {
		text = append(text, body[:min(len(body), LogPatternBytes)]...)
	}
	if len(text) > LogPatternBytes {
		text = text[:LogPatternBytes]
	}
	for k := 0; k < utf8.UTFMax && len(text) > 0; k++ { // do not cut a character in two
		if r, size := utf8.DecodeLastRune(text); r != utf8.RuneError || size != 1 {
			break
		}
		text = text[:len(text)-1]
	}
	return maskRuns(text)
}

// appendJSONStringField finds key (`"name":"`) in a JSON object and
// appends its string value to dst, JSON escapes resolved for \" \\ \/ \n
// \r \t (others kept as written), up to LogPatternBytes bytes. A value cut
// short by the end of the text is taken as far as it goes.
func appendJSONStringField(dst []byte, doc, key string) ([]byte, bool) {
	i := strings.Index(doc, key)
	if i < 0 {
		return dst, false
	}
	s := doc[i+len(key):]
	for j := 0; j < len(s) && len(dst) <= LogPatternBytes; j++ {
		c := s[j]
		switch {
		case c == '"':
			return dst, true
		case c == '\\' && j+1 < len(s):
			j++
			switch s[j] {
			case '"', '\\', '/':
				dst = append(dst, s[j])
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			default:
				dst = append(dst, '\\', s[j])
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst, true
}

// hexDigit marks the bytes of hex digits: 1 letters a-f/A-F, 2 digits.
var hexDigit = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 2
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = 1, 1
	}
	return t
}()

// isUUIDAt reports whether s[i:] starts with a UUID (8-4-4-4-12 hex).
func isUUIDAt(s []byte, i int) bool {
	if len(s)-i < 36 {
		return false
	}
	for k := 0; k < 36; k++ {
		c := s[i+k]
		if k == 8 || k == 13 || k == 18 || k == 23 {
			if c != '-' {
				return false
			}
		} else if hexDigit[c] == 0 {
			return false
		}
	}
	return true
}

// maskRuns replaces UUIDs and maximal runs of hex digits that hold a
// decimal digit with '#', scanning left to right as RE2's leftmost-first
// alternation `uuid|[0-9a-fA-F]*[0-9][0-9a-fA-F]*` does.
func maskRuns(s []byte) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if hexDigit[s[i]] == 0 {
			out = append(out, s[i])
			i++
			continue
		}
		if isUUIDAt(s, i) {
			out = append(out, '#')
			i += 36
			continue
		}
		j, digit := i, false
		for j < len(s) && hexDigit[s[j]] != 0 {
			digit = digit || hexDigit[s[j]] == 2
			j++
		}
		if digit {
			out = append(out, '#')
		} else {
			out = append(out, s[i:j]...)
		}
		i = j
	}
	return string(out)
}
