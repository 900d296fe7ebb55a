package replay

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Config says what to replay.
type Config struct {
	Dir       string
	Baseline  bool   // replay construct_data too
	Namespace string // k8s.namespace.name of every resource ("" = none)
	BatchSize int    // records (spans, log records, data points) per request, about
	Rate      float64
	// Kinds replays only files of these kinds (nil: every kind), e.g.
	// metrics only, to score RCA as a metrics-only tenant meets it.
	Kinds []Kind

	// OnlyWindows sends only records in a fault window (inject minute
	// −WindowBefore … +WindowAfter) or in the baseline window: the first
	// BaselineMinutes minutes of the baseline data (of all data without
	// construct_data) that overlap no fault window. Trace and log files
	// (one per minute) are kept or dropped whole by their first record, so
	// traces are not cut; metric rows are filtered one by one.
	OnlyWindows               bool
	WindowBefore, WindowAfter time.Duration
	BaselineMinutes           int

	StatePath string // "" = no state file
	Resume    bool   // continue from StatePath instead of starting over

	Progress io.Writer // progress bar destination; nil = none
	Log      *slog.Logger
}

// DefaultConfig returns the defaults of the replay command.
func DefaultConfig() Config {
	return Config{Baseline: true, Namespace: "default", BatchSize: 1000,
		WindowBefore: 5 * time.Minute, WindowAfter: 5 * time.Minute, BaselineMinutes: 10}
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir: required"))
	}
	if c.BatchSize <= 0 {
		errs = append(errs, errors.New("batch: must be > 0"))
	}
	if c.Rate < 0 {
		errs = append(errs, errors.New("rate: must be >= 0"))
	}
	if c.OnlyWindows && (c.WindowBefore < 0 || c.WindowAfter < 0 || c.BaselineMinutes < 0) {
		errs = append(errs, errors.New("window-before, window-after, baseline-minutes: must be >= 0"))
	}
	for _, k := range c.Kinds {
		if k != KindTrace && k != KindLog && k != KindMetric {
			errs = append(errs, fmt.Errorf("signals: unknown kind %q (trace, log, metric)", k))
		}
	}
	if c.Resume && c.StatePath == "" {
		errs = append(errs, errors.New("resume: needs a state file"))
	}
	return errors.Join(errs...)
}

// Stats counts what a replay did.
type Stats struct {
	Files, SkippedFiles, ResumedFiles int
	Spans, LogRecords, DataPoints     int64
	Rejected                          int64 // refused by the server through partial success
	FilteredRows, BadRows             int64
	Windows                           []Window // the windows used by OnlyWindows
}

// Run replays cfg.Dir through s.
func Run(ctx context.Context, cfg Config, s *Sender) (Stats, error) {
	var stats Stats
	if err := cfg.Validate(); err != nil {
		return stats, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ds, err := Scan(cfg.Dir, cfg.Baseline)
	if err != nil {
		return stats, err
	}
	for _, d := range ds.Duplicates {
		log.Info("skipping baseline file identical to its rca_data twin", "file", d)
	}
	var filter windowFilter
	if cfg.OnlyWindows {
		if filter, err = buildFilter(ds, cfg); err != nil {
			return stats, err
		}
		stats.Windows = filter
		log.Info("only windows", "faults", len(ds.Faults), "windows", len(filter))
	}

	st := &State{Files: map[string]FileState{}, path: cfg.StatePath}
	if cfg.Resume {
		if st, err = LoadState(cfg.StatePath); err != nil {
			return stats, err
		}
	}
	abs, _ := filepath.Abs(cfg.Dir)
	opts := fmt.Sprintf("baseline=%t only-windows=%t before=%s after=%s baseline-minutes=%d namespace=%s kinds=%v",
		cfg.Baseline, cfg.OnlyWindows, cfg.WindowBefore, cfg.WindowAfter, cfg.BaselineMinutes, cfg.Namespace, cfg.Kinds)
	if cfg.Resume && len(st.Files) > 0 && (st.Dir != abs || st.Options != opts) {
		return stats, fmt.Errorf("state file %s is for %s (%s), not %s (%s): remove it or drop --resume",
			cfg.StatePath, st.Dir, st.Options, abs, opts)
	}
	st.Dir, st.Options = abs, opts

	var total int64
	files := ds.Files[:0:0]
	for _, f := range ds.Files {
		if cfg.Kinds == nil || slices.Contains(cfg.Kinds, f.Kind) {
			files = append(files, f)
		}
	}
	for _, f := range files {
		if !st.Files[f.Rel].Done {
			total += f.Size
		}
	}
	var bar *progressbar.ProgressBar
	if cfg.Progress != nil {
		bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(cfg.Progress),
			progressbar.OptionShowBytes(true), progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
		defer bar.Close()
	}
	p := &pacer{rate: cfg.Rate, start: time.Now()}
	for _, f := range files {
		if st.Files[f.Rel].Done {
			stats.ResumedFiles++
			continue
		}
		if bar != nil {
			bar.Describe(fmt.Sprintf("%-40s spans %d logs %d points %d", shorten(f.Rel, 40), stats.Spans, stats.LogRecords, stats.DataPoints))
		}
		if err := replayFile(ctx, cfg, f, ds.Services, s, st, filter, p, bar, &stats, log); err != nil {
			if errors.Is(err, errSkipFile) {
				log.Info("skipping file", "file", f.Rel, "reason", err)
				stats.SkippedFiles++
				st.Files[f.Rel] = FileState{Done: true}
				if err := st.Save(); err != nil {
					return stats, fmt.Errorf("save state: %w", err)
				}
				continue
			}
			return stats, err
		}
		stats.Files++
	}
	if bar != nil {
		_ = bar.Finish()
	}
	return stats, nil
}

func replayFile(ctx context.Context, cfg Config, f File, services map[string]bool, s *Sender, st *State, filter windowFilter,
	p *pacer, bar *progressbar.ProgressBar, stats *Stats, log *slog.Logger) error {
	var onRead func(int)
	if bar != nil {
		onRead = func(n int) { _ = bar.Add(n) }
	}
	in, err := openCSV(f.Path, onRead)
	if err != nil {
		return err
	}
	defer in.Close()
	conv, err := newConverter(f, in.header, cfg.Namespace, services)
	if err != nil {
		return err
	}
	skip := st.Files[f.Rel].Rows
	wholeFile := f.Kind == KindTrace || f.Kind == KindLog
	var rows, pending int64
	keepFile := true
	var counted *int64
	switch f.Kind {
	case KindTrace:
		counted = &stats.Spans
	case KindLog:
		counted = &stats.LogRecords
	default:
		counted = &stats.DataPoints
	}
	flush := func() error {
		if pending == 0 {
			return nil
		}
		if err := p.wait(ctx, pending); err != nil {
			return err
		}
		rejected, err := conv.flush(ctx, s)
		if err != nil {
			if strings.Contains(err.Error(), "older than") {
				// Datasets keep their original times; the gateway takes
				// records back to the tenant's longest retention only.
				return fmt.Errorf("%s: %w (start the server with a larger --ingest-max-age, e.g. 87600h, to replay old datasets)", f.Rel, err)
			}
			return fmt.Errorf("%s: %w", f.Rel, err)
		}
		stats.Rejected += rejected
		*counted += pending
		pending = 0
		st.Files[f.Rel] = FileState{Rows: rows}
		if err := st.Save(); err != nil {
			return fmt.Errorf("save state: %w", err)
		}
		return nil
	}
	for {
		rec, err := in.r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) { // a read or gzip error: the rest of the file is unreadable
				return fmt.Errorf("%s: %w", f.Rel, err)
			}
			stats.BadRows++
			log.Warn("bad CSV row", "file", f.Rel, "row", rows+1, "err", err)
			if stats.BadRows > 1000 && stats.BadRows > (stats.Spans+stats.LogRecords+stats.DataPoints)/10 {
				return fmt.Errorf("%s: too many bad rows: %w", f.Rel, err)
			}
			rows++
			continue
		}
		rows++
		if filter != nil && wholeFile && rows == 1 {
			t, err := conv.rowTime(rec)
			keepFile = err == nil && filter.keep(t)
			if !keepFile {
				log.Debug("file outside the windows", "file", f.Rel)
			}
		}
		if rows <= skip {
			continue
		}
		if !keepFile {
			stats.FilteredRows++
			continue
		}
		if filter != nil && !wholeFile {
			if t, err := conv.rowTime(rec); err == nil && !filter.keep(t) {
				stats.FilteredRows++
				continue
			}
		}
		n, err := conv.add(rec)
		if err != nil {
			stats.BadRows++
			if stats.BadRows <= 20 {
				log.Warn("bad row", "file", f.Rel, "row", rows, "err", err)
			}
			continue
		}
		pending += int64(n)
		if pending >= int64(cfg.BatchSize) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	st.Files[f.Rel] = FileState{Rows: rows, Done: true}
	if err := st.Save(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

func buildFilter(ds *Dataset, cfg Config) (windowFilter, error) {
	if len(ds.Faults) == 0 {
		return nil, fmt.Errorf("%s: only-windows needs labels (rca_data/*fault_list.json), found none", ds.Dir)
	}
	ws := FaultWindows(ds.Faults, cfg.WindowBefore, cfg.WindowAfter)
	if cfg.BaselineMinutes > 0 {
		earliest, ok, err := earliestTime(ds, true)
		if err == nil && !ok {
			earliest, ok, err = earliestTime(ds, false)
		}
		if err != nil {
			return nil, err
		}
		if ok {
			ws = merge(append(ws, BaselineWindow(earliest, cfg.BaselineMinutes, ws)))
		}
	}
	return ws, nil
}

// earliestTime is the smallest first-row time of the (baseline) files.
func earliestTime(ds *Dataset, baseline bool) (int64, bool, error) {
	var best int64
	found := false
	for _, f := range ds.Files {
		if baseline && !f.Baseline {
			continue
		}
		in, err := openCSV(f.Path, nil)
		if err != nil {
			return 0, false, err
		}
		conv, err := newConverter(f, in.header, "", ds.Services)
		if err != nil {
			in.Close()
			if errors.Is(err, errSkipFile) {
				continue
			}
			return 0, false, err
		}
		rec, err := in.r.Read()
		in.Close()
		if err != nil {
			continue
		}
		if t, err := conv.rowTime(rec); err == nil && (!found || t < best) {
			best, found = t, true
		}
	}
	return best, found, nil
}

// pacer holds the send rate to rate records/s (0: no limit).
type pacer struct {
	rate  float64
	start time.Time
	sent  float64
}

func (p *pacer) wait(ctx context.Context, n int64) error {
	if p.rate <= 0 {
		return nil
	}
	due := p.start.Add(time.Duration(p.sent / p.rate * float64(time.Second)))
	p.sent += float64(n)
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}
