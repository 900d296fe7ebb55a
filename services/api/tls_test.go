package api_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/tlsconfig"
	"github.com/aftertrace/aftertrace/internal/tlsconfig/tlsconfigtest"
	"github.com/aftertrace/aftertrace/services/api"
)

// startTLSAPI runs an API with tc until the test ends.
func startTLSAPI(t *testing.T, tc tlsconfig.Config) *api.Service {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.TLS = tc
	svc, err := api.New(cfg, api.Deps{Store: &fakeStore{}, Auth: authn.NewStatic(map[string]authn.Tenant{testKey: {ID: testTenant}})})
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

func getServices(svc *api.Service, scheme string, tc *tls.Config) (int, error) {
	tr := &http.Transport{TLSClientConfig: tc}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, scheme+"://"+svc.Addr()+"/api/v1/services", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func TestAPITLS(t *testing.T) {
	pki := tlsconfigtest.New(t)
	svc := startTLSAPI(t, tlsconfig.Config{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile})
	if code, err := getServices(svc, "https", pki.ClientConfig(false)); err != nil || code != 200 {
		t.Errorf("HTTPS: %d %v", code, err)
	}
	if code, err := getServices(svc, "http", nil); err == nil && code == 200 {
		t.Error("plain HTTP answered 200 on a TLS listener")
	}
}

func TestAPIMutualTLS(t *testing.T) {
	pki := tlsconfigtest.New(t)
	svc := startTLSAPI(t, tlsconfig.Config{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.CAFile})
	if code, err := getServices(svc, "https", pki.ClientConfig(true)); err != nil || code != 200 {
		t.Errorf("HTTPS with client cert: %d %v", code, err)
	}
	if _, err := getServices(svc, "https", pki.ClientConfig(false)); err == nil {
		t.Error("HTTPS without client cert accepted")
	}
}
