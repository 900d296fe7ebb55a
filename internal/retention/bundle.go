package retention

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// Bundle states.
const (
	BundlePending = "pending"
	BundleRunning = "running"
	BundleDone    = "done"
	BundleFailed  = "failed"
)

// Bundle error codes: why a bundle failed, for clients to act on.
const (
	BundleErrTooLarge    = "bundle_too_large"      // over the per-bundle byte cap
	BundleErrTenantQuota = "tenant_quota_exceeded" // the tenant's stored bundles would exceed its byte cap
	BundleErrAttempts    = "attempts_exhausted"    // builds kept dying (crash, OOM, restart)
	BundleErrBuild       = "build_failed"          // anything else (the message says what)
)

// ManifestName is the manifest's file name inside a bundle.
const ManifestName = "manifest.json"

// ManifestFormat names the bundle layout.
const ManifestFormat = "aftertrace-evidence/1"

// MaxBundleWindow bounds an evidence bundle's window.
const MaxBundleWindow = 366 * 24 * time.Hour

// BundleRequest is what an evidence bundle exports: every signal's rows of
// the scope from Start to End.
type BundleRequest struct {
	Scope Scope     `json:"scope"`
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Validate checks r and normalizes its id; errors name the field.
func (r *BundleRequest) Validate() error {
	if !r.Scope.Valid() {
		return apperr.Invalid("scope", "must be one of container, pod, incident, trace, namespace")
	}
	id, err := NormalizeTarget("id", r.Scope, r.ID)
	if err != nil {
		return err
	}
	r.ID = id
	switch {
	case r.Start.IsZero():
		return apperr.Invalid("start", "is required (RFC 3339)")
	case r.End.IsZero():
		return apperr.Invalid("end", "is required (RFC 3339)")
	case r.End.Before(r.Start):
		return apperr.Invalid("end", "must not be before start")
	case r.End.Sub(r.Start) > MaxBundleWindow:
		return apperr.Invalid("start", "the window must not exceed %s", MaxBundleWindow)
	}
	return nil
}

// Bundle is an evidence bundle job and, once done, its manifest.
type Bundle struct {
	ID            string        `json:"id"`
	TenantID      string        `json:"-"`
	Request       BundleRequest `json:"request"`
	Status        string        `json:"status"`
	Error         string        `json:"error,omitempty"`
	ErrorCode     string        `json:"errorCode,omitempty"` // one of the BundleErr codes when failed
	Attempts      int           `json:"attempts,omitempty"`  // builds started: one that died is retried up to the worker's bound
	CreatedBy     string        `json:"createdBy"`
	CreatedAt     time.Time     `json:"createdAt"`
	FinishedAt    *time.Time    `json:"finishedAt,omitempty"`
	Manifest      *Manifest     `json:"manifest,omitempty"`
	ArchiveSHA256 string        `json:"archiveSha256,omitempty"`
	ArchiveBytes  int64         `json:"archiveBytes,omitempty"`
}

// Manifest describes a bundle: what was asked, by whom and when, and the
// size, row count and SHA-256 of every other file in it.
type Manifest struct {
	Format    string         `json:"format"`
	BundleID  string         `json:"bundleId"`
	TenantID  string         `json:"tenantId"`
	Request   BundleRequest  `json:"request"`
	CreatedBy string         `json:"createdBy"`
	CreatedAt time.Time      `json:"createdAt"`
	Files     []ManifestFile `json:"files"`
}

// ManifestFile is one file of a bundle.
type ManifestFile struct {
	Name      string `json:"name"`
	Signal    string `json:"signal"`
	Rows      int64  `json:"rows"`
	Bytes     int64  `json:"bytes"`
	SHA256    string `json:"sha256"`
	Truncated bool   `json:"truncated,omitempty"` // the row cap cut it short
}

// BundleFile is one NDJSON file to put in a bundle, in memory (small
// bundles and tests; builds stream spool files through ArchiveWriter).
type BundleFile struct {
	Name      string
	Signal    string
	Rows      int64
	Truncated bool
	Data      []byte
}

// BuildArchive fills m.Files from files and returns the tar.gz: every file,
// then manifest.json. Entries carry m.CreatedAt as their time. It holds
// the archive in memory: builds of real bundles stream with ArchiveWriter.
func BuildArchive(m *Manifest, files []BundleFile) ([]byte, error) {
	var buf bytes.Buffer
	aw := NewArchiveWriter(&buf, m)
	for _, f := range files {
		meta := ManifestFile{Name: f.Name, Signal: f.Signal, Rows: f.Rows, Truncated: f.Truncated}
		if err := aw.AddFile(meta, int64(len(f.Data)), bytes.NewReader(f.Data)); err != nil {
			return nil, err
		}
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ArchiveWriter streams a bundle's tar.gz to a writer (a spool file): each
// file is copied through as it is added, hashed on the way, and Close
// appends manifest.json. Only the manifest is held in memory.
type ArchiveWriter struct {
	m  *Manifest
	gz *gzip.Writer
	tw *tar.Writer
}

// NewArchiveWriter starts a bundle on w with manifest m, whose Files are
// filled in as files are added.
func NewArchiveWriter(w io.Writer, m *Manifest) *ArchiveWriter {
	m.Format = ManifestFormat
	m.Files = m.Files[:0]
	gz := gzip.NewWriter(w)
	return &ArchiveWriter{m: m, gz: gz, tw: tar.NewWriter(gz)}
}

func (a *ArchiveWriter) header(name string, size int64) error {
	return a.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: a.m.CreatedAt, Typeflag: tar.TypeReg})
}

// AddFile copies the size bytes of r as the next file; f's Bytes and
// SHA256 are computed here. Fewer or more bytes than size fail it.
func (a *ArchiveWriter) AddFile(f ManifestFile, size int64, r io.Reader) error {
	if err := a.header(f.Name, size); err != nil {
		return fmt.Errorf("bundle: write %s: %w", f.Name, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(a.tw, h), io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("bundle: write %s: %w", f.Name, err)
	}
	var one [1]byte
	if extra, _ := io.ReadFull(r, one[:]); n != size || extra > 0 {
		return fmt.Errorf("bundle: write %s: the file changed while archived (expected %d bytes)", f.Name, size)
	}
	f.Bytes, f.SHA256 = size, hex.EncodeToString(h.Sum(nil))
	a.m.Files = append(a.m.Files, f)
	return nil
}

// Close appends the manifest and ends the tar and gzip streams (the
// underlying writer stays open).
func (a *ArchiveWriter) Close() error {
	mj, err := json.MarshalIndent(a.m, "", "  ")
	if err != nil {
		return fmt.Errorf("bundle: encode manifest: %w", err)
	}
	mj = append(mj, '\n')
	if err := a.header(ManifestName, int64(len(mj))); err != nil {
		return fmt.Errorf("bundle: write manifest: %w", err)
	}
	if _, err := a.tw.Write(mj); err != nil {
		return fmt.Errorf("bundle: write manifest: %w", err)
	}
	if err := a.tw.Close(); err != nil {
		return fmt.Errorf("bundle: close tar: %w", err)
	}
	if err := a.gz.Close(); err != nil {
		return fmt.Errorf("bundle: close gzip: %w", err)
	}
	return nil
}

// maxVerifyFileBytes bounds one file read by Verify.
const maxVerifyFileBytes = 4 << 30

// Verify reads a bundle and checks it against its manifest: every file the
// manifest lists is present once with its size and SHA-256, and nothing
// else is in the archive. It returns the manifest, and an error listing
// every problem found (a corrupt archive fails to read at all).
func Verify(r io.Reader) (*Manifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a gzip stream: %w", err)
	}
	tr := tar.NewReader(gz)
	type seen struct {
		size int64
		sum  string
		n    int
	}
	files := map[string]*seen{}
	var manifest []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		name := path.Clean(h.Name)
		if name == ManifestName {
			if manifest != nil {
				return nil, errors.New("the archive has two manifests")
			}
			if manifest, err = io.ReadAll(io.LimitReader(tr, 64<<20)); err != nil {
				return nil, fmt.Errorf("read manifest: %w", err)
			}
			continue
		}
		hs := sha256.New()
		n, err := io.Copy(hs, io.LimitReader(tr, maxVerifyFileBytes))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		s := files[name]
		if s == nil {
			s = &seen{}
			files[name] = s
		}
		s.size, s.sum, s.n = n, hex.EncodeToString(hs.Sum(nil)), s.n+1
	}
	// Read to the end so the gzip checksum is verified too.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	if manifest == nil {
		return nil, errors.New("the archive has no " + ManifestName)
	}
	var m Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	if m.Format != ManifestFormat {
		return &m, fmt.Errorf("unknown manifest format %q", m.Format)
	}
	var problems []error
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[path.Clean(f.Name)] = true
		s := files[path.Clean(f.Name)]
		switch {
		case s == nil:
			problems = append(problems, fmt.Errorf("%s: listed in the manifest but missing", f.Name))
		case s.n > 1:
			problems = append(problems, fmt.Errorf("%s: present %d times", f.Name, s.n))
		case s.size != f.Bytes:
			problems = append(problems, fmt.Errorf("%s: %d bytes, the manifest says %d", f.Name, s.size, f.Bytes))
		case s.sum != f.SHA256:
			problems = append(problems, fmt.Errorf("%s: SHA-256 %s, the manifest says %s", f.Name, s.sum, f.SHA256))
		}
	}
	var extra []string
	for name := range files {
		if !listed[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		problems = append(problems, fmt.Errorf("%s: not listed in the manifest", name))
	}
	return &m, errors.Join(problems...)
}
