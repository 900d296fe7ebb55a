package bus

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestPayloadEncoding(t *testing.T) {
	otlpLike := bytes.Repeat([]byte("service.name\x12\x08checkout k8s.pod.name "), 400)
	random := make([]byte, 4096)
	_, _ = rand.Read(random)
	tests := []struct {
		name    string
		payload []byte
		enc     string
	}{
		{"compressible payload is compressed", otlpLike, encodingS2},
		{"incompressible payload stays as it is", random, ""},
		{"empty payload stays as it is", []byte{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, enc := encodePayload(tt.payload)
			if enc != tt.enc {
				t.Fatalf("encoding %q, want %q", enc, tt.enc)
			}
			if enc != "" && len(data) >= len(tt.payload) {
				t.Errorf("compressed %d → %d bytes", len(tt.payload), len(data))
			}
			h := nats.Header{}
			if enc != "" {
				h.Set(HeaderEncoding, enc)
			}
			got, err := DecodePayload(h, data)
			if err != nil || !bytes.Equal(got, tt.payload) {
				t.Fatalf("round trip: %d bytes, err %v", len(got), err)
			}
		})
	}
}

func TestDecodePayloadErrors(t *testing.T) {
	data, _ := encodePayload(bytes.Repeat([]byte("abc"), 1000))
	tests := []struct {
		name string
		enc  string
		data []byte
	}{
		{"unknown encoding", "zstd", data},
		{"corrupt s2 block", encodingS2, data[:len(data)/2]},
		{"not s2 at all", encodingS2, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := nats.Header{}
			h.Set(HeaderEncoding, tt.enc)
			if _, err := DecodePayload(h, tt.data); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
