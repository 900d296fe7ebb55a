package retention

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// spoolPrefix names a bundle's build dir: <prefix><bundle id>-<random>.
const spoolPrefix = "aftertrace-bundle-"

// errBundleTooLarge: the bundle's files would exceed MaxBundleBytes.
var errBundleTooLarge = errors.New("evidence bundle over its byte cap")

// spool is a bundle being built on disk: one NDJSON file per signal, then
// the archive. Nothing of it is held in memory beyond a write buffer.
type spool struct {
	dir   string
	files map[string]*spoolFile
	order []string
	bytes int64 // NDJSON bytes so far
	cap   int64
}

type spoolFile struct {
	name, signal string
	f            *os.File
	w            *bufio.Writer
	rows         int64
	size         int64
}

// newSpool creates the build dir of bundle id under root ("" the system's
// temp dir) and a file per signal; cap bounds the NDJSON bytes.
func newSpool(root, id string, signals []string, cap int64) (*spool, error) {
	dir, err := os.MkdirTemp(root, spoolPrefix+id+"-")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	sp := &spool{dir: dir, files: map[string]*spoolFile{}, cap: cap}
	for _, sig := range signals {
		name := sig + ".ndjson"
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			sp.remove()
			return nil, fmt.Errorf("spool: %w", err)
		}
		sp.files[sig] = &spoolFile{name: name, signal: sig, f: f, w: bufio.NewWriterSize(f, 64<<10)}
		sp.order = append(sp.order, sig)
	}
	return sp, nil
}

// write appends one row of signal, within the byte cap.
func (sp *spool) write(signal string, row []byte) error {
	sf := sp.files[signal]
	if sf == nil {
		return fmt.Errorf("unexpected signal %q", signal)
	}
	n := int64(len(row)) + 1
	if sp.bytes+n > sp.cap {
		return errBundleTooLarge
	}
	if _, err := sf.w.Write(row); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := sf.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	sp.bytes += n
	sf.rows++
	sf.size += n
	return nil
}

// spooled is one finished NDJSON file: what the manifest says of it, its
// size and where it is.
type spooled struct {
	meta retention.ManifestFile
	size int64
	path string
}

// finish flushes and closes the NDJSON files and describes them for the
// archive (counts and truncation from the export).
func (sp *spool) finish(counts map[string]int64, truncated map[string]bool) ([]spooled, error) {
	out := make([]spooled, 0, len(sp.order))
	for _, sig := range sp.order {
		sf := sp.files[sig]
		if err := sf.w.Flush(); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		if err := sf.f.Close(); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		sf.f = nil
		path := filepath.Join(sp.dir, sf.name)
		rows := counts[sig]
		if rows != sf.rows {
			return nil, fmt.Errorf("spool: %s has %d rows, the export counted %d", sf.name, sf.rows, rows)
		}
		out = append(out, spooled{
			meta: retention.ManifestFile{Name: sf.name, Signal: sig, Rows: rows, Truncated: truncated[sig]},
			size: sf.size, path: path,
		})
	}
	return out, nil
}

// archive streams the files and the manifest m into w as the bundle's
// tar.gz.
func archive(w io.Writer, m *retention.Manifest, files []spooled) error {
	aw := retention.NewArchiveWriter(w, m)
	for _, f := range files {
		r, err := os.Open(f.path)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		err = aw.AddFile(f.meta, f.size, r)
		_ = r.Close()
		if err != nil {
			return err
		}
	}
	return aw.Close()
}

// create makes another file in the build dir.
func (sp *spool) create(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(sp.dir, name))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return f, nil
}

// remove deletes the build dir and everything in it.
func (sp *spool) remove() {
	for _, sf := range sp.files {
		if sf.f != nil {
			_ = sf.f.Close()
		}
	}
	_ = os.RemoveAll(sp.dir)
}

// removeSpools deletes what builds of bundle id left under root: a build
// that died (crash, out of memory) never removed its dir.
func removeSpools(root, id string) {
	if root == "" {
		root = os.TempDir()
	}
	dirs, _ := filepath.Glob(filepath.Join(root, spoolPrefix+id+"-*"))
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}
