package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSCluster is a JetStream cluster of nats-server processes on loopback,
// owned by one test: the nats-server binary is built from the pinned
// nats-server/v2 module, so a node can be SIGKILLed like a real one and
// restarted on its ports and store.
type NATSCluster struct {
	bin   string
	nodes []*natsNode
}

type natsNode struct {
	mu    sync.Mutex
	args  []string
	port  int
	cmd   *exec.Cmd
	done  chan struct{}
	log   string
	store string
}

var natsServerBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "aftertrace-nats-server-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "nats-server")
	// The module's own main package, at the version go.mod pins.
	out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build nats-server: %v: %s", err, out)
	}
	return bin, nil
})

// NewNATSCluster starts n nodes (n ≥ 3 for R3 streams) and waits until
// every one serves JetStream; all are killed in t.Cleanup.
func NewNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	bin, err := natsServerBin()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ports := freePorts(t, 2*n)
	c := &NATSCluster{bin: bin}
	routes := make([]string, n)
	for i := range n {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(ports[n+i])
	}
	dir := t.TempDir()
	for i := range n {
		name := "n" + strconv.Itoa(i)
		node := &natsNode{port: ports[i], store: filepath.Join(dir, name), log: filepath.Join(dir, name+".log")}
		node.args = []string{
			"-a", "127.0.0.1", "-p", strconv.Itoa(ports[i]), "-n", name,
			"-js", "-sd", node.store,
			"--cluster_name", "aftertrace-test", "--cluster", "nats://127.0.0.1:" + strconv.Itoa(ports[n+i]),
			"--routes", strings.Join(routes, ","), "-l", node.log,
		}
		c.nodes = append(c.nodes, node)
	}
	t.Cleanup(func() {
		for _, node := range c.nodes {
			node.kill()
		}
	})
	for _, node := range c.nodes {
		if err := node.start(bin); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	if err := c.waitJetStream(60 * time.Second); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return c
}

// URLs is every node's client URL, comma-separated (what --nats-url takes).
func (c *NATSCluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(n.port)
	}
	return strings.Join(urls, ",")
}

// Kill SIGKILLs node i and waits until it is gone.
func (c *NATSCluster) Kill(i int) { c.nodes[i].kill() }

// Restart starts node i again on its ports and store.
func (c *NATSCluster) Restart(t testing.TB, i int) {
	t.Helper()
	if err := c.nodes[i].start(c.bin); err != nil {
		t.Fatalf("testenv: restart nats node %d: %v", i, err)
	}
}

// waitJetStream waits until a client reaches a JetStream that answers
// account info through every node (the meta leader is elected).
func (c *NATSCluster) waitJetStream(within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		ok := 0
		for _, n := range c.nodes {
			nc, err := nats.Connect("nats://127.0.0.1:"+strconv.Itoa(n.port), nats.Timeout(time.Second))
			if err != nil {
				last = err
				continue
			}
			js, err := nc.JetStream()
			if err == nil {
				_, err = js.AccountInfo(nats.MaxWait(2 * time.Second))
			}
			nc.Close()
			if err != nil {
				last = err
				continue
			}
			ok++
		}
		if ok == len(c.nodes) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("nats cluster: jetstream not ready after %v: %v", within, last)
}

func (n *natsNode) start(bin string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	cmd := exec.Command(bin, n.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nats node: %w", err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(n.done)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(n.port))
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-n.done:
			log, _ := os.ReadFile(n.log)
			return fmt.Errorf("nats node on port %d exited: %s", n.port, log)
		case <-ctx.Done():
			return fmt.Errorf("nats node on port %d not listening after 20s", n.port)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *natsNode) kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	n.cmd = nil
}

// freePorts reserves k distinct free loopback ports (released before
// use, as every harness here does).
func freePorts(t testing.TB, k int) []int {
	t.Helper()
	ports := make([]int, 0, k)
	var lns []net.Listener
	for range k {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}
