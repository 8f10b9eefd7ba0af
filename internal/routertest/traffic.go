package routertest

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// EchoServer serves an echo on 127.0.0.1 (TLS when cfg is set) until the
// test ends, and returns its port.
func EchoServer(t testing.TB, cfg *tls.Config) int {
	t.Helper()
	return Serve(t, cfg, func(c net.Conn) { io.Copy(c, c) })
}

// Serve runs handle on each connection to 127.0.0.1 (TLS when cfg is set)
// until the test ends, closing the connection after, and returns the
// port.
func Serve(t testing.TB, cfg *tls.Config, handle func(net.Conn)) int {
	t.Helper()
	var l net.Listener
	var err error
	if cfg != nil {
		l, err = tls.Listen("tcp", "127.0.0.1:0", cfg)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// RoundTrip connects to 127.0.0.1:port (over TLS when cfg is set) and
// expects its message echoed, retrying until ctx ends: a tcpListener
// accepts only once the router knows a connector for its address.
func RoundTrip(ctx context.Context, port int, cfg *tls.Config) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var last error
	for ctx.Err() == nil {
		last = func() error {
			d := net.Dialer{Timeout: time.Second}
			var c net.Conn
			var err error
			if cfg != nil {
				c, err = tls.DialWithDialer(&d, "tcp", addr, cfg)
			} else {
				c, err = d.Dial("tcp", addr)
			}
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			msg := fmt.Sprintf("ping %d\n", port)
			if _, err := io.WriteString(c, msg); err != nil {
				return err
			}
			got, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return err
			}
			if got != msg {
				return fmt.Errorf("echo %q, want %q", got, msg)
			}
			return nil
		}()
		if last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("port %d: %w (last error: %v)", port, ctx.Err(), last)
}

// EchoSite is a resource file with a Site, a Listener on 127.0.0.1:listen
// and a Connector to 127.0.0.1:echo, both for the routing key echo.
func EchoSite(site string, listen, echo int) string {
	return fmt.Sprintf(`apiVersion: skupper.io/v2alpha1
kind: Site
metadata: {name: %s}
---
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata: {name: front}
spec: {routingKey: echo, host: 127.0.0.1, port: %d}
---
apiVersion: skupper.io/v2alpha1
kind: Connector
metadata: {name: back}
spec: {routingKey: echo, host: 127.0.0.1, port: %d}
`, site, listen, echo)
}
