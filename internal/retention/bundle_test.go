package retention_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/retention"
)

func testArchive(t *testing.T) ([]byte, *retention.Manifest) {
	t.Helper()
	m := &retention.Manifest{
		BundleID: "0123456789abcdef", TenantID: "t1", CreatedBy: "api-key:k1",
		CreatedAt: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		Request:   retention.BundleRequest{Scope: retention.ScopeContainer, ID: "abcdefabcdef"},
	}
	b, err := retention.BuildArchive(m, []retention.BundleFile{
		{Name: "spans.ndjson", Signal: "spans", Rows: 2, Data: []byte("{\"a\":1}\n{\"a\":2}\n")},
		{Name: "logs.ndjson", Signal: "logs", Rows: 0, Data: nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b, m
}

func TestBundleVerifies(t *testing.T) {
	b, m := testArchive(t)
	got, err := retention.Verify(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if got.BundleID != m.BundleID || len(got.Files) != 2 || got.Files[0].SHA256 != m.Files[0].SHA256 || got.Files[0].Rows != 2 {
		t.Errorf("manifest %+v", got)
	}
}

// TestBundleAnyByteChangedFails flips every byte of the archive after the
// gzip header (whose flags, time and OS bytes describe, not carry, the
// content) in turn: none of the results verifies.
func TestBundleAnyByteChangedFails(t *testing.T) {
	b, _ := testArchive(t)
	for i := 10; i < len(b); i++ {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if _, err := retention.Verify(bytes.NewReader(c)); err == nil {
			t.Fatalf("archive with byte %d changed verified", i)
		}
	}
}

// rewrite rebuilds an archive with edit applied to its entries (a
// tampering that keeps gzip and tar valid).
func rewrite(t *testing.T, b []byte, edit func(name string, data []byte) (string, []byte, bool)) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		name, data, keep := edit(h.Name, data)
		if !keep {
			continue
		}
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))})
		_, _ = tw.Write(data)
	}
	_ = tw.Close()
	_ = zw.Close()
	return out.Bytes()
}

func TestBundleTampering(t *testing.T) {
	b, _ := testArchive(t)
	cases := map[string]func(string, []byte) (string, []byte, bool){
		"changed row": func(n string, d []byte) (string, []byte, bool) {
			if n == "spans.ndjson" {
				d = bytes.Replace(d, []byte(`"a":2`), []byte(`"a":3`), 1)
			}
			return n, d, true
		},
		"removed file": func(n string, d []byte) (string, []byte, bool) { return n, d, n != "logs.ndjson" },
		"extra file": func(n string, d []byte) (string, []byte, bool) {
			if n == "logs.ndjson" {
				return "extra.ndjson", d, true
			}
			return n, d, true
		},
		"no manifest": func(n string, d []byte) (string, []byte, bool) { return n, d, n != retention.ManifestName },
	}
	for name, edit := range cases {
		if _, err := retention.Verify(bytes.NewReader(rewrite(t, b, edit))); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if _, err := retention.Verify(strings.NewReader("not a bundle")); err == nil {
		t.Error("garbage verified")
	}
}
