package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/aftertrace/aftertrace/internal/localstack"
)

// shared holds the per-package ClickHouse and Postgres that Get hands out
// databases on.
var shared sharedServers

type sharedServers struct {
	mu      sync.Mutex
	root    string // temp dir for both servers; "" outside Main
	started bool   // start attempted; err remembers a failure for later Gets
	err     error
	ch      *localstack.ClickHouse
	pg      *localstack.Postgres
}

func (s *sharedServers) open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	root, err := os.MkdirTemp("", "aftertrace-testenv-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	s.root = root
	return nil
}

// servers starts both servers on first use, in parallel. A failed start is
// not retried: every later Get fails fast with the same error.
func (s *sharedServers) servers(ctx context.Context) (*localstack.ClickHouse, *localstack.Postgres, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.root == "" {
		return nil, nil, errors.New("shared servers need TestMain to call testenv.Main: func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }")
	}
	if !s.started {
		s.started = true
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) {
			s.ch, err = startClickHouse(gctx, filepath.Join(s.root, "clickhouse"))
			return err
		})
		g.Go(func() (err error) {
			s.pg, err = startPostgres(gctx, filepath.Join(s.root, "postgres"))
			return err
		})
		s.err = g.Wait()
	}
	return s.ch, s.pg, s.err
}

func (s *sharedServers) close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.ch != nil {
		errs = append(errs, s.ch.Stop(ctx))
	}
	if s.pg != nil {
		errs = append(errs, s.pg.Stop(ctx))
	}
	if s.root != "" {
		errs = append(errs, os.RemoveAll(s.root))
	}
	s.root, s.started, s.err, s.ch, s.pg = "", false, nil, nil, nil
	return errors.Join(errs...)
}
