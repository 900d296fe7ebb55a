package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBaseFor(t *testing.T) {
	for rest, want := range map[string]string{
		"":                  "./",
		"incidents":         "./",
		"incidents/":        "../",
		"incidents/abc":     "../",
		"traces/abc/spans":  "../../",
		"containers/x/y/z/": "../../../../",
	} {
		if got := baseFor(rest); got != want {
			t.Errorf("baseFor(%q) = %q, want %q", rest, got, want)
		}
	}
}

func TestHandler(t *testing.T) {
	h := Handler()
	tests := []struct {
		path, ctype, body string
		code              int
	}{
		{"/ui/", "text/html", `<base href="./">`, 200},
		{"/ui/incidents/0123abcd", "text/html", `<base href="../">`, 200},
		{"/ui/assets/app.js", "javascript", "sessionStorage", 200},
		{"/ui/assets/style.css", "text/css", ":focus-visible", 200},
		{"/ui/assets/missing.js", "", "", 404},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s: %d, want %d", tc.path, rec.Code, tc.code)
			continue
		}
		if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: no CSP", tc.path)
		}
		if tc.code == 200 && (!strings.Contains(rec.Header().Get("Content-Type"), tc.ctype) || !strings.Contains(rec.Body.String(), tc.body)) {
			t.Errorf("%s: %s, body lacks %q", tc.path, rec.Header().Get("Content-Type"), tc.body)
		}
	}
}
