package replay

import (
	"errors"
	"os"
	"testing"
)

// The shared, real dataset (read-only; never copied into the repository).
const nezhaDir = "../../../shared/datasets/nezha-ob-2022-08-22"

// TestNezhaDatasetParses reads the labels and the first rows of the first
// file of each kind of the real dataset.
func TestNezhaDatasetParses(t *testing.T) {
	if _, err := os.Stat(nezhaDir); err != nil {
		t.Fatalf("shared dataset (../shared beside the repo): %v", err)
	}
	ds, err := Scan(nezhaDir, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Faults) == 0 {
		t.Fatal("no faults")
	}
	for _, f := range ds.Faults {
		if f.Time.IsZero() || f.Pod == "" || f.Type == "" || f.Service == f.Pod {
			t.Errorf("fault %+v", f)
		}
	}
	first := map[Kind]bool{}
	var skipped int
	for _, f := range ds.Files {
		if f.Kind != KindMetric && first[f.Kind] {
			continue
		}
		first[f.Kind] = true
		in, err := openCSV(f.Path, nil)
		if err != nil {
			t.Fatal(err)
		}
		conv, err := newConverter(f, in.header, "default", ds.Services)
		if errors.Is(err, errSkipFile) {
			t.Logf("skipped %s: %v", f.Rel, err)
			skipped++
			in.Close()
			continue
		}
		if err != nil {
			in.Close()
			t.Fatal(err)
		}
		var records int
		for range 500 {
			rec, err := in.r.Read()
			if err != nil {
				break
			}
			n, err := conv.add(rec)
			if err != nil {
				t.Errorf("%s: %v", f.Rel, err)
				break
			}
			records += n
		}
		in.Close()
		if records == 0 {
			t.Errorf("%s: no records", f.Rel)
		}
	}
	for _, k := range []Kind{KindTrace, KindLog, KindMetric} {
		if !first[k] {
			t.Errorf("no %s file", k)
		}
	}
	if skipped != 1 { // dependency.csv
		t.Errorf("%d metric files skipped, want 1 (dependency)", skipped)
	}
}
