package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// route is one operation of api/openapi.yaml.
type route struct {
	method, path string
	public       bool // security: [] (health checks)
}

func specRoutes(spec string) ([]route, error) {
	b, err := os.ReadFile(spec)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Security *[]any `yaml:"security"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	var out []route
	for p, ops := range doc.Paths {
		for m, op := range ops {
			switch m {
			case "get", "post", "put", "delete", "patch":
				out = append(out, route{method: strings.ToUpper(m), path: p, public: op.Security != nil && len(*op.Security) == 0})
			}
		}
	}
	slices.SortFunc(out, func(a, b route) int { return strings.Compare(a.path+a.method, b.path+b.method) })
	return out, nil
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// routesWithoutCredentials: every route of the spec but the health checks
// answers 401 with the error body when no credentials are sent.
func routesWithoutCredentials(ctx context.Context, e *env) Result {
	routes, err := specRoutes(e.spec)
	if err != nil {
		return Result{Figure: err.Error()}
	}
	checked, public := 0, 0
	var bad []string
	for _, r := range routes {
		if r.public {
			public++
			continue
		}
		p := pathParam.ReplaceAllString(r.path, "0123456789abcdef")
		req, _ := http.NewRequestWithContext(ctx, r.method, "http://"+e.st.APIAddr+p, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		a := do(req)
		checked++
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		if a.err != nil || a.status != http.StatusUnauthorized || json.Unmarshal(a.body, &body) != nil || body.Error.Code == "" {
			bad = append(bad, fmt.Sprintf("%s %s → %d", r.method, r.path, a.status))
		}
	}
	fig := fmt.Sprintf("%d routes without credentials: %d answered 401 with an error body (%d public routes skipped: health checks, the console page)", checked, checked-len(bad), public)
	if len(bad) > 0 {
		fig += "; not: " + strings.Join(bad, ", ")
	}
	return Result{Figure: fig, Pass: len(bad) == 0 && checked > 20}
}

// otherTenantsIDs: the quiet tenant's trace, hold, container event and
// evidence bundle are 200 for it and 404 for the hostile tenant, by every
// route that takes their ids.
func otherTenantsIDs(ctx context.Context, e *env) Result {
	st, q := e.st, e.quiet
	api := "http://" + st.APIAddr
	td, traceID := trace("owned", 3, time.Now())
	if a := st.export(ctx, q.Key, td); a.status != http.StatusOK {
		return Result{Figure: fmt.Sprintf("export: %d %s", a.status, a.body)}
	}
	containerID := "c0ffee" + traceID[:26]
	alert := fmt.Sprintf(`{"output":"shell","priority":"Warning","rule":"Terminal shell in container","source":"syscall","time":%q,"output_fields":{"container.id":%q,"k8s.ns.name":"shop","k8s.pod.name":"web-0"}}`,
		time.Now().UTC().Format(time.RFC3339Nano), containerID)
	if a := post(ctx, "http://"+st.GatewayHTTP+"/ingest/falco", q.Key, "application/json", "", []byte(alert)); a.status != http.StatusOK {
		return Result{Figure: fmt.Sprintf("falco: %d %s", a.status, a.body)}
	}
	var eventID string
	deadline := time.Now().Add(30 * time.Second)
	for eventID == "" || !visible(ctx, api+"/api/v1/traces/"+traceID, q.Key) {
		if time.Now().After(deadline) {
			return Result{Figure: "the quiet tenant's trace or event never became readable"}
		}
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		a := get(ctx, api+"/api/v1/events?"+url.Values{"start": {strconv.FormatInt(time.Now().Add(-time.Hour).UnixNano(), 10)}}.Encode(), q.Key)
		if a.status == http.StatusOK && json.Unmarshal(a.body, &page) == nil && len(page.Items) > 0 {
			eventID = page.Items[0].ID
		}
		time.Sleep(200 * time.Millisecond)
	}
	var hold, bundle struct {
		ID string `json:"id"`
	}
	a := post(ctx, api+"/api/v1/holds", q.Key, "application/json", "", []byte(`{"scope":"trace","id":"`+traceID+`","reason":"reliability"}`))
	if a.status >= 300 || json.Unmarshal(a.body, &hold) != nil || hold.ID == "" {
		return Result{Figure: fmt.Sprintf("create hold: %d %s", a.status, a.body)}
	}
	now := time.Now().UTC()
	a = post(ctx, api+"/api/v1/evidence", q.Key, "application/json", "", []byte(fmt.Sprintf(`{"scope":"trace","id":%q,"start":%q,"end":%q}`,
		traceID, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Minute).Format(time.RFC3339))))
	if a.status >= 300 || json.Unmarshal(a.body, &bundle) != nil || bundle.ID == "" {
		return Result{Figure: fmt.Sprintf("create evidence bundle: %d %s", a.status, a.body)}
	}
	reads := []string{
		"/api/v1/traces/" + traceID, "/api/v1/traces/" + traceID + "/events",
		"/api/v1/events/" + eventID, "/api/v1/events/" + eventID + "/impact",
		"/api/v1/containers/" + containerID, "/api/v1/containers/" + containerID + "/timeline",
		"/api/v1/evidence/" + bundle.ID, "/api/v1/evidence/" + bundle.ID + "/custody",
	}
	var bad []string
	for _, p := range reads {
		if own := get(ctx, api+p, q.Key); own.status != http.StatusOK {
			bad = append(bad, fmt.Sprintf("owner GET %s → %d", p, own.status))
		}
		if other := get(ctx, api+p, e.hostile.Key); other.status != http.StatusNotFound {
			bad = append(bad, fmt.Sprintf("other tenant GET %s → %d", p, other.status))
		}
	}
	for _, p := range []string{"/api/v1/evidence/" + bundle.ID + "/download"} {
		if other := get(ctx, api+p, e.hostile.Key); other.status != http.StatusNotFound {
			bad = append(bad, fmt.Sprintf("other tenant GET %s → %d", p, other.status))
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, api+"/api/v1/holds/"+hold.ID, nil)
	req.Header.Set("Authorization", "Bearer "+e.hostile.Key)
	if other := do(req); other.status != http.StatusNotFound {
		bad = append(bad, fmt.Sprintf("other tenant DELETE hold → %d", other.status))
	}
	n := 2*len(reads) + 2
	fig := fmt.Sprintf("%d requests on another tenant's trace, event, container, hold and bundle ids: %d as expected (owner 200, other 404)", n, n-len(bad))
	if len(bad) > 0 {
		fig += "; not: " + strings.Join(bad, "; ")
	}
	return Result{Figure: fig, Pass: len(bad) == 0}
}

func visible(ctx context.Context, u, key string) bool {
	return get(ctx, u, key).status == http.StatusOK
}

// probes are hostile strings for every input.
var probes = []string{
	`'`, `"`, "`", `\`, `'; DROP TABLE spans; --`, `" OR 1=1 --`, `') OR ('1'='1`,
	`x' UNION SELECT name FROM system.tables --`, "%", "_", "\x00", "\xff\xfe", "😀", strings.Repeat("A'", 700),
}

// injectionProbes: every GET query parameter of the spec and every path
// id, with each probe, as the hostile tenant: never a 5xx, never another
// tenant's data (the quiet tenant's service name never shows up).
func injectionProbes(ctx context.Context, e *env) Result {
	b, err := os.ReadFile(e.spec)
	if err != nil {
		return Result{Figure: err.Error()}
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name string `yaml:"name"`
				In   string `yaml:"in"`
				Ref  string `yaml:"$ref"`
			} `yaml:"parameters"`
		} `yaml:"paths"`
		Components struct {
			Parameters map[string]struct {
				Name string `yaml:"name"`
				In   string `yaml:"in"`
			} `yaml:"parameters"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Result{Figure: err.Error()}
	}
	api := "http://" + e.st.APIAddr
	requests, fives, leaks := 0, 0, 0
	var first string
	for p, ops := range doc.Paths {
		op, ok := ops["get"]
		if !ok || !strings.HasPrefix(p, "/api/") {
			continue
		}
		for _, probe := range probes {
			var urls []string
			base := pathParam.ReplaceAllString(p, url.PathEscape(probe))
			urls = append(urls, api+base)
			for _, prm := range op.Parameters {
				name, in := prm.Name, prm.In
				if prm.Ref != "" {
					c := doc.Components.Parameters[strings.TrimPrefix(prm.Ref, "#/components/parameters/")]
					name, in = c.Name, c.In
				}
				if in == "query" {
					urls = append(urls, api+pathParam.ReplaceAllString(p, "0123456789abcdef")+"?"+url.Values{name: {probe}}.Encode())
				}
			}
			for _, u := range urls {
				a := get(ctx, u, e.hostile.Key)
				requests++
				if a.err != nil || a.status >= 500 {
					fives++
					if first == "" {
						first = fmt.Sprintf("%s → %d", u, a.status)
					}
				}
				if strings.Contains(string(a.body), "quiet-checkout") || strings.Contains(string(a.body), "owned") {
					leaks++
				}
			}
		}
	}
	fig := fmt.Sprintf("%d probe requests (SQL quoting, comments, NUL, bad UTF-8, long) on every GET parameter and path id: 5xx %d, other tenants' data %d", requests, fives, leaks)
	if first != "" {
		fig += "; first 5xx: " + first
	}
	return Result{Figure: fig, Pass: requests > 100 && fives == 0 && leaks == 0}
}
