package localstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// initdbIfNeeded creates the cluster when pgdata has no PG_VERSION, by initdb
// or by copying a cached one. Either writes into a scratch dir renamed into
// place on success, so an interrupted start never leaves a half-made cluster
// that later starts would trip on.
func (p *Postgres) initdbIfNeeded(ctx context.Context) error {
	data := p.dataDir()
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return nil
	}
	if ents, err := os.ReadDir(data); err == nil {
		if len(ents) > 0 {
			return fmt.Errorf("postgres: %s is not empty but has no PG_VERSION; not a cluster, remove it", data)
		}
		if err := os.Remove(data); err != nil {
			return fmt.Errorf("postgres data dir: %w", err)
		}
	}
	tmp := data + ".initdb"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("postgres initdb dir: %w", err)
	}
	began := time.Now()
	cached := p.initCachePath()
	from := "cache " + cached
	if cached == "" || !isCluster(cached) || !p.copyFromCache(cached, tmp) {
		from = "initdb"
		if err := p.initdb(ctx, tmp); err != nil {
			return err
		}
		if cached != "" {
			p.fillInitCache(tmp, cached)
		}
	}
	if err := ensureOwnedDir(tmp, p.cred); err != nil {
		return fmt.Errorf("postgres initdb dir: %w", err)
	}
	if err := os.Rename(tmp, data); err != nil {
		return fmt.Errorf("postgres: move new cluster into place: %w", err)
	}
	p.log.Info("postgres cluster initialized", "dir", data, "from", from, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

func (p *Postgres) initdb(ctx context.Context, dir string) error {
	if err := ensureOwnedDir(dir, p.cred); err != nil {
		return fmt.Errorf("postgres initdb dir: %w", err)
	}
	logPath := filepath.Join(p.cfg.Dir, "initdb.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("initdb log: %w", err)
	}
	defer logf.Close()
	args := []string{"-D", dir, "-U", p.cfg.User, "--auth=trust", "--encoding=UTF8", "--locale=C"}
	if p.cfg.NoSync {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(p.binDir, "initdb"), args...)
	cmd.Dir = p.cfg.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: p.cred, Setpgid: true}
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("initdb %s: %w%s", dir, errors.Join(err, ctx.Err()), logMark{{path: logPath}}.tail())
	}
	return nil
}

// initCachePath names the cached cluster for this binary dir, superuser and
// OS user; "" when caching is off.
func (p *Postgres) initCachePath() string {
	if p.cfg.InitCacheDir == "" {
		return ""
	}
	key := fmt.Sprintf("v1-%x-%s-%d", fnv32(p.binDir), p.cfg.User, os.Geteuid())
	return filepath.Join(p.cfg.InitCacheDir, key)
}

// copyFromCache reports whether it copied the cached cluster to dir; on
// failure it cleans up and the caller falls back to initdb.
func (p *Postgres) copyFromCache(cached, dir string) bool {
	if err := copyTree(cached, dir); err != nil {
		p.log.Warn("initdb cache unusable, running initdb", "cache", cached, "err", err)
		_ = os.RemoveAll(dir)
		return false
	}
	return true
}

// fillInitCache stores a copy of a fresh cluster. Best effort: a failure only
// costs the next start an initdb. Copy then rename, so concurrent starts
// (parallel test packages) never see a partial cache.
func (p *Postgres) fillInitCache(fresh, cached string) {
	if err := os.MkdirAll(p.cfg.InitCacheDir, 0o755); err != nil {
		p.log.Warn("initdb cache", "err", err)
		return
	}
	tmp, err := os.MkdirTemp(p.cfg.InitCacheDir, ".fill-")
	if err != nil {
		p.log.Warn("initdb cache", "err", err)
		return
	}
	defer os.RemoveAll(tmp)
	if err := copyTree(fresh, filepath.Join(tmp, "pgdata")); err != nil {
		p.log.Warn("initdb cache", "err", err)
		return
	}
	// Losing the race to another filler is fine: its copy is as good.
	if err := os.Rename(filepath.Join(tmp, "pgdata"), cached); err != nil && !isCluster(cached) {
		p.log.Warn("initdb cache", "err", err)
	}
}

func isCluster(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "PG_VERSION"))
	return err == nil
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
