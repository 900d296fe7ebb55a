package gateway

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/tlsconfig"
	"github.com/aftertrace/aftertrace/internal/tlsconfig/tlsconfigtest"
)

// startTLSGateway runs a gateway with tc until the test ends.
func startTLSGateway(t *testing.T, tc tlsconfig.Config) *Service {
	t.Helper()
	cfg := testConfig()
	cfg.TLS = tc
	svc, err := New(cfg, Deps{
		Publisher: &fakePublisher{},
		Auth:      authn.NewStatic(map[string]authn.Tenant{testKey: {ID: "t1"}}),
		Registry:  prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return svc
}

func httpsPost(t *testing.T, svc *Service, tc *tls.Config) (int, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, _ := http.NewRequest(http.MethodPost, "https://"+svc.HTTPAddr()+"/v1/traces", strings.NewReader(string(jsonBody(t, sampleTraces(1)))))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func grpcTLSExport(t *testing.T, svc *Service, creds credentials.TransportCredentials) error {
	t.Helper()
	cc, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	_, err = exportGRPC(cc, testKey, sampleTraces(1))
	return err
}

func TestTLS(t *testing.T) {
	pki := tlsconfigtest.New(t)
	svc := startTLSGateway(t, tlsconfig.Config{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile})

	if code, err := httpsPost(t, svc, pki.ClientConfig(false)); err != nil || code != 200 {
		t.Errorf("HTTPS export: %d %v", code, err)
	}
	if err := grpcTLSExport(t, svc, credentials.NewTLS(pki.ClientConfig(false))); err != nil {
		t.Errorf("gRPC TLS export: %v", err)
	}
	// Plain text is refused on both listeners.
	c := &http.Client{Timeout: 5 * time.Second}
	if resp, err := c.Post("http://"+svc.HTTPAddr()+"/v1/traces", "application/json", strings.NewReader("{}")); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP export accepted by a TLS listener")
		}
	}
	if err := grpcTLSExport(t, svc, insecure.NewCredentials()); err == nil {
		t.Error("plain gRPC export accepted by a TLS listener")
	}
}

func TestMutualTLS(t *testing.T) {
	pki := tlsconfigtest.New(t)
	svc := startTLSGateway(t, tlsconfig.Config{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.CAFile})

	if code, err := httpsPost(t, svc, pki.ClientConfig(true)); err != nil || code != 200 {
		t.Errorf("HTTPS export with client cert: %d %v", code, err)
	}
	if err := grpcTLSExport(t, svc, credentials.NewTLS(pki.ClientConfig(true))); err != nil {
		t.Errorf("gRPC export with client cert: %v", err)
	}
	if _, err := httpsPost(t, svc, pki.ClientConfig(false)); err == nil {
		t.Error("HTTPS export without client cert accepted")
	}
	if err := grpcTLSExport(t, svc, credentials.NewTLS(pki.ClientConfig(false))); err == nil {
		t.Error("gRPC export without client cert accepted")
	}
	// A certificate from another CA is refused too.
	other := tlsconfigtest.New(t)
	cc := pki.ClientConfig(false)
	cc.Certificates = []tls.Certificate{other.ClientCert}
	if _, err := httpsPost(t, svc, cc); err == nil {
		t.Error("HTTPS export with a client cert of another CA accepted")
	}
}

func TestTLSConfigValidate(t *testing.T) {
	cfg := testConfig()
	cfg.TLS = tlsconfig.Config{CertFile: "x.pem", ClientCAFile: "ca.pem"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "key file") {
		t.Errorf("Validate = %v", err)
	}
	cfg.TLS = tlsconfig.Config{CertFile: "/nonexistent.pem", KeyFile: "/nonexistent-key.pem"}
	if _, err := New(cfg, Deps{Publisher: &fakePublisher{}, Auth: authn.NewStatic(nil)}); err == nil {
		t.Error("New with missing certificate files succeeded")
	}
}
