package replay

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"github.com/aftertrace/aftertrace/internal/rcaeval"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Kind is what a dataset file holds.
type Kind string

// File kinds.
const (
	KindTrace  Kind = "trace"
	KindLog    Kind = "log"
	KindMetric Kind = "metric"
)

// File is one CSV file of a dataset.
type File struct {
	Rel      string // path relative to the dataset dir, with "/" separators; the resume key
	Path     string
	Kind     Kind
	Baseline bool // under construct_data
	Size     int64
}

// Fault is one labelled fault injection (labels are read as the eval
// reads them: inject_time in UTC).
type Fault = rcaeval.Fault

// Dataset is a scanned dataset dir.
type Dataset struct {
	Dir    string
	Files  []File  // in replay order: baseline first; metrics, then traces, then logs; by name
	Faults []Fault // by time
	// Services are the services of the per-pod metric files: columns of
	// other files named "<service>_<service>" are edges between them.
	Services map[string]bool
	// Duplicates are baseline files byte-identical to an rca_data file; they
	// are not replayed (the rca_data copy is).
	Duplicates []string
}

// Scan lists the replayable files of dir (the baseline too when baseline
// is set) and reads the fault labels.
func Scan(dir string, baseline bool) (*Dataset, error) {
	ds := &Dataset{Dir: dir}
	roots := []string{"rca_data"}
	if baseline {
		roots = []string{"construct_data", "rca_data"}
	}
	for _, root := range roots {
		for _, k := range []Kind{KindMetric, KindTrace, KindLog} {
			files, err := listCSV(dir, root+"/"+string(k), k, root == "construct_data")
			if err != nil {
				return nil, err
			}
			ds.Files = append(ds.Files, files...)
		}
	}
	if len(ds.Files) == 0 {
		return nil, fmt.Errorf("%s: no trace, log or metric CSV files under rca_data/ or construct_data/", dir)
	}
	if err := ds.dropDuplicates(); err != nil {
		return nil, err
	}
	ds.Services = map[string]bool{}
	for _, f := range ds.Files {
		base := strings.TrimSuffix(strings.TrimSuffix(path.Base(f.Rel), ".gz"), ".csv")
		if pod, ok := strings.CutSuffix(base, "_metric"); ok && f.Kind == KindMetric {
			ds.Services[ServiceFromPod(pod)] = true
		}
	}
	labels, err := filepath.Glob(filepath.Join(dir, "rca_data", "*fault_list.json"))
	if err != nil {
		return nil, err
	}
	for _, p := range labels {
		faults, err := ReadFaults(p)
		if err != nil {
			return nil, err
		}
		ds.Faults = append(ds.Faults, faults...)
	}
	sort.SliceStable(ds.Faults, func(i, j int) bool { return ds.Faults[i].Time.Before(ds.Faults[j].Time) })
	return ds, nil
}

func listCSV(dir, sub string, k Kind, baseline bool) ([]File, error) {
	ents, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(sub)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []File
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".csv") || strings.HasSuffix(name, ".csv.gz")) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, File{Rel: sub + "/" + name, Path: filepath.Join(dir, filepath.FromSlash(sub), name),
			Kind: k, Baseline: baseline, Size: info.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, nil
}

// dropDuplicates removes baseline files whose content (decompressed)
// equals the rca_data file of the same name (the published dataset ships identical metric files in
// both dirs; replaying both would only duplicate points).
func (ds *Dataset) dropDuplicates() error {
	rca := map[string]File{}
	for _, f := range ds.Files {
		if !f.Baseline {
			rca[strings.TrimPrefix(f.Rel, "rca_data/")] = f
		}
	}
	kept := ds.Files[:0]
	for _, f := range ds.Files {
		if f.Baseline {
			if twin, ok := rca[strings.TrimPrefix(f.Rel, "construct_data/")]; ok && (twin.Size == f.Size || strings.HasSuffix(f.Rel, ".gz")) {
				same, err := sameContent(f.Path, twin.Path)
				if err != nil {
					return err
				}
				if same {
					ds.Duplicates = append(ds.Duplicates, f.Rel)
					continue
				}
			}
		}
		kept = append(kept, f)
	}
	ds.Files = kept
	return nil
}

func sameContent(a, b string) (bool, error) {
	ha, err := fileHash(a)
	if err != nil {
		return false, err
	}
	hb, err := fileHash(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ha, hb), nil
}

// fileHash is the SHA-256 of the file's content, decompressed for .gz
// (gzip headers hold names and times that differ between equal copies).
func fileHash(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		defer zr.Close()
		r = zr
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return h.Sum(nil), nil
}

// ReadFaults reads a Nezha fault list (map hour -> list of injections).
func ReadFaults(path string) ([]Fault, error) { return rcaeval.ReadNezhaFile(path) }

// csvFile is an open CSV (plain or gzip) with its header.
type csvFile struct {
	f      *os.File
	gz     *gzip.Reader
	r      *csv.Reader
	header []string
}

// openCSV opens path; every byte read from disk is reported to onRead
// (may be nil) for progress.
func openCSV(path string, onRead func(int)) (*csvFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	c := &csvFile{f: f}
	var src io.Reader = f
	if onRead != nil {
		src = &countingReader{r: f, on: onRead}
	}
	if strings.HasSuffix(path, ".gz") {
		if c.gz, err = gzip.NewReader(src); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		src = c.gz
	}
	c.r = csv.NewReader(src)
	c.r.FieldsPerRecord = -1
	c.r.LazyQuotes = true // some published log rows carry a stray quote inside a quoted field
	c.r.ReuseRecord = true
	h, err := c.r.Read()
	if err != nil {
		c.Close()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file (no header)", path)
		}
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	c.header = append([]string(nil), h...)
	if len(c.header) > 0 { // a UTF-8 byte order mark would hide the first column name
		c.header[0] = strings.TrimPrefix(c.header[0], "\ufeff")
	}
	return c, nil
}

func (c *csvFile) Close() error {
	if c.gz != nil {
		c.gz.Close()
	}
	return c.f.Close()
}

type countingReader struct {
	r  io.Reader
	on func(int)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.on(n)
	}
	return n, err
}

// columns maps header names (case-insensitive) to indexes.
type columns map[string]int

func newColumns(header []string) columns {
	m := columns{}
	for i, h := range header {
		m[strings.ToLower(strings.TrimSpace(h))] = i
	}
	return m
}

// need returns the indexes of names or an error naming the missing ones.
func (c columns) need(path string, names ...string) ([]int, error) {
	out := make([]int, len(names))
	var missing []string
	for i, n := range names {
		idx, ok := c[strings.ToLower(n)]
		if !ok {
			missing = append(missing, n)
		}
		out[i] = idx
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: missing column(s) %s", path, strings.Join(missing, ", "))
	}
	return out, nil
}

// opt returns the index of the first present name or -1.
func (c columns) opt(names ...string) int {
	for _, n := range names {
		if i, ok := c[strings.ToLower(n)]; ok {
			return i
		}
	}
	return -1
}

func field(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return rec[i]
}
