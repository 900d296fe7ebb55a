package localstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is one run of a server binary. A single goroutine waits for it;
// it ends when the process exits, so stopping the process stops the goroutine.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // exit status; read only after done is closed
}

type processSpec struct {
	name    string // for messages: "clickhouse", "postgres"
	path    string
	args    []string
	dir     string
	logPath string // stdout and stderr are appended here
	cred    *syscall.Credential
	// deathSig is sent by the kernel when the thread that started the child
	// exits: with Go that is when the process dies, unless the caller
	// runs on a LockOSThread goroutine that later exits.
	deathSig syscall.Signal
}

func startProcess(s processSpec) (*process, error) {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", s.name, err)
	}
	fmt.Fprintf(logf, "\n--- %s starting %s %v\n", time.Now().UTC().Format(time.RFC3339), s.path, s.args)
	cmd := exec.Command(s.path, s.args...)
	cmd.Dir = s.dir
	// *os.File writers are handed to the child as is: no copy goroutines.
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Pdeathsig:  s.deathSig,
		Credential: s.cred,
		Setpgid:    true, // keep a terminal's Ctrl-C away; we stop it in order
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	logf.Close() // the child holds its own copy
	p := &process{name: s.name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits for exit; at ctx's deadline (or after stopGrace
// when ctx has none) it sends SIGKILL and waits again.
func (p *process) stop(ctx context.Context, sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, stopGrace)
		defer cancel()
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s pid %d did not stop in time, killed: %w", p.name, p.pid(), ctx.Err())
}
