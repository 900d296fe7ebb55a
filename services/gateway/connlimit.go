package gateway

import (
	"net"
	"sync"
)

// limitConnections returns ln holding at most max connections open. A
// connection over the cap is accepted and closed at once (onReject counts
// it), so the client fails fast instead of waiting in the kernel's backlog
// and Accept keeps draining that backlog.
func limitConnections(ln net.Listener, max int, onReject func()) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), onReject: onReject}
}

type limitListener struct {
	net.Listener
	slots    chan struct{}
	onReject func()
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
		default:
			l.onReject() // counted before the client can see the close
			_ = c.Close()
		}
	}
}

// limitConn gives its slot back when closed (once, however often Close is
// called).
type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
