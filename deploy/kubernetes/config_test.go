// Package kubernetes_test checks the example configurations beside it: the
// Collector's pipelines name only components it defines and export to
// Aftertrace with a tenant key, and falcosidekick posts to the gateway's
// Falco endpoint with one.
package kubernetes_test

import (
	"net/url"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/aftertrace/aftertrace/services/gateway"
)

type collectorConfig struct {
	Receivers  map[string]any `yaml:"receivers"`
	Processors map[string]any `yaml:"processors"`
	Exporters  map[string]struct {
		Endpoint string            `yaml:"endpoint"`
		Headers  map[string]string `yaml:"headers"`
	} `yaml:"exporters"`
	Service struct {
		Pipelines map[string]struct {
			Receivers  []string `yaml:"receivers"`
			Processors []string `yaml:"processors"`
			Exporters  []string `yaml:"exporters"`
		} `yaml:"pipelines"`
	} `yaml:"service"`
}

func TestCollectorConfig(t *testing.T) {
	b, err := os.ReadFile("otel-collector.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c collectorConfig
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("otel-collector.yaml: %v", err)
	}
	for _, want := range []string{"traces", "logs", "metrics", "logs/events"} {
		if _, ok := c.Service.Pipelines[want]; !ok {
			t.Errorf("no %s pipeline", want)
		}
	}
	for _, r := range []string{"otlp", "filelog", "kubeletstats", "k8s_events", "k8sobjects"} {
		if _, ok := c.Receivers[r]; !ok {
			t.Errorf("receiver %s not defined", r)
		}
	}
	for name, p := range c.Service.Pipelines {
		for _, r := range p.Receivers {
			if _, ok := c.Receivers[r]; !ok {
				t.Errorf("pipeline %s: receiver %s not defined", name, r)
			}
		}
		for _, pr := range p.Processors {
			if _, ok := c.Processors[pr]; !ok {
				t.Errorf("pipeline %s: processor %s not defined", name, pr)
			}
		}
		if len(p.Exporters) == 0 {
			t.Errorf("pipeline %s exports nowhere", name)
		}
		for _, e := range p.Exporters {
			ex, ok := c.Exporters[e]
			if !ok {
				t.Errorf("pipeline %s: exporter %s not defined", name, e)
				continue
			}
			if !strings.HasPrefix(ex.Headers["authorization"], "Bearer ") {
				t.Errorf("exporter %s sends no Bearer key", e)
			}
			if !strings.HasSuffix(ex.Endpoint, ":4317") {
				t.Errorf("exporter %s endpoint %q: want the gateway's OTLP/gRPC port", e, ex.Endpoint)
			}
		}
	}
}

func TestFalcosidekickValues(t *testing.T) {
	b, err := os.ReadFile("falcosidekick-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Config struct {
			Webhook struct {
				Address       string `yaml:"address"`
				Method        string `yaml:"method"`
				CustomHeaders string `yaml:"customHeaders"`
			} `yaml:"webhook"`
		} `yaml:"config"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("falcosidekick-values.yaml: %v", err)
	}
	w := v.Config.Webhook
	u, err := url.Parse(w.Address)
	if err != nil || u.Path != gateway.FalcoPath || u.Port() != "4318" {
		t.Errorf("webhook address %q: want the gateway's :4318%s", w.Address, gateway.FalcoPath)
	}
	if w.Method != "POST" || !strings.HasPrefix(w.CustomHeaders, "Authorization:Bearer ") {
		t.Errorf("webhook %s with headers %q: want POST with Authorization:Bearer", w.Method, w.CustomHeaders)
	}
}
