package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"gopkg.in/yaml.v3"

	"github.com/aftertrace/aftertrace/internal/chstore"
)

const specPath = "../../api/openapi.yaml"

// spec is the part of an OpenAPI document these tests read.
type spec struct {
	OpenAPI  string                       `yaml:"openapi"`
	Security []map[string][]string        `yaml:"security"`
	Paths    map[string]map[string]specOp `yaml:"paths"`
	Comps    specComponents               `yaml:"components"`
}

type specOp struct {
	Security   *[]map[string][]string `yaml:"security"`
	Parameters []specParam            `yaml:"parameters"`
	Responses  map[string]any         `yaml:"responses"`
}

type specParam struct {
	Name string `yaml:"name"`
	In   string `yaml:"in"`
	Ref  string `yaml:"$ref"`
}

type specComponents struct {
	SecuritySchemes map[string]struct {
		Type   string `yaml:"type"`
		Scheme string `yaml:"scheme"`
	} `yaml:"securitySchemes"`
	Schemas map[string]struct {
		Required   []string       `yaml:"required"`
		Properties map[string]any `yaml:"properties"`
	} `yaml:"schemas"`
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	var s spec
	if err := yaml.Unmarshal(b, &s); err != nil {
		t.Fatalf("parse %s: %v", specPath, err)
	}
	if !strings.HasPrefix(s.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", s.OpenAPI)
	}
	return &s
}

// chiParam matches a chi path parameter, with an optional regexp.
var chiParam = regexp.MustCompile(`\{([A-Za-z0-9_]+)(:[^}]*)?\}`)

// specPathOf turns a chi pattern into an OpenAPI path ("{id:[0-9]+}" →
// "{id}").
func specPathOf(route string) string {
	if rest, ok := strings.CutSuffix(route, "/*"); ok { // a subtree (the console): /x/{path}
		route = rest + "/{path}"
	}
	return chiParam.ReplaceAllString(route, "{$1}")
}

// guarded routes need a credential: a tenant's key (/api/) or the admin
// key (/admin/).
func guarded(path string) bool {
	return strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/admin/") || strings.HasPrefix(path, "/prometheus/")
}

// excluded are the routes the spec leaves out on purpose (none since
// profiling moved to the ops listener; kept for future ones).
func excluded(string) bool { return false }

// routerRoutes maps spec path → methods served.
func routerRoutes(t *testing.T, r chi.Router) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if !excluded(route) {
			p := specPathOf(route)
			out[p] = append(out[p], strings.ToLower(method))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenAPICoversRouter(t *testing.T) {
	s := loadSpec(t)
	h := newHarness(t, &fakeStore{})
	routes := routerRoutes(t, h.svc.Router())

	for path, methods := range routes {
		ops, ok := s.Paths[path]
		if !ok {
			t.Errorf("route %s is not in %s", path, specPath)
			continue
		}
		if guarded(path) {
			// API and admin routes: exactly the methods served.
			var specMethods []string
			for m := range ops {
				specMethods = append(specMethods, m)
			}
			sort.Strings(specMethods)
			sort.Strings(methods)
			if !slices.Equal(specMethods, methods) {
				t.Errorf("%s: spec methods %v, router methods %v", path, specMethods, methods)
			}
		}
	}
	for path, ops := range s.Paths {
		methods, ok := routes[path]
		if !ok {
			t.Errorf("spec path %s is not routed", path)
			continue
		}
		for m, op := range ops {
			if !slices.Contains(methods, m) {
				t.Errorf("spec %s %s is not routed", strings.ToUpper(m), path)
			}
			// Path parameters are declared.
			for _, name := range chiParam.FindAllStringSubmatch(path, -1) {
				if !slices.ContainsFunc(op.Parameters, func(p specParam) bool {
					return p.Name == name[1] && p.In == "path"
				}) {
					t.Errorf("%s %s does not declare path parameter %s", m, path, name[1])
				}
			}
			// Security: API routes inherit bearer auth, admin routes name
			// adminAuth, ops routes opt out.
			public := op.Security != nil && len(*op.Security) == 0
			if guarded(path) == public {
				t.Errorf("%s %s: public=%v", m, path, public)
			}
			if admin := strings.HasPrefix(path, "/admin/"); admin {
				if op.Security == nil || len(*op.Security) != 1 || (*op.Security)[0]["adminAuth"] == nil {
					t.Errorf("%s %s: security %v, want adminAuth only", m, path, op.Security)
				}
				for _, code := range []string{"400", "401", "500"} {
					if _, ok := op.Responses[code]; !ok {
						t.Errorf("%s %s lacks response %s", m, path, code)
					}
				}
				if op.Responses["200"] == nil && op.Responses["201"] == nil {
					t.Errorf("%s %s lacks a 200 or 201 response", m, path)
				}
			}
			if strings.HasPrefix(path, "/api/") {
				for _, code := range []string{"400", "401", "500"} {
					if _, ok := op.Responses[code]; !ok {
						t.Errorf("%s %s lacks response %s", m, path, code)
					}
				}
				if op.Responses["200"] == nil && op.Responses["201"] == nil && op.Responses["204"] == nil {
					t.Errorf("%s %s lacks a 200, 201 or 204 response", m, path)
				}
			}
		}
	}
	if _, ok := s.Paths["/metrics"]; ok {
		t.Error("spec lists /metrics, which the API listener does not serve (it is on the ops listener)")
	}
	for _, want := range []string{"/healthz", "/readyz", "/api/v1/traces/{traceId}", "/api/v1/traces", "/api/v1/services",
		"/admin/v1/tenants", "/admin/v1/tenants/{tenantId}/keys", "/admin/v1/keys/{keyId}"} {
		if _, ok := s.Paths[want]; !ok {
			t.Errorf("spec lacks %s", want)
		}
	}
}

func TestOpenAPIComponents(t *testing.T) {
	s := loadSpec(t)
	if len(s.Security) != 1 {
		t.Errorf("global security = %v", s.Security)
	} else if _, ok := s.Security[0]["bearerAuth"]; !ok {
		t.Errorf("global security = %v, want bearerAuth", s.Security)
	}
	for _, name := range []string{"bearerAuth", "adminAuth"} {
		if sch := s.Comps.SecuritySchemes[name]; sch.Type != "http" || sch.Scheme != "bearer" {
			t.Errorf("%s = %+v", name, sch)
		}
	}
	for _, name := range []string{"Span", "TraceSummary", "Error", "ListEnvelope", "Trace", "ServiceSummary"} {
		if _, ok := s.Comps.Schemas[name]; !ok {
			t.Errorf("schema %s missing", name)
		}
	}
}

// TestOpenAPISchemasMatchAnswers checks that the properties of the Span,
// TraceSummary, Trace, ServiceSummary and Error schemas are exactly the keys
// the handlers write.
func TestOpenAPISchemasMatchAnswers(t *testing.T) {
	s := loadSpec(t)
	store := &fakeStore{
		spans: []chstore.Span{{}},
		sums:  []chstore.TraceSummary{{}},
		svcs:  []chstore.ServiceSummary{{}},
	}
	h := newHarness(t, store)
	keys := func(path string) (map[string]any, []string) {
		rec := h.get(t, path)
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return m, sortedKeys(m)
	}
	check := func(schema string, got []string) {
		t.Helper()
		sc := s.Comps.Schemas[schema]
		props := sortedKeys(sc.Properties)
		req := slices.Clone(sc.Required)
		sort.Strings(req)
		if !slices.Equal(props, got) || !slices.Equal(req, got) {
			t.Errorf("schema %s: properties %v, required %v; answer keys %v", schema, props, req, got)
		}
	}

	trace, traceKeys := keys("/api/v1/traces/" + validID)
	check("Trace", traceKeys)
	check("Span", sortedKeys(trace["spans"].([]any)[0].(map[string]any)))

	list, listKeys := keys("/api/v1/traces")
	check("ListEnvelope", listKeys)
	check("TraceSummary", sortedKeys(list["items"].([]any)[0].(map[string]any)))

	svcs, _ := keys("/api/v1/services")
	check("ServiceSummary", sortedKeys(svcs["items"].([]any)[0].(map[string]any)))

	errBody, errKeys := keys("/api/v1/traces/bad")
	check("Error", errKeys)
	check("ErrorDetail", sortedKeys(errBody["error"].(map[string]any)))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
