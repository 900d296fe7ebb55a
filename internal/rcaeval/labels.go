package rcaeval

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Fault is one labelled fault of a Nezha-layout dataset.
type Fault struct {
	Time    time.Time `json:"time"` // inject_time, read as UTC
	Pod     string    `json:"pod"`
	Type    string    `json:"type"`
	Service string    `json:"service"` // root-cause service: the pod name without its last two '-' segments
}

// ServiceOfPod is the labels' root-cause service of a pod: the pod name
// without its last two '-' segments (replica set hash, pod id), as the
// Nezha datasets define it.
func ServiceOfPod(pod string) string {
	parts := strings.Split(pod, "-")
	if len(parts) <= 2 {
		return pod
	}
	return strings.Join(parts[:len(parts)-2], "-")
}

// ReadNezhaLabels reads every DIR/rca_data/*fault_list.json, by time.
func ReadNezhaLabels(dir string) ([]Fault, error) {
	files, err := filepath.Glob(filepath.Join(dir, "rca_data", "*fault_list.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no rca_data/*fault_list.json", dir)
	}
	var out []Fault
	for _, f := range files {
		fs, err := ReadNezhaFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// ReadNezhaFile reads one fault list (map hour -> list of injections).
// inject_time is read as UTC: it matches the data's timestamps, while
// inject_timestamp is hours off in some published days; the timestamp is
// used only when inject_time is missing or unreadable.
func ReadNezhaFile(path string) ([]Fault, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string][]struct {
		InjectTime      string `json:"inject_time"`
		InjectTimestamp string `json:"inject_timestamp"`
		InjectPod       string `json:"inject_pod"`
		InjectType      string `json:"inject_type"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	hours := make([]string, 0, len(raw))
	for h := range raw {
		hours = append(hours, h)
	}
	sort.Strings(hours)
	var out []Fault
	for _, hour := range hours {
		for i, r := range raw[hour] {
			t, err := time.ParseInLocation(time.DateTime, strings.TrimSpace(r.InjectTime), time.UTC)
			if err != nil {
				sec, err2 := strconv.ParseInt(r.InjectTimestamp, 10, 64)
				if err2 != nil {
					return nil, fmt.Errorf("%s: hour %s entry %d: no usable inject_time (%q) or inject_timestamp", path, hour, i, r.InjectTime)
				}
				t = time.Unix(sec, 0).UTC()
			}
			if r.InjectPod == "" {
				return nil, fmt.Errorf("%s: hour %s entry %d: inject_pod: required", path, hour, i)
			}
			out = append(out, Fault{Time: t, Pod: r.InjectPod, Type: r.InjectType, Service: ServiceOfPod(r.InjectPod)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}
