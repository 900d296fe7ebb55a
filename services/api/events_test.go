package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/services/api"
)

// fakeEvents answers event reads from fields and records the last query.
type fakeEvents struct {
	evs   []events.Event
	query chstore.EventQuery
}

func (f *fakeEvents) SearchEvents(_ context.Context, q chstore.EventQuery) ([]events.Event, error) {
	f.query = q
	return f.evs[:min(len(f.evs), q.Limit)], nil
}

func (f *fakeEvents) GetContainer(_ context.Context, _, id string) (chstore.Container, error) {
	if !strings.HasPrefix(strings.Repeat("ab", 32), id) {
		return chstore.Container{}, apperr.New(apperr.KindNotFound, "container %s not found", id)
	}
	return chstore.Container{ContainerID: strings.Repeat("ab", 32), ExitCode: events.ExitCodeUnknown, FirstSeenNs: 10, LastSeenNs: 20}, nil
}

func (f *fakeEvents) GetPod(context.Context, string, string) (chstore.Pod, error) {
	return chstore.Pod{}, apperr.New(apperr.KindNotFound, "pod not found")
}

func (f *fakeEvents) ContainerTimeline(_ context.Context, _, _ string, start, end time.Time, _ int) ([]chstore.TimelineItem, bool, error) {
	return []chstore.TimelineItem{{Kind: chstore.TimelineMetric, TimeNs: 15, Metric: &chstore.TimelineMetricPoint{Name: "m", Value: 1.5, ValueType: 1}}}, false, nil
}

func newEventsAPI(t *testing.T, es api.EventStore) *api.Service {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	svc, err := api.New(cfg, api.Deps{Store: &fakeStore{}, Events: es, Registry: prometheus.NewRegistry(),
		Auth: authn.NewStatic(map[string]authn.Tenant{testKey: {ID: testTenant}})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc
}

func getWith(svc *api.Service, target string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, req)
	return rec
}

func TestEventsParameters(t *testing.T) {
	fe := &fakeEvents{}
	for i := range 3 {
		fe.evs = append(fe.evs, events.Event{ID: events.ID{byte(i + 1)}, TimeUnixNano: uint64(100 - i)})
	}
	svc := newEventsAPI(t, fe)
	for target, code := range map[string]int{
		"/api/v1/events?minSeverity=warning":                          200,
		"/api/v1/events?minSeverity=Critical":                         200,
		"/api/v1/events?minSeverity=13":                               200,
		"/api/v1/events?minSeverity=25":                               400,
		"/api/v1/events?minSeverity=loud":                             400,
		"/api/v1/events?type=oom_killed":                              200,
		"/api/v1/events?type=bogus":                                   400,
		"/api/v1/events?containerId=abc":                              400,
		"/api/v1/events?containerId=containerd://ABABABABABAB":        200,
		"/api/v1/events?cursor=xyz":                                   400,
		"/api/v1/events?limit=0":                                      400,
		"/api/v1/containers/" + strings.Repeat("ab", 6):               200,
		"/api/v1/containers/" + strings.Repeat("ab", 32):              200,
		"/api/v1/containers/" + strings.Repeat("cd", 6):               404,
		"/api/v1/containers/short":                                    400,
		"/api/v1/containers/" + strings.Repeat("ab", 6) + "/timeline": 200,
		"/api/v1/pods/some-uid":                                       404,
	} {
		if rec := getWith(svc, target); rec.Code != code {
			t.Errorf("%s: %d, want %d: %s", target, rec.Code, code, rec.Body)
		}
	}
	getWith(svc, "/api/v1/events?minSeverity=warning&containerId=containerd://ABABABABABAB&namespace=shop")
	if q := fe.query; q.MinSeverity != events.SeverityWarning || q.ContainerID != "abababababab" || q.Namespace != "shop" || q.TenantID != testTenant {
		t.Errorf("query %+v", q)
	}

	// Paging: limit 2 of 3 gives a cursor that decodes to the second item.
	rec := getWith(svc, "/api/v1/events?limit=2")
	var page struct {
		Items      []events.Event `json:"items"`
		NextCursor string         `json:"nextCursor"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("page %s: %v", rec.Body, err)
	}
	if page.Items[0].Tags == nil || page.Items[0].FieldKeys == nil {
		t.Error("nil arrays in the answer")
	}
	getWith(svc, "/api/v1/events?cursor="+page.NextCursor)
	if c := fe.query.Cursor; c == nil || c.ID != fe.evs[1].ID || c.TimeNs != 99 {
		t.Errorf("cursor %+v", c)
	}

	// Without an event store every route answers 503.
	none := newEventsAPI(t, nil)
	for _, target := range []string{"/api/v1/events", "/api/v1/containers/" + strings.Repeat("ab", 6), "/api/v1/pods/x"} {
		if rec := getWith(none, target); rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s without store: %d", target, rec.Code)
		}
	}
}
