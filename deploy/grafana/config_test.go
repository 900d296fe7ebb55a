// Package grafana holds Grafana provisioning for Aftertrace; the test
// keeps it loadable and its queries valid.
package grafana

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// Every provisioning file is YAML Grafana reads, and the data source of
// Aftertrace's metrics points at the PromQL API with the key header.
func TestProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL string
			JSONData             map[string]any    `yaml:"jsonData"`
			Secure               map[string]string `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	b, err := os.ReadFile("provisioning/datasources/aftertrace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &ds); err != nil || ds.APIVersion != 1 || len(ds.Datasources) != 2 {
		t.Fatalf("datasources: %v %+v", err, ds)
	}
	promql := ds.Datasources[0]
	if promql.Type != "prometheus" || !strings.HasSuffix(promql.URL, "/prometheus") ||
		promql.JSONData["httpHeaderName1"] != "Authorization" || !strings.HasPrefix(promql.Secure["httpHeaderValue1"], "Bearer ") {
		t.Errorf("the PromQL data source: %+v", promql)
	}
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string
			Options map[string]string
		} `yaml:"providers"`
	}
	b, err = os.ReadFile("provisioning/dashboards/aftertrace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &prov); err != nil || len(prov.Providers) != 1 || prov.Providers[0].Options["path"] == "" {
		t.Fatalf("dashboard provider: %v %+v", err, prov)
	}
}

var metricName = regexp.MustCompile(`aftertrace_[a-z_]+`)

// Every panel's query parses as PromQL and names metrics the code
// registers (a _bucket series for a histogram).
func TestDashboardQueries(t *testing.T) {
	b, err := os.ReadFile("dashboards/aftertrace-ops.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard: %v", err)
	}
	var sb strings.Builder
	for _, dir := range []string{"../../services", "../../internal"} {
		err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				b, err := os.ReadFile(path)
				sb.Write(b)
				return err
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	known := sb.String()
	p := parser.NewParser(parser.Options{})
	for _, panel := range d.Panels {
		for _, tg := range panel.Targets {
			if _, err := p.ParseExpr(tg.Expr); err != nil {
				t.Errorf("%s: %q: %v", panel.Title, tg.Expr, err)
			}
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				if !strings.Contains(known, `"`+strings.TrimSuffix(m, "_bucket")+`"`) {
					t.Errorf("%s: metric %s is not registered anywhere in the code", panel.Title, m)
				}
			}
		}
	}
}
