package allinone

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBadInput: every malformed request gets the right status and a clear
// message, and the gateway keeps serving.
func TestBadInput(t *testing.T) {
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{cfg: func(c *Config) {
		c.Gateway.MaxRequestBytes = 1 << 20
	}})
	shortID := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abcd","spanId":"0102030405060708","name":"x"}]}]}]}`
	cases := []struct {
		name, contentType, encoding string
		body                        []byte
		want                        int
		msg                         string // a word the message must contain
	}{
		{"garbage protobuf", "application/x-protobuf", "", []byte("\xff\xfe\xfdnot a protobuf"), http.StatusBadRequest, "protobuf"},
		{"wrong content type", "text/plain", "", []byte("hello"), http.StatusUnsupportedMediaType, "Content-Type"},
		{"invalid json", "application/json", "", []byte(`{"resourceSpans": [`), http.StatusBadRequest, "JSON"},
		{"trace id of wrong length", "application/json", "", []byte(shortID), http.StatusBadRequest, "trace"},
		{"oversized", "application/x-protobuf", "", bytes.Repeat([]byte{0}, 2<<20), http.StatusRequestEntityTooLarge, "limit"},
		{"gzip bomb", "application/x-protobuf", "gzip", gzipped(t, bytes.Repeat([]byte{0}, 256<<20)), http.StatusRequestEntityTooLarge, "limit"},
		{"broken gzip", "application/x-protobuf", "gzip", []byte("not gzip at all"), http.StatusBadRequest, "gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := app.post(t, tc.body, tc.contentType, tc.encoding)
			if code != tc.want {
				t.Fatalf("status %d (%s), want %d", code, body, tc.want)
			}
			if !strings.Contains(strings.ToLower(body), strings.ToLower(tc.msg)) {
				t.Errorf("message %q does not mention %q", body, tc.msg)
			}
		})
	}
	id := newTraceID()
	if code, _, body := app.sendTrace(t, makeTrace(id, 2, "after-bad-input")); code != http.StatusOK {
		t.Fatalf("good request after bad ones: %d %s", code, body)
	}
	app.waitTrace(t, hexID(id), 2, 15*time.Second)
}
