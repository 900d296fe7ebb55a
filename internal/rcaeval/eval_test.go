package rcaeval

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A tiny dataset in the Nezha layout and a real HTTP server answering like
// the API: the eval asks for a window from each inject_time (UTC), ranks
// services, breaks ties against the truth, counts a failed answer as a
// miss, prints a per-type table and ends with the AS@k line.
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
	  {"inject_time": "2024-03-01 11:30:00", "inject_timestamp": "4", "inject_pod": "pay-9-9", "inject_type": "return"}]}`
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
		w.Write([]byte(`{"candidates":` + a + `,"status":"ranked","window":{}}`))
	}))
	defer srv.Close()

	faults, err := ReadNezhaLabels(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sum, err := Run(context.Background(), API{Base: srv.URL, Key: "k"}, NezhaCases(faults, 0, 4*time.Minute), &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 4 || asked[0] != "2024-03-01T10:00:00Z/2024-03-01T10:04:00Z" {
		t.Errorf("asked = %v", asked)
	}
	var ranks []int
	for _, o := range sum.Outcomes {
		ranks = append(ranks, o.Rank)
	}
	if want := []int{1, 2, 0, 0}; !slices.Equal(ranks, want) {
		t.Errorf("ranks = %v, want %v", ranks, want)
	}
	text := out.String()
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if last := lines[len(lines)-1]; last != "AS@1=25.0 AS@3=50.0 AS@5=50.0 n=4" {
		t.Errorf("last line = %q\n%s", last, text)
	}
	rows := map[string]string{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 5 {
			rows[f[0]] = strings.Join(f[1:], " ")
		}
	}
	for typ, want := range map[string]string{"return": "2 0.0 50.0 50.0", "cpu_contention": "1 100.0 100.0 100.0", "network_delay": "1 0.0 0.0 0.0", "all": "4 25.0 50.0 50.0"} {
		if rows[typ] != want {
			t.Errorf("per-type row %s = %q, want %q:\n%s", typ, rows[typ], want, text)
		}
	}
}

func TestServiceOfPod(t *testing.T) {
	for pod, want := range map[string]string{
		"frontend-579b9bff58-t2dbm": "frontend", "redis-cart-7b8-x": "redis-cart", "a-b": "a-b", "solo": "solo",
		"ts-basic-service-5dc8d4f9fd-46997": "ts-basic-service",
	} {
		if got := ServiceOfPod(pod); got != want {
			t.Errorf("ServiceOfPod(%q) = %q, want %q", pod, got, want)
		}
	}
}

// inject_time is read as UTC even where inject_timestamp disagrees (it is
// 8 h off in one published day).
func TestReadLabelsUTC(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rca_data"), 0o755)
	os.WriteFile(filepath.Join(dir, "rca_data", "x-fault_list.json"), []byte(`{"03":[{"inject_time":"2022-08-22 03:53:54","inject_timestamp":"999","inject_pod":"a-b-c","inject_type":"t"}]}`), 0o644)
	fs, err := ReadNezhaLabels(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || !fs[0].Time.Equal(time.Date(2022, 8, 22, 3, 53, 54, 0, time.UTC)) || fs[0].Service != "a" {
		t.Errorf("faults = %+v", fs)
	}
}

func TestReadCases(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
		n             int
	}{
		{"ok", `[{"start":"2024-01-01T10:00:00Z","end":"2024-01-01T10:10:00Z","service":"cart","type":"oom","id":"PM-1"}]`, "", 1},
		{"not a list", `{"start":"x"}`, "want a JSON array", 0},
		{"empty", `[]`, "empty", 0},
		{"unknown field", `[{"start":"2024-01-01T10:00:00Z","end":"2024-01-01T10:10:00Z","service":"a","rootCause":"b"}]`, "unknown field", 0},
		{"no start", `[{"end":"2024-01-01T10:10:00Z","service":"a"}]`, "cases[0].start: required", 0},
		{"bad time", `[{"start":"yesterday","end":"2024-01-01T10:10:00Z","service":"a"}]`, "want a JSON array", 0},
		{"end before start", `[{"start":"2024-01-01T10:10:00Z","end":"2024-01-01T10:00:00Z","service":"a"}]`, "cases[0].end: must be after start", 0},
		{"no service", `[{"start":"2024-01-01T10:00:00Z","end":"2024-01-01T10:10:00Z"},{"start":"2024-01-01T10:00:00Z","end":"2024-01-01T10:10:00Z","service":" "}]`, "cases[1].service: required", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := ReadCases(strings.NewReader(tc.in))
			if tc.err == "" {
				if err != nil || len(cs) != tc.n {
					t.Fatalf("cases %v, err %v", cs, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}
