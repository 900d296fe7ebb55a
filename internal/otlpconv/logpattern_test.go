package otlpconv

import (
	"strings"
	"testing"
)

func TestLogPattern(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"user 42 logged in", "user # logged in"},
		{"order 4d2a46c7-71cb-4cf1-b5bb-b68406d9da6f paid", "order # paid"},
		{"trace ffc8ca7e4c8f06c75142c880d5595d96 span 439bc949a9eeb0cc", "trace # span #"},
		{"deadbeef cafe face", "deadbeef cafe face"}, // hex words without a digit are words
		{"Base64 ok", "Bas# ok"},
		{`{"log":"16:42:22.382 ERROR c.s.X#37 No contacts\n","stream":"stdout","time":"2023-01-29T08:42:22Z"}`,
			"#:#:#.# ERROR c.s.X## No contacts\n"},
		{`{"severity":"info","message":"GET /cart took 12ms","timestamp":1}`, "GET /cart took #ms"},
		{`{"msg":"say \"hi\" to 7"}`, `say "hi" to #`},
		{`{"level":"error"}`, `{"level":"error"}`}, // no text field: the body
		{`{"log":"cut short`, "cut short"},
		{"", ""},
	} {
		if got := LogPattern(tc.body); got != tc.want {
			t.Errorf("LogPattern(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
	long := strings.Repeat("é", 400)
	if got := LogPattern(long); len(got) > LogPatternBytes || !strings.HasSuffix(got, "é") {
		t.Errorf("long body: %d bytes, suffix %q", len(got), got[len(got)-4:])
	}
}

func FuzzLogPattern(f *testing.F) {
	for _, s := range []string{"", "{", `{"log":"`, `{"log":"\`, "a1b2-c3", "4d2a46c7-71cb-4cf1-b5bb-b68406d9da6f", strings.Repeat("9", 500)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		p := LogPattern(body)
		if len(p) > LogPatternBytes+2 { // a JSON escape may resolve to two bytes at the cut
			t.Fatalf("pattern of %d bytes", len(p))
		}
		if LogPattern(body) != p {
			t.Fatal("not deterministic")
		}
		for i := 0; i < len(p); i++ {
			if p[i] >= '0' && p[i] <= '9' {
				t.Fatalf("a digit survived in %q", p)
			}
		}
	})
}

func BenchmarkLogPattern(b *testing.B) {
	body := `{"log":"16:42:22.382 INFO  t.s.TravelServiceImpl#532 TraceID: ffc8ca7e4c8f06c75142c880d5595d96 SpanID: 439bc949a9eeb0cc [getRouteByRouteId][Get Route By Id][Route is: Route(id=f3d4d4ef-693b-4456-8eed-59c0d717dd08, stations=[shanghai, suzhou], distances=[0, 50])]\n","stream":"stdout","time":"2023-01-29T08:42:22.383150913Z"}`
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_ = LogPattern(body)
	}
}
