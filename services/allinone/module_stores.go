package allinone

import (
	"context"
	"fmt"

	"github.com/grafana/dskit/services"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/lease"
	"github.com/aftertrace/aftertrace/internal/pgstore"
)

// The modules below open one store or server each in their starting
// function and close it in their stopping function (which does not run
// after a failed start: a starting function releases what it opened
// before it fails); a module whose
// feature is not configured (no --stack-dir, no Postgres, an external
// NATS) starts and stops without doing anything.

func (a *App) stackModule() (services.Service, error) {
	return services.NewIdleService(func(ctx context.Context) error {
		if a.cfg.StackDir == "" {
			return nil
		}
		st, err := a.startStack(ctx)
		a.stack = st
		return err
	}, func(error) error {
		if a.stack != nil {
			a.stack.stop()
		}
		return nil
	}), nil
}

func (a *App) migrationsModule() (services.Service, error) {
	return services.NewIdleService(func(ctx context.Context) error {
		if !a.cfg.Migrate {
			return nil
		}
		return a.migrate(ctx)
	}, nil), nil
}

func (a *App) natsModule() (services.Service, error) {
	return services.NewIdleService(func(context.Context) error {
		a.natsURL = a.cfg.NATSURL
		switch {
		case a.natsURL != "":
			return nil
		case a.cfg.EmbeddedNATSNodes > 1:
			c, err := bus.StartEmbeddedCluster(a.cfg.EmbeddedNATS, a.cfg.EmbeddedNATSNodes)
			if err != nil {
				return err
			}
			a.natsStop, a.natsURL = c.Shutdown, c.URLs()
			a.log.Info("embedded NATS JetStream cluster started", "urls", a.natsURL, "store", a.cfg.EmbeddedNATS.StoreDir, "stream replicas", a.cfg.Streams.Replicas)
		default:
			srv, err := bus.StartEmbedded(a.cfg.EmbeddedNATS)
			if err != nil {
				return err
			}
			a.natsStop, a.natsURL = func() { srv.Shutdown(); srv.WaitForShutdown() }, srv.ClientURL()
			a.log.Info("embedded NATS JetStream started", "url", a.natsURL, "store", a.cfg.EmbeddedNATS.StoreDir)
		}
		return nil
	}, func(error) error {
		if a.natsStop != nil {
			a.natsStop()
		}
		return nil
	}), nil
}

func (a *App) jetStreamModule() (services.Service, error) {
	return services.NewIdleService(func(ctx context.Context) error {
		nc, err := bus.Connect(a.natsURL, "aftertrace")
		if err != nil {
			return err
		}
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(a.cfg.Publisher.AckTimeout))
		if err == nil {
			err = bus.EnsureStreamsRetry(ctx, js, a.cfg.Streams)
		}
		if err != nil {
			nc.Close() // a failed start gets no stop
			return fmt.Errorf("jetstream: %w", err)
		}
		a.nc, a.js = nc, js
		return nil
	}, func(error) error {
		if a.nc != nil {
			a.nc.Close()
		}
		return nil
	}), nil
}

func (a *App) clickHouseModule() (services.Service, error) {
	return services.NewIdleService(func(context.Context) error {
		var err error
		a.chStore, err = chstore.Open(a.cfg.ClickHouse)
		return err
	}, func(error) error {
		if a.chStore != nil {
			return a.chStore.Close()
		}
		return nil
	}), nil
}

func (a *App) rcaModule() (services.Service, error) {
	return services.NewIdleService(func(context.Context) error {
		a.rca = newRCA(a.chStore, a.log.With("service", "rca"))
		return nil
	}, func(error) error {
		if a.rca != nil {
			return a.rca.Close() // its background cache writes, before the store closes
		}
		return nil
	}), nil
}

func (a *App) apiReadsModule() (services.Service, error) {
	return services.NewIdleService(func(ctx context.Context) error {
		var err error
		a.reads, err = a.openAPIReads(ctx)
		return err
	}, func(error) error {
		a.reads.close()
		return nil
	}), nil
}

func (a *App) postgresModule() (services.Service, error) {
	return services.NewIdleService(func(ctx context.Context) error {
		if a.cfg.PostgresDSN == "" {
			return nil
		}
		var err error
		a.pg, err = pgstore.Open(ctx, a.cfg.PostgresDSN)
		return err
	}, func(error) error {
		if a.pg != nil {
			a.pg.Close()
		}
		return nil
	}), nil
}

func (a *App) leaseModule() (services.Service, error) {
	return services.NewIdleService(func(context.Context) error {
		if a.cfg.PostgresDSN == "" {
			return nil
		}
		var err error
		lc := lease.Config{DSN: a.cfg.PostgresDSN, RetryEvery: a.cfg.LeaseInterval, CheckEvery: a.cfg.LeaseInterval}
		a.lease, err = lease.New(lc, a.log.With("component", "lease"), a.deps.Registry)
		return err
	}, nil), nil
}
