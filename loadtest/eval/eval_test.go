package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A tiny dataset in the Nezha layout and a fake API: the eval asks for a
// window from each inject_time (UTC), ranks services, breaks ties against
// the truth, counts a failed answer as a miss and ends with the AS@k line.
func TestRunOnSyntheticDataset(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "rca_data"), 0o755); err != nil {
		t.Fatal(err)
	}
	labels := `{"10": [
	  {"inject_time": "2024-03-01 10:00:00", "inject_timestamp": "1", "inject_pod": "cart-5d8f9c-abcde", "inject_type": "cpu_contention"},
	  {"inject_time": "2024-03-01 10:20:00", "inject_timestamp": "2", "inject_pod": "web-front-7c9-x1", "inject_type": "return"}],
	 "11": [
	  {"inject_time": "2024-03-01 11:00:00", "inject_timestamp": "3", "inject_pod": "db-1-2", "inject_type": "network_delay"},
	  {"inject_time": "2024-03-01 11:30:00", "inject_timestamp": "4", "inject_pod": "pay-9-9", "inject_type": "exception"}]}`
	if err := os.WriteFile(filepath.Join(dir, "rca_data", "2024-03-01-fault_list.json"), []byte(labels), 0o644); err != nil {
		t.Fatal(err)
	}
	answers := map[string]string{
		// truth first
		"2024-03-01T10:00:00Z": `[{"service":"cart","score":9},{"service":"web-front","score":3}]`,
		// truth tied with another service: counts as behind it
		"2024-03-01T10:20:00Z": `[{"service":"cart","score":5},{"service":"web-front","score":5},{"service":"db","score":1}]`,
		// truth absent: a miss
		"2024-03-01T11:30:00Z": `[{"service":"cart","score":5}]`,
	}
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/rca" || r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var q struct{ Start, End string }
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		asked = append(asked, q.Start+"/"+q.End)
		a, ok := answers[q.Start]
		if !ok { // 11:00: the API fails
			http.Error(w, `{"error":{"code":"internal"}}`, http.StatusInternalServerError)
			return
		}
		w.Write([]byte(`{"candidates":` + a + `,"window":{}}`))
	}))
	defer srv.Close()

	var out bytes.Buffer
	cfg := DefaultConfig()
	cfg.Dir, cfg.API, cfg.Key, cfg.Out = dir, srv.URL, "k", &out
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 4 || asked[0] != "2024-03-01T10:00:00Z/2024-03-01T10:04:00Z" {
		t.Errorf("asked = %v", asked)
	}
	ranks := []int{}
	for _, o := range sum.Outcomes {
		ranks = append(ranks, o.Rank)
	}
	if want := []int{1, 2, 0, 0}; !equal(ranks, want) {
		t.Errorf("ranks = %v, want %v", ranks, want)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; last != "AS@1=25.0 AS@3=50.0 AS@5=50.0 n=4" {
		t.Errorf("last line = %q\n%s", last, out.String())
	}
}

func TestServiceOfPod(t *testing.T) {
	for pod, want := range map[string]string{
		"frontend-579b9bff58-t2dbm": "frontend", "redis-cart-7b8-x": "redis-cart", "a-b": "a-b", "solo": "solo",
	} {
		if got := ServiceOfPod(pod); got != want {
			t.Errorf("ServiceOfPod(%q) = %q, want %q", pod, got, want)
		}
	}
}

func TestReadLabelsUTC(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rca_data"), 0o755)
	os.WriteFile(filepath.Join(dir, "rca_data", "x-fault_list.json"), []byte(`{"03":[{"inject_time":"2022-08-22 03:53:54","inject_timestamp":"999","inject_pod":"a-b-c","inject_type":"t"}]}`), 0o644)
	fs, err := ReadLabels(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || !fs[0].Time.Equal(time.Date(2022, 8, 22, 3, 53, 54, 0, time.UTC)) || fs[0].Service != "a" {
		t.Errorf("faults = %+v", fs)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
