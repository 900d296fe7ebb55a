// Package reliability is Aftertrace's reliability suite: a real local stack
// (ClickHouse, Postgres, NATS JetStream, and the gateway, writer and API as
// separate `aftertrace` processes) put through outages, crashes, overload,
// hostile input and hostile tenants, each case measured and judged. `make
// reliability` runs it whole (≤ 15 min); `make test` runs a short subset.
package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/localstack"
	"github.com/aftertrace/aftertrace/internal/schema"
)

// adminKey opens the API's admin routes in the suite's stack.
const adminKey = "reliability-admin-key-0123456789"

// database is the ClickHouse database of the stack.
const database = "aftertrace"

// Stack is the suite's private deployment on loopback.
type Stack struct {
	Dir string
	Bin string
	log *slog.Logger

	CH *localstack.ClickHouse
	PG *localstack.Postgres

	natsDir  string
	natsPort int
	nats     *server.Server
	NATSURL  string
	nc       *nats.Conn
	JS       jetstream.JetStream

	Gateway, Writer, API *proc
	GatewayHTTP          string // host:port
	GatewayGRPC          string
	APIAddr              string
	WriterOps            string

	Store *chstore.Store // direct checks
}

// proc is one `aftertrace` child process, restartable.
type proc struct {
	name  string
	bin   string
	args  []string
	ready string // URL answering 200 once serving
	logf  *os.File
	cmd   *exec.Cmd
	done  chan error
}

func freeAddr() (string, error) {
	p, err := localstack.FreePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// StartStack starts everything under dir with the aftertrace binary bin.
func StartStack(ctx context.Context, dir, bin string, log *slog.Logger) (_ *Stack, err error) {
	st := &Stack{Dir: dir, Bin: bin, log: log}
	defer func() {
		if err != nil {
			st.Stop()
		}
	}()
	if st.CH, err = localstack.StartClickHouse(ctx, localstack.ClickHouseConfig{Dir: filepath.Join(dir, "clickhouse"), Logger: log}); err != nil {
		return nil, fmt.Errorf("start clickhouse: %w", err)
	}
	if st.PG, err = localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: filepath.Join(dir, "postgres"), NoSync: true, Logger: log}); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := schema.MigrateClickHouse(ctx, schema.ClickHouseOptions{Addr: st.CH.Addr(), Database: database, Username: "default"}); err != nil {
		return nil, err
	}
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database = st.CH.Addr(), database
	if st.Store, err = chstore.Open(cfg); err != nil {
		return nil, err
	}
	st.natsDir = filepath.Join(dir, "nats")
	if st.natsPort, err = localstack.FreePort(); err != nil {
		return nil, err
	}
	if err := st.StartNATS(); err != nil {
		return nil, err
	}
	if st.nc, err = nats.Connect(st.NATSURL, nats.Name("reliability"), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond)); err != nil {
		return nil, err
	}
	if st.JS, err = jetstream.New(st.nc); err != nil {
		return nil, err
	}
	if err := bus.EnsureStreams(ctx, st.JS, bus.DefaultStreamConfig()); err != nil {
		return nil, err
	}

	addrs := make([]string, 7)
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return nil, err
		}
	}
	st.GatewayGRPC, st.GatewayHTTP, st.APIAddr, st.WriterOps = addrs[0], addrs[1], addrs[2], addrs[3]
	common := []string{"--log-level", "warn", "--clickhouse-addr", st.CH.Addr(), "--clickhouse-database", database,
		"--postgres-dsn", st.PG.DSN()}
	bused := append(common[:len(common):len(common)], "--nats-url", st.NATSURL)
	st.API = &proc{name: "api", bin: bin, ready: "http://" + st.APIAddr + "/readyz",
		args: append([]string{"api", "--migrate", "--api-addr", st.APIAddr, "--admin-api-key", adminKey, "--ops-addr", addrs[4]}, common...)}
	st.Gateway = &proc{name: "gateway", bin: bin, ready: "http://" + st.GatewayHTTP + "/readyz",
		args: append([]string{"gateway", "--grpc-addr", st.GatewayGRPC, "--http-addr", st.GatewayHTTP, "--ops-addr", addrs[5],
			"--tenant-limits-refresh", "1s"}, bused...)}
	st.Writer = &proc{name: "writer", bin: bin, ready: "http://" + st.WriterOps + "/readyz",
		args: append([]string{"writer", "--writer-ops-addr", st.WriterOps, "--writer-flush-interval", "200ms",
			"--writer-max-deliver", "3", "--retention-enforce-interval", "0"}, bused...)}
	for _, p := range []*proc{st.API, st.Gateway, st.Writer} { // the API migrates Postgres first
		if err := p.start(ctx, dir); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// StartNATS (re)starts the embedded JetStream server on its port and store.
func (st *Stack) StartNATS() error {
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: st.natsDir, Host: "127.0.0.1", Port: st.natsPort, MaxPayload: 8 << 20})
	if err != nil {
		return err
	}
	st.nats = srv
	st.NATSURL = srv.ClientURL()
	return nil
}

// StopNATS shuts the server down (clients see it as gone).
func (st *Stack) StopNATS() {
	if st.nats != nil {
		st.nats.Shutdown()
		st.nats.WaitForShutdown()
		st.nats = nil
	}
}

func (p *proc) start(ctx context.Context, dir string) error {
	if p.logf == nil {
		f, err := os.Create(filepath.Join(dir, p.name+".log"))
		if err != nil {
			return err
		}
		p.logf = f
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = p.logf, p.logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd, p.done = cmd, make(chan error, 1)
	go func() { p.done <- cmd.Wait() }()
	deadline := time.Now().Add(90 * time.Second)
	for !httpOK(ctx, p.ready) {
		select {
		case err := <-p.done:
			p.cmd = nil
			return fmt.Errorf("%s exited before it was ready (%v); see %s", p.name, err, p.logf.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 90s; see %s", p.name, p.logf.Name())
		}
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *proc) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// stop sends SIGTERM and waits (SIGKILL after 30 s).
func (p *proc) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// PID is the running process's id, or 0.
func (p *proc) PID() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Restart starts a killed or stopped process again.
func (st *Stack) Restart(ctx context.Context, p *proc) error { return p.start(ctx, st.Dir) }

func httpOK(ctx context.Context, u string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop stops every process and server.
func (st *Stack) Stop() {
	for _, p := range []*proc{st.Gateway, st.Writer, st.API} {
		if p != nil {
			p.stop()
			if p.logf != nil {
				p.logf.Close()
			}
		}
	}
	if st.nc != nil {
		st.nc.Close()
	}
	st.StopNATS()
	if st.Store != nil {
		st.Store.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if st.CH != nil {
		_ = st.CH.Stop(ctx)
	}
	if st.PG != nil {
		_ = st.PG.Stop(ctx)
	}
}

// Tenant is a tenant of the stack with one API key.
type Tenant struct{ ID, Name, Key string }

// NewTenant creates a tenant and a key through the admin API.
func (st *Stack) NewTenant(ctx context.Context, name string) (Tenant, error) {
	var t struct{ ID, Name string }
	if err := st.admin(ctx, "/admin/v1/tenants", map[string]string{"name": name}, &t); err != nil {
		return Tenant{}, err
	}
	var k struct{ Key string }
	if err := st.admin(ctx, "/admin/v1/tenants/"+t.ID+"/keys", map[string]string{"description": "reliability"}, &k); err != nil {
		return Tenant{}, err
	}
	return Tenant{ID: t.ID, Name: t.Name, Key: k.Key}, nil
}

func (st *Stack) admin(ctx context.Context, path string, body, out any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+st.APIAddr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, rb)
	}
	return json.Unmarshal(rb, out)
}

// SetRateLimit gives tenant its own records/s limit (tenant_limits).
func (st *Stack) SetRateLimit(ctx context.Context, tenantID string, perSecond float64) error {
	return st.pgExec(ctx, `INSERT INTO tenant_limits (tenant_id, records_per_second, records_burst) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id) DO UPDATE SET records_per_second = EXCLUDED.records_per_second, records_burst = EXCLUDED.records_burst`,
		tenantID, perSecond, int64(perSecond))
}

// WriterLag is the writer's backlog: messages on the ingest stream not
// yet stored (a work queue: a message leaves once acknowledged).
func (st *Stack) WriterLag(ctx context.Context) (int64, error) {
	s, err := st.JS.Stream(ctx, bus.IngestStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int64(info.State.Msgs), nil
}

// WaitDrained waits until the writer has no backlog.
func (st *Stack) WaitDrained(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		lag, err := st.WriterLag(ctx)
		if err == nil && lag == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("writer backlog %d after %v (%v)", lag, within, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// WaitIdle waits until the writer has no backlog and ClickHouse runs no
// merges (the parts a case inserted are merged): the next case starts
// from a calm stack, not from the previous one's aftermath.
func (st *Stack) WaitIdle(ctx context.Context, within time.Duration) error {
	if err := st.WaitDrained(ctx, within); err != nil {
		return err
	}
	deadline := time.Now().Add(within)
	calm := 0
	for calm < 3 {
		var n uint64
		if err := st.Store.Conn().QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			calm++
		} else {
			calm = 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clickhouse still merging after %v", within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return nil
}

var errNoRSS = errors.New("no VmHWM in /proc status")

// peakRSS reads a process's peak resident set (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errNoRSS
}

// resetPeakRSS starts a new VmHWM measurement (Linux clear_refs 5).
func resetPeakRSS(pid int) error {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

func (st *Stack) pgExec(ctx context.Context, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, st.PG.DSN())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql, args...)
	return err
}
