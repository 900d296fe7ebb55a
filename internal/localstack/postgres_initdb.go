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

// initdbIfNeeded creates the cluster when pgdata has no PG_VERSION. initdb
// writes into a scratch dir renamed into place on success, so an interrupted
// initdb never leaves a half-made cluster that later starts would trip on.
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
	if err := ensureOwnedDir(tmp, p.cred); err != nil {
		return fmt.Errorf("postgres initdb dir: %w", err)
	}
	logPath := filepath.Join(p.cfg.Dir, "initdb.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("initdb log: %w", err)
	}
	defer logf.Close()
	args := []string{"-D", tmp, "-U", p.cfg.User, "--auth=trust", "--encoding=UTF8", "--locale=C"}
	if p.cfg.NoSync {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(p.binDir, "initdb"), args...)
	cmd.Dir = p.cfg.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: p.cred, Setpgid: true}
	began := time.Now()
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("initdb %s: %w%s", data, errors.Join(err, ctx.Err()), logMark{{path: logPath}}.tail())
	}
	if err := os.Rename(tmp, data); err != nil {
		return fmt.Errorf("postgres: move new cluster into place: %w", err)
	}
	p.log.Info("postgres cluster initialized", "dir", data, "took", time.Since(began).Round(time.Millisecond))
	return nil
}
